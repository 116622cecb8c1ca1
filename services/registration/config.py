"""The chain's configuration, resolved once from the settings (so decisions never read the environment)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from yibao.registration import chronic
from yibao.registration.consultation_fee import FeeRules, load_rules

__all__ = ["ChainConfig"]


@dataclass(frozen=True)
class ChainConfig:
    fixmedins_code: str
    treatment_check: bool = False
    treatment_check_blocks: bool = True
    orphan_timeout: _dt.timedelta = _dt.timedelta(seconds=900)
    query_window: _dt.timedelta = _dt.timedelta(hours=24)
    discharge_wait: _dt.timedelta = _dt.timedelta(seconds=120)
    fee_rules: FeeRules = field(default_factory=load_rules)
    chronic_rules: chronic.ChronicRules = field(default_factory=chronic.load_rules)

    @classmethod
    def from_settings(cls, settings: object, fixmedins_code: str) -> ChainConfig:
        """From a :class:`~yibao.registration.settings.RegistrationSettings` and the platform's institution."""
        return cls(
            fixmedins_code=fixmedins_code,
            treatment_check=bool(getattr(settings, "treatment_check")),
            treatment_check_blocks=bool(getattr(settings, "treatment_check_blocks")),
            orphan_timeout=_dt.timedelta(seconds=float(getattr(settings, "orphan_timeout_s"))),
            query_window=_dt.timedelta(hours=float(getattr(settings, "query_window_h"))),
            discharge_wait=_dt.timedelta(seconds=float(getattr(settings, "discharge_wait_s"))),
            fee_rules=load_rules(getattr(settings, "consultation_fee_rules") or None),
            chronic_rules=chronic.load_rules(getattr(settings, "chronic_rules", "") or None),
        )
