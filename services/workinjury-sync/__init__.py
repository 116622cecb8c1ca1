"""services/workinjury-sync: 工伤保险跨省异地就医 — the 39 GY* transactions of seed 002, on their deadlines (issue 14).

HIS's requests (``yibao.workinjury.requests.v1``) and the platform's download streams run as persisted chains on
:mod:`yibao.chains`, through :class:`~yibao.envelope.workinjury.WorkInjuryClient` (catalog validation, SM4 + SM2):

* uploads, each within 30 minutes of its business event: filing audits (GYU001), local filings (GYU002 attachments,
  then GYU006) and their updates (GYU007); admissions (GYU101), fee lines in batches of ≤ 500 (GYU102), discharge
  settlements (GYU103), device settlements (GYD051, then GYU303), deductions (GYU004), revocations (GYR001-GYR004 in
  the order the platform needs), month-ends (GYU003), institutions (GYU009) — checked first (是否必填, 参数长度,
  price × quantity = amount, pooled + self-paid = total, settlement = sum of the lines, one month-end per month);
* downloads polled on a schedule (GYD001, GYD006, GYD101 + GYD102, GYD103, GYD004, GYD401-GYD404, GYD003,
  GYD005, GYD009): GYD008 first, ≤ 500 records a call, stored on Kafka for HIS, then confirmed with GYU008;
  deliveries lost here asked again with GYR005;
* every lost answer looked up with GYD053 (通用交易查询) before anything is sent again;
* the realtime checks HIS asks over HTTP (GYD051, GYD052, GYD055, GYU010, GYD104, GYU000);
* deadlines as metrics: each upload's age against its limit, each stream's lag (:mod:`.metrics`, :mod:`.deadlines`).
"""
