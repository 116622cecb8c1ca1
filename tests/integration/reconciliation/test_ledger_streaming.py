"""The ledger read for 3202 is streamed: bounded batches from a server-side cursor, the same file as before.

A day of a large hospital is a million ledger entries; the run must never hold them as rows. On PostgreSQL the
rows come through a server-side cursor (a psycopg named cursor, visible in ``pg_cursors`` while the file is
written) a batch at a time; on SQLite through its stepping cursor. Whatever the path, the detail file is the
one written from whole ledger entries: the same lines, the same totals.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text

from unit.reconciliation.recon_fakes import entry
from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.reconciliation.classify import Difference
from yibao.reconciliation.detail_file import DETAIL_COLUMNS, build_detail_zip
from yibao.reconciliation.errors import ReconciliationError
from yibao.reconciliation.ledger import (
    LocalSide,
    detail_rows,
    detail_zip,
    entries_between,
    entries_by_setl_ids,
    insert_entry,
    local_sides,
    void_entry,
)
from yibao.reconciliation.runs import SAVE_BATCH, differences_of, save_differences

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 5, 11)


def at(hour: int, minute: int = 0, second: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=clock.SHANGHAI)


@pytest.fixture
def engine(any_db_url: str) -> Iterator[Engine]:
    upgrade(any_db_url)
    eng = make_engine(any_db_url)
    yield eng
    eng.dispose()


def book_day(engine: Engine, n: int) -> list[str]:
    """``n`` entries of DAY in 11/440100 (every 10th a cancellation, some without psn_no or mdtrt_id, amounts
    from 0.00 to large, 0.05 steps), plus entries the file must leave out; the setl_ids of the day's file."""
    ours = []
    with engine.begin() as conn:
        for i in range(n):
            e = entry(f"S{i:06d}", f"{(i * 7919) % 100000}.{(i * 5) % 100:02d}", acct=f"{i % 3}.05",
                      fund="0.00" if i % 11 == 0 else None, flag="1" if i % 10 == 9 else "0",
                      when=at(8 + i * 10 // n, (i * 7) % 60, i % 60))
            if i % 13 == 0:
                e = replace(e, psn_no=None)
            if i % 17 == 0:
                e = replace(e, mdtrt_id="")
            assert insert_entry(conn, e)
            ours.append(e.setl_id)
        for other in (entry("X-OTHER-DAY", when=at(10, day=DAY + dt.timedelta(days=1))),
                      entry("X-DAY-BEFORE", when=at(23, 59, 59, day=DAY - dt.timedelta(days=1))),
                      entry("X-INPATIENT", clr_type="21", when=at(9)),
                      entry("X-ELSEWHERE", optins="440300", when=at(9))):
            assert insert_entry(conn, other)
        assert insert_entry(conn, entry("X-VOIDED", when=at(9)))
        assert void_entry(conn, "X-VOIDED")
    return ours


def txt(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        (name,) = archive.namelist()
        return archive.read(name).decode("utf-8")


def test_the_detail_rows_come_in_bounded_batches_from_a_server_side_cursor(engine: Engine) -> None:
    ours = book_day(engine, 1234)
    seen: list[str] = []
    sizes: list[int] = []
    with engine.connect() as conn:
        for rows in detail_rows(conn, DAY, DAY, clr_type="11", setl_optins="440100", columns=DETAIL_COLUMNS,
                                batch=100):
            sizes.append(len(rows))
            seen.extend(r[0] for r in rows)
            if conn.dialect.name == "postgresql" and len(sizes) == 1:
                # the rest of the result waits on the server, in a cursor of this session
                cursors = conn.execute(text("SELECT statement FROM pg_cursors")).scalars().all()
                assert sum("FROM recon_ledger" in statement for statement in cursors) == 1
    assert max(sizes) == 100 and len(sizes) == 13 and sum(sizes) == len(ours)
    assert sorted(seen) == sorted(ours)


def test_the_streamed_detail_file_is_the_one_written_from_whole_entries(engine: Engine) -> None:
    book_day(engine, 1234)
    with engine.connect() as conn:
        streamed = detail_zip(conn, DAY, DAY, clr_type="11", setl_optins="440100", filename="d.zip",
                              columns=DETAIL_COLUMNS, batch=100)
        whole = build_detail_zip(entries_between(conn, DAY, DAY, clr_type="11", setl_optins="440100", batch=100),
                                 filename="d.zip", columns=DETAIL_COLUMNS)
    assert txt(streamed.content) == txt(whole.content)
    assert streamed.count == whole.count == 1234
    for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "cash_payamt"):
        assert getattr(streamed, name) == getattr(whole, name)
        assert str(getattr(streamed, name)) == str(getattr(whole, name))
    lines = txt(streamed.content).splitlines()
    assert "null" in lines[0].split("\t")  # S000000: no psn_no, empty mdtrt_id
    assert any(line.split("\t")[3].startswith("-") for line in lines)  # the cancellations


def test_the_detail_file_lists_the_day_in_booking_order(engine: Engine) -> None:
    with engine.begin() as conn:
        for setl_id, when in (("B", at(9)), ("A", at(11)), ("C", at(9)), ("D", at(8))):
            insert_entry(conn, entry(setl_id, when=when))
    with engine.connect() as conn:
        built = detail_zip(conn, DAY, DAY, clr_type="11", setl_optins="440100", filename="d.zip",
                           columns=DETAIL_COLUMNS)
    assert [line.split("\t")[0] for line in txt(built.content).splitlines()] == ["D", "B", "C", "A"]


def test_a_file_with_a_column_the_raw_rows_do_not_carry_is_written_from_whole_entries(engine: Engine) -> None:
    book_day(engine, 50)
    columns = (*DETAIL_COLUMNS, "setl_time")
    with engine.connect() as conn:
        built = detail_zip(conn, DAY, DAY, clr_type="11", setl_optins="440100", filename="d.zip", columns=columns)
        whole = build_detail_zip(entries_between(conn, DAY, DAY, clr_type="11", setl_optins="440100"),
                                 filename="d.zip", columns=columns)
    assert txt(built.content) == txt(whole.content)
    assert txt(built.content).splitlines()[0].split("\t")[7].startswith("2026-05-11 08:")


def test_a_ledger_value_with_a_tab_stops_the_streamed_file(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_entry(conn, replace(entry("S1", when=at(9)), psn_no="P\t1"))
    with engine.connect() as conn, pytest.raises(ReconciliationError, match="tab or a line break"):
        detail_zip(conn, DAY, DAY, clr_type="11", setl_optins="440100", filename="d.zip", columns=DETAIL_COLUMNS)


def test_classification_reads_the_same_hospital_side_as_the_whole_entry(engine: Engine) -> None:
    ours = book_day(engine, 40)
    wanted = [*ours[:25], "X-VOIDED", "X-ELSEWHERE", "NOT-BOOKED"]
    with engine.connect() as conn:
        sides = local_sides(conn, wanted)
        whole = entries_by_setl_ids(conn, wanted)
    assert sides.keys() == whole.keys() and "NOT-BOOKED" not in sides and "X-VOIDED" in sides
    for setl_id, side in sides.items():
        assert side == LocalSide(*(getattr(whole[setl_id], name) for name in LocalSide._fields))


def _difference(i: int) -> Difference:
    return Difference(diff_class="his_only", row_code="2", clr_type="11", setl_optins="440100", setl_id=f"S{i:06d}",
                      mdtrt_id=f"M{i}", psn_no=None, msgid=None, refd_setl_flag="0", memo="医院有平台无",
                      his_visit_id=f"V{i}", his_medfee_sumamt=Decimal("12.30"), his_fund_pay_sumamt=Decimal("6.00"),
                      his_acct_pay=Decimal("0.00"))


def test_differences_are_stored_in_batches_in_order_superseding_earlier_ones(engine: Engine) -> None:
    n = SAVE_BATCH * 2 + 7
    with engine.begin() as conn:
        first = save_differences(conn, "R-EARLIER", [_difference(i) for i in range(0, n, 2)])
    with engine.begin() as conn:
        ids = save_differences(conn, "R-NOW", [_difference(i) for i in range(n)])
    assert len(ids) == n and ids == sorted(ids)
    with engine.connect() as conn:
        now = differences_of(conn, "R-NOW")
        earlier = differences_of(conn, "R-EARLIER")
    assert [d.id for d in now] == ids and [d.setl_id for d in now] == [f"S{i:06d}" for i in range(n)]
    assert {d.status for d in earlier} == {"superseded"} and len(earlier) == len(first)
    seen_first = {d.setl_id: d.first_seen_at for d in earlier}
    for d in now:
        assert d.first_seen_at == seen_first.get(d.setl_id, d.created_at)
        assert d.his_medfee_sumamt == Decimal("12.30") and d.status == "open"
