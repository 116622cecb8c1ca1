"""The 备案 chain's platform calls:

* :mod:`.person` — 1101 人员信息获取: who the filing is for (psn_no, insutype, 参保地);
* :mod:`.filing` — 2501/2501A 转院, 2503 人员慢特病, 2505 人员定点备案 (lost answers: 5304 / 5301 / 5302 — a valid
  filing of ours adopted with its serial);
* :mod:`.revoke` — 2502 / 2504 / 2506 撤销 (lost answers: the same queries — the filing no longer valid).

Every ``on_ok`` / ``on_refused`` receives the state as it is when the answer is recorded and moves it on, so the
same call is never chosen again after it succeeded or was refused.
"""
