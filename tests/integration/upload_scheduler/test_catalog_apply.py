"""A 13xx file applied on the real database, batch by batch: on PostgreSQL a full download is COPYed straight in and
an update COPYed into a staging table from which the rows in force are updated in place (HOT: no index entry, no
delete) and the new codes inserted, while a worker thread reads the file ahead; on SQLite the batches are
upserted. Whatever the path: the file's last line of a code wins (across batches too), a row is kept exactly as the
platform sent it, and a bad line anywhere — even after many batches were written — refuses the file with its name
and line and leaves the catalog in force as it was.
"""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import catalog_items
from yibao.upload_scheduler.catalog import store
from yibao.upload_scheduler.catalog.layouts import load_layouts
from yibao.upload_scheduler.errors import CatalogFileError

pytestmark = pytest.mark.integration

L1305 = load_layouts()["1305"]  # 16 columns: code 0, vali_flag 6, rid 13, ver 14
BATCH = 100


@pytest.fixture
def engine(any_db_url: str) -> Iterator[Engine]:
    upgrade(any_db_url)
    eng = make_engine(any_db_url)
    yield eng
    eng.dispose()


def _row(code: str, ver: str, note: str = "", rid: str | None = None) -> str:
    cells = [f"c{i}" for i in range(16)]
    cells[0], cells[1], cells[6], cells[13], cells[14] = code, note or f"项目{code}", "1", rid or f"R{code}", ver
    return "\t".join(cells)


def _zip(path: Path, lines: list[str] | bytes, member: str = "1305_v.txt") -> Path:
    data = lines if isinstance(lines, bytes) else "".join(line + "\n" for line in lines).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return path


def _apply(engine: Engine, path: Path, prev: str | None, expected: int | None = None) -> store.Applied:
    with engine.begin() as conn:
        return store.apply_file(conn, L1305, path, file_name=path.name, prev_ver=prev, expected_rows=expected,
                                batch=BATCH)


def _in_force(engine: Engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(catalog_items.c.code, catalog_items.c.ver, catalog_items.c.row)
                            .where(catalog_items.c.infno == "1305"))
        return {code: (ver, row) for code, ver, row in rows}


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "yibao-catalog-reader"]


def test_the_files_last_line_of_a_code_wins_across_batches(engine: Engine, tmp_path: Path) -> None:
    first = [_row(f"{i:05d}", "5") for i in range(1000)]
    applied = _apply(engine, _zip(tmp_path / "a.zip", first), None, 1000)
    assert (applied.ver, applied.rows, applied.skipped) == ("5", 1000, 0)
    # version 6 changes every third code; version 7 (later in the same file, batches later) changes some again,
    # and code 00003 comes once more at the end; rows of version 5 or older are left out
    second = ([_row(f"{i:05d}", "6", "六") for i in range(0, 1000, 3)] + [_row("00001", "4")]
              + [_row(f"{i:05d}", "7", "七") for i in range(0, 1000, 9)] + [_row("00003", "7", "七再")]
              + [_row("01000", "7", "新")])
    applied = _apply(engine, _zip(tmp_path / "b.zip", second), "5", len(second))
    assert (applied.ver, applied.rows, applied.skipped) == ("7", len(second) - 1, 1)
    rows = _in_force(engine)
    assert len(rows) == 1001
    assert rows["00000"][0] == "7" and rows["00003"] == ("7", _row("00003", "7", "七再"))
    assert rows["00006"][0] == "6" and rows["00001"][0] == "5" and rows["01000"][0] == "7"
    with engine.connect() as conn:
        assert store.states(conn)[0]["rows"] == 1001 and store.current(conn, "1305") == "7"
    assert not _readers()


def test_a_row_is_kept_exactly_as_the_platform_sent_it(engine: Engine, tmp_path: Path) -> None:
    odd = ["A\\B", "C\x1fD", "E\rF", "规格\\N", "null", "  "]
    lines = [_row(f"X{i}", "1", note) for i, note in enumerate(odd)] + [_row("X9", "1") + "\t多余的列"]
    _apply(engine, _zip(tmp_path / "a.zip", lines), None, len(lines))
    rows = _in_force(engine)
    assert {code: row for code, (_, row) in rows.items()} == {line.split("\t")[0]: line for line in lines}
    with engine.connect() as conn:
        item = store.item(conn, "1305", "X0")
        assert item is not None and item["row"][1] == "A\\B" and (item["vali_flag"], item["rid"]) == ("1", "RX0")


@pytest.mark.parametrize(("bad", "problem"), [
    ("\t".join(["x"] * 3), "3 columns"),
    (_row("", "8"), "no code"),
    (_row("Y", "8", "\x00"), "NUL"),
    (_row("Y", "8", rid="R" * 61), "record id longer than 60"),
])
def test_a_bad_line_after_many_batches_refuses_the_file_and_the_catalog_stays(
        engine: Engine, tmp_path: Path, bad: str, problem: str) -> None:
    _apply(engine, _zip(tmp_path / "a.zip", [_row(f"{i:05d}", "5") for i in range(300)]), None, 300)
    before = _in_force(engine)
    lines = [_row(f"{i:05d}", "8", "八") for i in range(750)]
    lines.insert(700, bad)
    with pytest.raises(CatalogFileError) as refused:
        _apply(engine, _zip(tmp_path / "b.zip", lines), "5")
    assert "b.zip/1305_v.txt, line 701" in str(refused.value) and problem in str(refused.value)
    assert _in_force(engine) == before
    with engine.connect() as conn:
        assert store.current(conn, "1305") == "5" and store.states(conn)[0]["rows"] == 300
        assert conn.execute(select(func.count()).select_from(catalog_items)).scalar_one() == 300
    assert not _readers()


def test_a_line_that_is_not_utf8_is_refused_after_the_lines_before_it(engine: Engine, tmp_path: Path) -> None:
    data = "".join(_row(f"{i:05d}", "1") + "\n" for i in range(250)).encode() + b"\xff\xfe\n"
    with pytest.raises(CatalogFileError, match=r"a.zip/1305_v.txt, line 251: not UTF-8"):
        _apply(engine, _zip(tmp_path / "a.zip", data), None)
    assert _in_force(engine) == {}
    assert not _readers()


def test_a_database_error_mid_file_stops_the_reader_and_rolls_back(engine: Engine, tmp_path: Path) -> None:
    """The count the platform announced is checked after the last batch: the whole update is rolled back."""
    lines = [_row(f"{i:05d}", "1") for i in range(450)]
    with pytest.raises(CatalogFileError, match="announced 451 rows, the file holds 450"):
        _apply(engine, _zip(tmp_path / "a.zip", lines), None, 451)
    assert _in_force(engine) == {}
    if engine.dialect.name == "postgresql":
        # a statement failing between batches (here: the catalog_items table locked away) ends the reader too
        with engine.connect() as other, other.begin():
            other.execute(text("LOCK TABLE catalog_items IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(Exception, match="lock timeout|canceling statement"):
                with engine.begin() as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '200ms'"))
                    store.apply_file(conn, L1305, _zip(tmp_path / "b.zip", lines), file_name="b.zip", prev_ver=None,
                                     batch=BATCH)
    assert not _readers()


def _table_counts(conn: Connection) -> tuple[int, ...]:
    """catalog_items' rows inserted, updated, updated HOT (no index entry) and deleted that this session has not
    reported yet (the transaction's, and maybe an earlier one's: compare before and after, in one transaction)."""
    return tuple(conn.execute(text(
        "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_xact_user_tables "
        "WHERE relname = 'catalog_items'")).one())


def _counted(conn: Connection, before: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a - b for a, b in zip(_table_counts(conn), before))


def test_an_update_replaces_the_rows_in_force_in_place_without_an_index_entry(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("HOT updates and fillfactor are PostgreSQL's")
    _apply(engine, _zip(tmp_path / "a.zip", [_row(f"{i:05d}", "5") for i in range(300)]), None, 300)
    # every code of the catalog again, in batches that also carry 50 codes not in force yet
    lines = [_row(f"{i:05d}", "6", "六") for i in range(350)]
    with engine.begin() as conn:
        assert "fillfactor=50" in conn.execute(text(
            "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'catalog_items'")).scalar_one()
        before = _table_counts(conn)
        applied = store.apply_file(conn, L1305, _zip(tmp_path / "b.zip", lines), file_name="b.zip", prev_ver="5",
                                   expected_rows=350, batch=BATCH)
        assert applied.rows == 350
        # nothing deleted, every row in force updated in place (heap-only: no index entry), only the new inserted
        assert _counted(conn, before) == (50, 300, 300, 0)
    assert _in_force(engine) == {f"{i:05d}": ("6", _row(f"{i:05d}", "6", "六")) for i in range(350)}
    with engine.connect() as conn:
        assert store.states(conn)[0]["rows"] == 350 and store.current(conn, "1305") == "6"
    assert not _readers()


def test_a_full_download_copies_its_rows_straight_in_and_a_repeated_code_is_updated_in_place(
        engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    lines = [_row(f"{i:05d}", "5") for i in range(450)] + [_row("00007", "6", "再")] + [_row("00450", "6")]
    with engine.begin() as conn:
        before = _table_counts(conn)
        store.apply_file(conn, L1305, _zip(tmp_path / "a.zip", lines), file_name="a.zip", prev_ver=None,
                         expected_rows=len(lines), batch=BATCH)
        assert _counted(conn, before) == (451, 1, 1, 0)
    rows = _in_force(engine)
    assert len(rows) == 451 and rows["00007"] == ("6", _row("00007", "6", "再"))
    with engine.connect() as conn:
        assert store.states(conn)[0]["rows"] == 451 and store.current(conn, "1305") == "6"


def test_a_code_taken_for_written_before_still_lands_once_with_its_last_line(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Onto an empty catalog the codes written are remembered approximately (a bitmap of hashes): a code taken for
    written when it was not only goes the careful way (staged, updated or inserted) — never twice, never lost."""
    tiny = store._Written
    monkeypatch.setattr(store, "_Written", lambda: tiny(bits=8))  # nearly every code looks written before
    lines = ([_row(f"{i:05d}", "5") for i in range(400)] + [_row(f"{i:05d}", "6", "六") for i in range(0, 400, 7)]
             + [_row("00400", "6")])
    applied = _apply(engine, _zip(tmp_path / "a.zip", lines), None, len(lines))
    assert (applied.ver, applied.rows) == ("6", len(lines))
    expected = {f"{i:05d}": ("5", _row(f"{i:05d}", "5")) for i in range(400)}
    expected.update({f"{i:05d}": ("6", _row(f"{i:05d}", "6", "六")) for i in range(0, 400, 7)})
    expected["00400"] = ("6", _row("00400", "6"))
    assert _in_force(engine) == expected
    with engine.connect() as conn:
        assert store.states(conn)[0]["rows"] == 401
    assert not _readers()
