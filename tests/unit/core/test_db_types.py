"""Column types that keep the money and time rules on every database (yibao.core.db.types), on SQLite.

The same types run on PostgreSQL in tests/integration/core; here a file database in tmp_path is enough.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from yibao.core import clock
from yibao.core.db.types import DecimalText, Money, ShanghaiDateTime

metadata = sa.MetaData()
rows = sa.Table(
    "typed_rows", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", Money),
    sa.Column("quantity", DecimalText),
    sa.Column("at", ShanghaiDateTime),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'types.sqlite'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _store_and_read(engine: sa.Engine, column: str, value: Any) -> Any:
    with engine.begin() as conn:
        row_id = conn.execute(rows.insert().values({column: value})).inserted_primary_key[0]
    with engine.connect() as conn:
        return conn.execute(sa.select(rows.c[column]).where(rows.c.id == row_id)).scalar_one()


@pytest.mark.parametrize("amount", ["0.01", "0.10", "-12.34", "99999999999999.99", "123456789.00", "0.00"])
def test_money_round_trips_exactly(engine: sa.Engine, amount: str) -> None:
    read = _store_and_read(engine, "amount", Decimal(amount))
    assert isinstance(read, Decimal) and read == Decimal(amount) and str(read) == str(Decimal(amount).quantize(Decimal("0.01")))


def test_money_sums_exactly_in_the_database(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(rows.insert(), [{"amount": Decimal("0.10")}, {"amount": Decimal("0.20")}, {"amount": "0.05"}])
        total = conn.execute(sa.select(sa.func.sum(rows.c.amount))).scalar_one()
    assert total == Decimal("0.35")


def test_money_refuses_floats(engine: sa.Engine) -> None:
    with pytest.raises(StatementError) as refused:
        _store_and_read(engine, "amount", 0.1)
    assert isinstance(refused.value.orig, TypeError)


@pytest.mark.parametrize("quantity", ["1.000001", "0.1235", "-3.5000", "12.500000", "100"])
def test_decimal_text_round_trips_exactly_with_its_scale(engine: sa.Engine, quantity: str) -> None:
    read = _store_and_read(engine, "quantity", Decimal(quantity))
    assert isinstance(read, Decimal) and str(read) == quantity


def test_decimal_text_refuses_floats(engine: sa.Engine) -> None:
    with pytest.raises(StatementError) as refused:
        _store_and_read(engine, "quantity", 1.5)
    assert isinstance(refused.value.orig, TypeError)


def test_nulls_stay_null(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(rows.insert().values(amount=None, quantity=None, at=None))
        assert conn.execute(sa.select(rows.c.amount, rows.c.quantity, rows.c.at)).one() == (None, None, None)


def test_shanghai_datetime_returns_aware_shanghai_times(engine: sa.Engine) -> None:
    stored = dt.datetime(2024, 1, 1, 4, 0, 0, 123000, tzinfo=dt.timezone.utc)
    read = _store_and_read(engine, "at", stored)
    assert read == stored and read.tzinfo is clock.SHANGHAI and read.hour == 12


def test_shanghai_datetime_reads_a_naive_value_as_shanghai_time(engine: sa.Engine) -> None:
    read = _store_and_read(engine, "at", dt.datetime(2024, 1, 1, 12, 0))
    assert read == dt.datetime(2024, 1, 1, 12, 0, tzinfo=clock.SHANGHAI) and read.tzinfo is clock.SHANGHAI


def test_shanghai_datetimes_sort_in_time_order(engine: sa.Engine) -> None:
    later_utc = dt.datetime(2024, 1, 1, 5, 0, tzinfo=dt.timezone.utc)  # 13:00 Shanghai
    earlier_shanghai = dt.datetime(2024, 1, 1, 12, 30, tzinfo=clock.SHANGHAI)
    with engine.begin() as conn:
        conn.execute(rows.insert(), [{"at": later_utc}, {"at": earlier_shanghai}])
        ordered = conn.execute(sa.select(rows.c.at).order_by(rows.c.at)).scalars().all()
    assert ordered == [earlier_shanghai, later_utc]
