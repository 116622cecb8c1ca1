"""The platform's clock: Asia/Shanghai now, optionally shifted or frozen through the admin API.

Daily reconciliation tests need settlements on a given day; rather than waiting for midnight they set the
platform clock. Gateways still judge timestamps by the real clock (a shifted platform must not reject
honest clients).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading

from yibao.core import clock

__all__ = ["PlatformClock"]


class PlatformClock:
    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._frozen: dt.datetime | None = None
        self._lock = threading.Lock()
        self._serial = itertools.count(1)

    def now(self) -> dt.datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return clock.now() + self._offset

    def set(self, when: dt.datetime | None = None, *, offset_s: float | None = None, frozen: bool = False) -> None:
        """Move the clock: to ``when`` (keeps running unless ``frozen``), or by ``offset_s`` from real time."""
        with self._lock:
            if when is not None:
                when = clock.as_shanghai(when)
                self._frozen = when if frozen else None
                self._offset = when - clock.now()
            else:
                self._frozen = None
                self._offset = dt.timedelta(seconds=offset_s or 0)

    def reset(self) -> None:
        self.set(offset_s=0)

    def serial(self) -> int:
        """A process-wide increasing serial (identifiers of the platform: inf_refmsgid, setl_id, …)."""
        return next(self._serial)

    def describe(self) -> dict[str, str | float | bool]:
        return {
            "now": clock.format_datetime(self.now()),
            "offset_s": self._offset.total_seconds(),
            "frozen": self._frozen is not None,
        }
