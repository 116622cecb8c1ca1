"""One module per transaction family: what it sends, how a lost answer is looked up (GYD053), what an answer or a
refusal changes, what HIS is told.

* :mod:`.attachments` — GYU002 (before GYU006 and GYU103);
* :mod:`.admission` — GYU101; :mod:`.details` — GYU102 in batches; :mod:`.settlement` — GYU103, and GYD051 + GYU303
  for devices; :mod:`.deduction` — GYU004; :mod:`.revocation` — GYR001-GYR004 in the order the platform needs;
* :mod:`.filing` — GYU001, GYU006, GYU007; :mod:`.monthend` — GYU003; :mod:`.institution` — GYU009;
* :mod:`.download` — the streams: GYD008, GYD0xx/GYD1xx/GYD4xx, GYU008, GYR005, GYD102, GYD054.
"""
