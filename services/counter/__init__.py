"""yibao.counter: what happens around the counter, besides the visit chains (issue 16, part B).

``yibao worker counter`` (:mod:`yibao.counter.app`):

* **queries** for HIS, kiosks and WeChat — 1101 1201 1901 2001 3101 (明细审核分析) 5102 5201-5206 5301-5304 — on
  ``yibao.counter.requests.v1`` (answers on ``yibao.counter.results.v1`` under the request's correlation id) and
  on ``POST /counter/query``, each within a time budget; 1901/1201 cached (:mod:`.queries`, :mod:`.reference`);
* **备案** — 2501/2501A 转院, 2502 撤销, 2503/2504 人员慢特病, 2505/2506 人员定点 — persisted, idempotent chains on
  :mod:`yibao.chains` from the HIS's canonical events, answered on ``yibao.his.results.v1`` (:mod:`.chain`);
* **核酸 batch settlement** — an Excel file of tested people becomes registrations, details and settlements
  through the registration and settlement services; progress per row over HTTP and as Excel (:mod:`.batch`);
* **settlement slips** — 结算单 as HTML and PDF per settlement, from the settled answers (:mod:`.slips`).
"""
