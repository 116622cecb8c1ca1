"""The results-to-HIS writer's rules, against a SQLite stand-in for the HIS database (services/his-writer)."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from yibao.core.clock import SHANGHAI
from yibao.core.errors import DecodeError
from yibao.core.results import HisResult, SettlementSplit
from yibao.his_writer.app import parse_result
from yibao.his_writer.writer import results_table, write_result


@pytest.fixture
def his(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'his.sqlite'}")
    table = results_table("yb_result")
    table.metadata.create_all(engine)
    yield engine, table
    engine.dispose()


def _settled(message_id: str = "m1") -> HisResult:
    return HisResult(
        message_id=message_id, his_visit_id="880001", visit_kind="outpatient", kind="settled",
        service="settlement", his_request_id="880005", setl_id="S1", mdtrt_id="M1",
        setl_time=_dt.datetime(2026, 3, 1, 9, 30, tzinfo=SHANGHAI),
        occurred_at=_dt.datetime(2026, 3, 1, 9, 30, 1, tzinfo=SHANGHAI),
        split=SettlementSplit(medfee_sumamt=Decimal("25.00"), fund_pay_sumamt=Decimal("17.50"),
                              psn_part_amt=Decimal("7.50"), acct_pay=Decimal("7.50"), psn_cash_pay=Decimal("0.00")))


def test_a_result_is_written_once_however_often_it_comes(his):
    engine, table = his
    with engine.begin() as conn:
        assert write_result(conn, table, _settled()) is True
    with engine.begin() as conn:
        assert write_result(conn, table, _settled()) is False
    with engine.connect() as conn:
        assert len(conn.execute(select(table)).all()) == 1


def test_the_settlement_money_is_written_exact_in_columns_of_its_own(his):
    engine, table = his
    with engine.begin() as conn:
        write_result(conn, table, _settled())
    with engine.connect() as conn:
        row = conn.execute(select(table)).mappings().one()
    assert row["medfee_sumamt"] == Decimal("25.00") and row["fund_pay_sumamt"] == Decimal("17.50")
    assert row["his_request_id"] == "880005" and row["kind"] == "settled" and row["setl_id"] == "S1"
    assert '"setl_id":"S1"' in row["payload"]


def test_times_are_written_as_shanghai_wall_clock_without_a_zone(his):
    engine, table = his
    result = _settled().model_copy(update={"setl_time": _dt.datetime(2026, 3, 1, 1, 30, tzinfo=_dt.timezone.utc)})
    with engine.begin() as conn:
        write_result(conn, table, result)
    with engine.connect() as conn:
        row = conn.execute(select(table)).mappings().one()
    assert row["setl_time"] == _dt.datetime(2026, 3, 1, 9, 30)


def test_a_message_that_is_not_a_his_result_is_refused_naming_the_fields_not_the_values():
    with pytest.raises(DecodeError, match="not a HisResult: .*kind"):
        parse_result(b'{"message_id": "m1", "his_visit_id": "V", "visit_kind": "outpatient", "service": "x"}')
    with pytest.raises(DecodeError, match="empty"):
        parse_result(b"")
