"""The upload calls, one module per family of transactions (lanes.yaml ``family``). Each holds, top to bottom,
what its calls send, how the platform is asked when an answer is lost (the :class:`~yibao.chains.model.Lookup`;
*whether* it is asked is the catalog's — ``lost_answers`` — and a resend is safe because the platform keys each
record), what an answer or a refusal changes, and what it tells HIS:

* :mod:`.settlement_list` — 4101/4101A 医疗保障基金结算清单 (opened by the settlement, filled by HIS);
* :mod:`.selfpay` — 4201/4201A 自费病人费用明细;
* :mod:`.medical_records` — 4301/4302 门急诊, 4401/4402 住院, 4501-4506 临床辅助, 4601/4602, 4701 电子病历;
* :mod:`.catalog_mapping` — 3301/3302 目录对照 (lost answers: 1317);
* :mod:`.departments` — 3401/3402/3403 科室 (lost answers: 5101);
* :mod:`.inventory` — 3501-3507 进销存 with 药品追溯码;
* :mod:`.prescriptions` — 7101 电子处方 (its hi_rxno kept), 7104/7105 quoting it;
* :mod:`.zifei`, :mod:`.yimatong`, :mod:`.drg`, :mod:`.surveillance` — the other platforms (seeds 002, 004).

:mod:`.common` holds what they share: choosing a batch (records due, valid, their prerequisites met), the upload
call and its answer per record (a refused batch is split so the bad record alone is rejected), and the lookups'
row matching. Every ``on_ok`` / ``on_refused`` receives the lane as it is when the answer is recorded and applies
a relative change to the batch it answers (by number), never a copy taken before the call.
"""
