"""The counter's configuration, resolved once from the settings (so decisions never read the environment)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

__all__ = ["CounterConfig"]


@dataclass(frozen=True)
class CounterConfig:
    fixmedins_code: str = "H44010600001"
    fixmedins_name: str = ""
    transfer_infno: str = "2501"
    orphan_timeout: _dt.timedelta = _dt.timedelta(seconds=900)
    query_timeout_s: float = 10.0
    query_timeout_max_s: float = 30.0
    batch_med_type: str = "11"
    batch_dept_code: str = "HS01"
    batch_dept_name: str = "核酸检测门诊"
    batch_caty: str = "A03"
    batch_doctor_code: str = "HS0001"
    batch_doctor_name: str = "核酸采样医师"
    batch_diag_code: str = "Z11.500"
    batch_diag_name: str = "病毒性疾病的特殊筛查"
    batch_acct_used_flag: str = "0"
    batch_max_bytes: int = 5 * 1024 * 1024
    batch_max_rows: int = 5000
    slip_title: str = "医疗保障基金结算单"

    @classmethod
    def from_settings(cls, settings: object, platform: object) -> CounterConfig:
        """From a :class:`~yibao.counter.settings.CounterSettings` and the platform's institution."""
        get = lambda name: getattr(settings, name)  # noqa: E731
        return cls(
            fixmedins_code=str(getattr(platform, "fixmedins_code")),
            fixmedins_name=get("hospital_name") or str(getattr(platform, "fixmedins_name")),
            transfer_infno=get("transfer_infno"), orphan_timeout=_dt.timedelta(seconds=get("orphan_timeout_s")),
            query_timeout_s=get("query_timeout_s"), query_timeout_max_s=get("query_timeout_max_s"),
            batch_med_type=get("batch_med_type"), batch_dept_code=get("batch_dept_code"),
            batch_dept_name=get("batch_dept_name"), batch_caty=get("batch_caty"),
            batch_doctor_code=get("batch_doctor_code"), batch_doctor_name=get("batch_doctor_name"),
            batch_diag_code=get("batch_diag_code"), batch_diag_name=get("batch_diag_name"),
            batch_acct_used_flag=get("batch_acct_used_flag"), batch_max_bytes=get("batch_max_bytes"),
            batch_max_rows=get("batch_max_rows"), slip_title=get("slip_title"))
