"""The settlement chain's platform calls, one module per transaction family. Each module holds, top to bottom, what
its calls send, how the platform is asked when an answer is lost (the :class:`~yibao.chains.model.Lookup`;
*whether* it is asked, and whether 2601 follows, is the catalog's), what an answer or a refusal changes, and what it
tells HIS and registration:

* :mod:`.details` — 2204 / 2301 费用明细上传 (a frozen batch of lines; lost answers: 5204);
* :mod:`.withdraw` — 2205 / 2302 费用明细撤销 (to net a reversal, to put lines in HIS order, after a refund, when
  the visit is cancelled; lost answers: 5204);
* :mod:`.settle` — 2206 / 2303 预结算, 2207 / 2304 结算 (lost answers: 5204 then 5203, or 2601), 5203 confirming;
* :mod:`.refund` — 2208 / 2305 结算撤销 (lost answers: 5203, or 2601), 5203 confirming.

:mod:`.common` holds what they share. Every ``on_ok`` / ``on_refused`` receives the state as it is when the answer is
recorded (a message may have been absorbed meanwhile): it looks up what it answers — this batch, this request — and
applies a relative change, moving the state on so no call is chosen again after it succeeded or was refused.
"""
