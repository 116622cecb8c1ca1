"""The daily run: when it fires (Asia/Shanghai) and which day it reconciles.

The worker sleeps until the next ``schedule_at`` and then submits a run for ``schedule_days_back`` days ago
(yesterday by default) with a run id derived from that day — so a worker restarted at the same minute, or two
replicas, name the same run and the day is reconciled once by the schedule (the second submission finds the
run and does nothing).
"""

from __future__ import annotations

import datetime as _dt

from yibao.core import clock
from yibao.core.results import stable_id

__all__ = ["next_fire", "scheduled_day", "scheduled_run_id"]


def next_fire(now: _dt.datetime, at: _dt.time) -> _dt.datetime:
    """The first ``at`` (Shanghai wall time) strictly after ``now``."""
    local = clock.as_shanghai(now)
    candidate = _dt.datetime.combine(local.date(), at, tzinfo=clock.SHANGHAI)
    if candidate <= local:
        candidate = _dt.datetime.combine(local.date() + _dt.timedelta(days=1), at, tzinfo=clock.SHANGHAI)
    return candidate


def scheduled_day(fired_at: _dt.datetime, days_back: int = 1) -> _dt.date:
    return clock.as_shanghai(fired_at).date() - _dt.timedelta(days=days_back)


def scheduled_run_id(day: _dt.date) -> str:
    return "S" + day.strftime("%Y%m%d") + stable_id("recon-schedule", day.isoformat())[:12]
