"""One module per transaction family: ``upload`` (6201), ``pay`` (6202 and the 6301 confirmation), ``revoke``
(6401), ``refund`` (6203) and ``wechat`` (the cash part through WeChat Pay) — each with what it sends, its lookup
for a lost answer (6301, as the mobile-pay catalog says), what its answer changes and what it emits."""
