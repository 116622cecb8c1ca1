"""Column types that keep the project's rules on every database.

* :class:`Money` — Decimal in Python, integer fen (cents) in the database: exact on SQLite (which has no
  decimal type and would otherwise store a float) and on PostgreSQL, and ``SUM()`` stays exact.
* :class:`DecimalText` — other Decimals (counts, prices, ratios) stored as text, exact everywhere.
* :class:`ShanghaiDateTime` — aware datetimes, always returned in Asia/Shanghai.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.types import TypeDecorator

from yibao.core import clock
from yibao.core.money import MONEY, money

__all__ = ["Money", "DecimalText", "ShanghaiDateTime"]


class Money(TypeDecorator[Decimal]):
    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return int(money(value) * 100)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(MONEY)


class DecimalText(TypeDecorator[Decimal]):
    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("floats are not stored; use Decimal")
        return str(Decimal(value))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class ShanghaiDateTime(TypeDecorator[_dt.datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> _dt.datetime | None:
        if value is None:
            return None
        aware = clock.as_shanghai(value)
        if dialect.name == "sqlite":  # SQLite keeps no offset: store Shanghai wall time
            return aware.replace(tzinfo=None)
        return aware

    def process_result_value(self, value: Any, dialect: Any) -> _dt.datetime | None:
        if value is None:
            return None
        return clock.as_shanghai(value)
