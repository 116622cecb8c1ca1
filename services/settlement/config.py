"""The chain's configuration, resolved once from the settings (so decisions never read the environment)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

__all__ = ["ChainConfig"]


@dataclass(frozen=True)
class ChainConfig:
    detail_batch_size: int = 50
    lines_wait: _dt.timedelta = _dt.timedelta(seconds=300)
    prerequisite_wait: _dt.timedelta = _dt.timedelta(seconds=900)
    order_window: _dt.timedelta = _dt.timedelta(seconds=2)
    sheet_poll: _dt.timedelta = _dt.timedelta(seconds=5)
    outpatient_bchno_prefix: str = "YB"

    @classmethod
    def from_settings(cls, settings: object) -> ChainConfig:
        """From a :class:`~yibao.settlement.settings.SettlementSettings`."""
        seconds = lambda name: _dt.timedelta(seconds=float(getattr(settings, name)))  # noqa: E731
        return cls(detail_batch_size=int(getattr(settings, "detail_batch_size")), lines_wait=seconds("lines_wait_s"),
                   prerequisite_wait=seconds("prerequisite_wait_s"), order_window=seconds("order_window_s"),
                   sheet_poll=seconds("sheet_poll_s"),
                   outpatient_bchno_prefix=str(getattr(settings, "outpatient_bchno_prefix")))
