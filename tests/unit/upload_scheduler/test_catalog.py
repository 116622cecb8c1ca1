"""Catalog sync against the simulator's catalogs: 13xx files applied version by version (streamed, in one
transaction), a restart resuming from the version in force, a corrupt file refused with its name and line while
the previous catalog stays in force, paged catalogs, 1901 and 1201; every applied update published on
yibao.catalog.v1 (rows, then a version marker)."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from yibao.core.db.schema import catalog_items
from yibao.envelope.catalog import Catalog
from yibao.simulator.uploads import admin_set_catalogs, catalog_code, catalog_version
from yibao.upload_scheduler.catalog import store
from yibao.upload_scheduler.catalog.files import read_rows, version_key
from yibao.upload_scheduler.catalog.layouts import load_layouts
from yibao.upload_scheduler.catalog.publish import CatalogPublisher
from yibao.upload_scheduler.catalog.sync import CatalogSync
from yibao.upload_scheduler.errors import CatalogFileError
from yibao.upload_scheduler.settings import UploadSchedulerSettings
from yibao.upload_scheduler.targets.catalog import build_catalog

from unit.upload_scheduler.standin import SimRouter

LAYOUTS = load_layouts()
L1305 = LAYOUTS["1305"]


def _txt(rows: list[list[str]]) -> bytes:
    return "".join("\t".join(r) + "\n" for r in rows).encode()


def _row(code: str, ver: str, columns: int = 16) -> list[str]:
    cells = [f"c{i}" for i in range(columns)]
    cells[0], cells[6], cells[13], cells[14] = code, "1", f"R{code}", ver
    return cells


def _zip(tmp: Path, data: bytes, name: str = "1305_v.txt") -> Path:
    path = tmp / "f.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return path


# --- reading files ------------------------------------------------------------------------------------------------

def test_a_zip_is_read_row_by_row_with_code_version_flag_and_line(tmp_path: Path) -> None:
    path = _zip(tmp_path, "\ufeff".encode() + _txt([_row("001", "20240001"), _row("002", "20240002")]) + b"\n")
    rows = list(read_rows(path, L1305, name="1305.zip"))
    assert [(r.code, r.ver, r.vali_flag, r.rid, r.line) for r in rows] == [
        ("001", "20240001", "1", "R001", 1), ("002", "20240002", "1", "R002", 2)]


@pytest.mark.parametrize(("content", "where", "problem"), [
    (_txt([_row("001", "1"), ["002", "x"]]), "1305.zip/1305_v.txt, line 2", "2 columns"),
    (_txt([_row("001", "1")]) + b"\xff\xfe\n", "1305.zip/1305_v.txt, line 2", "not UTF-8"),
    (_txt([_row("", "1")]), "line 1", "no code"),
    (_txt([_row("001", "null")]), "line 1", "no version"),
])
def test_a_bad_line_is_refused_with_the_file_and_the_line(tmp_path: Path, content: bytes, where: str,
                                                          problem: str) -> None:
    with pytest.raises(CatalogFileError) as exc:
        list(read_rows(_zip(tmp_path, content), L1305, name="1305.zip"))
    assert where in str(exc.value) and problem in str(exc.value)


def test_a_broken_zip_or_an_error_answer_is_refused_by_name(tmp_path: Path) -> None:
    good = _zip(tmp_path, _txt([_row(f"{i:03d}", "1") for i in range(200)]))
    data = good.read_bytes()
    spoiled = tmp_path / "spoiled.zip"
    mid = 30 + len("1305_v.txt") + 4
    spoiled.write_bytes(data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:])
    with pytest.raises(CatalogFileError, match="spoiled.zip"):
        list(read_rows(spoiled, L1305))
    answer = tmp_path / "answer.zip"
    answer.write_bytes(json.dumps({"infcode": -1, "err_msg": "文件不存在"}).encode())
    with pytest.raises(CatalogFileError, match="answer.zip: the platform answered a JSON error"):
        list(read_rows(answer, L1305))
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w"):
        pass
    with pytest.raises(CatalogFileError, match="holds no file"):
        list(read_rows(empty, L1305))


def test_columns_are_counted_from_the_start_whether_a_row_has_the_layouts_columns_or_more(tmp_path: Path) -> None:
    exact = _row("001", "20240001")
    longer = _row("002", "20240002") + ["extra1", "extra2", "extra3"]  # columns a newer layout added at the end
    spaced = _row(" 003 ", " 20240003 ")
    spaced[6], spaced[13] = "null", " R003 "
    rows = list(read_rows(_zip(tmp_path, _txt([exact, longer, spaced])), L1305))
    assert [(r.code, r.ver, r.vali_flag, r.rid) for r in rows] == [
        ("001", "20240001", "1", "R001"), ("002", "20240002", "1", "R002"), ("003", "20240003", None, "R003")]
    assert rows[1].row == "\t".join(longer), "the row is kept as the platform sent it"


def test_versions_compare_as_numbers() -> None:
    assert version_key("9") < version_key("10") < version_key("20240101")


# --- applying -----------------------------------------------------------------------------------------------------

def test_an_update_replaces_rows_by_code_and_skips_rows_not_newer(sqlite_engine: Engine, tmp_path: Path) -> None:
    first = _zip(tmp_path, _txt([_row("001", "5"), _row("002", "5")]))
    with sqlite_engine.begin() as conn:
        applied = store.apply_file(conn, L1305, first, file_name="a.zip", prev_ver=None, expected_rows=2)
    assert (applied.ver, applied.rows, applied.skipped) == ("5", 2, 0)
    second = _zip(tmp_path, _txt([_row("001", "5"), _row("002", "7"), _row("003", "6")]))
    with sqlite_engine.begin() as conn:
        applied = store.apply_file(conn, L1305, second, file_name="b.zip", prev_ver="5", expected_rows=3)
        assert (applied.ver, applied.rows, applied.skipped) == ("7", 2, 1)
        assert store.item(conn, "1305", "002")["ver"] == "7"  # type: ignore[index]
        assert store.item(conn, "1305", "002")["row"][0] == "002"  # type: ignore[index]
        assert store.current(conn, "1305") == "7"


def test_a_count_that_does_not_match_rolls_the_whole_update_back(sqlite_engine: Engine, tmp_path: Path) -> None:
    with sqlite_engine.begin() as conn:
        store.apply_file(conn, L1305, _zip(tmp_path, _txt([_row("001", "5")])), file_name="a.zip", prev_ver=None)
    with pytest.raises(CatalogFileError, match="announced 3 rows, the file holds 2"):
        with sqlite_engine.begin() as conn:
            store.apply_file(conn, L1305, _zip(tmp_path, _txt([_row("001", "6"), _row("002", "6")])),
                             file_name="b.zip", prev_ver="5", expected_rows=3)
    with sqlite_engine.connect() as conn:
        assert store.current(conn, "1305") == "5"
        assert store.item(conn, "1305", "001")["ver"] == "5"  # type: ignore[index]
        assert store.item(conn, "1305", "002") is None


# --- syncing against the simulator ---------------------------------------------------------------------------------

class Sync:
    def __init__(self, db: Engine, sim: Any, **settings: Any) -> None:
        self.engine = db
        self.client = SimRouter(sim, build_catalog(Catalog.load(None)))
        self.settings = UploadSchedulerSettings(**{"catalog_infnos": ["1305"], "catalog_dictionaries": [],
                                                   "catalog_page_size": 7, **settings})
        self.published: list[tuple[bytes, bytes]] = []
        self.sync = self.restart()

    def restart(self) -> CatalogSync:
        return CatalogSync(db=self.db, client=lambda: self.client, layouts=LAYOUTS, settings=self.settings,
                           fixmedins_code="H44010600001")

    async def db(self, fn: Any) -> Any:
        def unit() -> Any:
            with self.engine.begin() as conn:
                return fn(conn)

        return await asyncio.to_thread(unit)

    def state(self, infno: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return next(s for s in store.states(conn) if s["infno"] == infno)

    def versions(self, infno: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.versions(conn, infno)

    def items(self, infno: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(catalog_items)
                                    .where(catalog_items.c.infno == infno)).scalar_one())

    async def publish(self) -> int:
        async def produce(messages: list[tuple[bytes, bytes]]) -> None:
            self.published.extend(messages)

        return await CatalogPublisher(db=self.db, produce=produce, batch=5).publish_pending()


@pytest.mark.asyncio
async def test_a_file_catalog_is_brought_up_version_by_version_and_a_restart_resumes(
        sqlite_engine: Engine, sim: Any) -> None:
    admin_set_catalogs(sim.ledger, {"1305": {"versions": 3, "rows": 10, "max_versions_per_file": 1}})
    s = Sync(sqlite_engine, sim)
    assert await s.sync.sync("1305") == "updated"
    assert s.state("1305")["ver"] == catalog_version(3) and s.state("1305")["last_error"] is None
    assert [v["ver"] for v in s.versions("1305")] == [catalog_version(3), catalog_version(2), catalog_version(1)]
    assert s.items("1305") == 10 + 5 + 5  # each version replaces half the codes of the one before
    assert s.client.infnos().count("9102") == 3
    assert await s.sync.sync("1305") == "current"
    # the platform publishes two more versions; a restarted worker asks from the version in force
    admin_set_catalogs(sim.ledger, {"1305": {"versions": 5}})
    calls_before = len(s.client.calls)
    assert await s.restart().sync("1305") == "updated"
    assert s.state("1305")["ver"] == catalog_version(5)
    assert [i for i, _ in s.client.calls[calls_before:]].count("9102") == 2
    with sqlite_engine.connect() as conn:
        assert store.item(conn, "1305", catalog_code("1305", 0))["ver"] == catalog_version(1)  # type: ignore[index]


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "problem"), [("columns", "line 4: 3 columns"), ("utf8", "line 2: not UTF-8"),
                                               ("count", "announced 11 rows"), ("crc", "corrupt")])
async def test_a_corrupt_file_is_refused_by_name_and_line_and_the_previous_catalog_stays(
        sqlite_engine: Engine, sim: Any, kind: str, problem: str) -> None:
    admin_set_catalogs(sim.ledger, {"1305": {"versions": 1, "rows": 10}})
    s = Sync(sqlite_engine, sim)
    assert await s.sync.sync("1305") == "updated"
    admin_set_catalogs(sim.ledger, {"1305": {"versions": 2, "corrupt": {"kind": kind, "line": 4 if kind == "columns" else 2}}})
    assert await s.sync.sync("1305") == "refused"
    state = s.state("1305")
    assert state["ver"] == catalog_version(1) and state["rows"] == 10
    assert f"1305_{catalog_version(2)}.zip" in state["last_error"] and problem in state["last_error"]
    refused = s.versions("1305")[0]
    assert refused["status"] == "refused" and problem in refused["error"]
    assert s.items("1305") == 10
    assert await s.sync.sync("1305") == "updated"  # the platform's next file is sound
    assert s.state("1305")["ver"] == catalog_version(2) and s.state("1305")["last_error"] is None


@pytest.mark.asyncio
async def test_paged_catalogs_dictionaries_and_the_institution(sqlite_engine: Engine, sim: Any) -> None:
    admin_set_catalogs(sim.ledger, {"1312": {"versions": 2, "rows": 10}})
    s = Sync(sqlite_engine, sim, catalog_infnos=["1312", "1201"], catalog_dictionaries=["insutype", "med_type"])
    assert await s.sync.sync("1312") == "updated"
    assert s.items("1312") == 15 and s.state("1312")["ver"].startswith("2024-01-31")
    assert await s.sync.sync("1312") == "current"
    assert await s.sync.sync("1901") == "updated"
    assert s.items("1901") > 0
    assert await s.sync.sync("1201") == "updated"
    with sqlite_engine.connect() as conn:
        assert store.item(conn, "1201", "H44010600001")["row"]["fixmedins_name"]  # type: ignore[index]


@pytest.mark.asyncio
async def test_an_unreachable_platform_leaves_the_catalog_and_says_why(sqlite_engine: Engine, sim: Any) -> None:
    admin_set_catalogs(sim.ledger, {"1305": {"versions": 1, "rows": 4}})
    s = Sync(sqlite_engine, sim)
    s.client.fail("1305", "transport")
    assert await s.sync.sync("1305") == "failed"
    assert "TransportError" in s.state("1305")["last_error"] and s.state("1305")["ver"] is None
    assert await s.sync.sync("1305") == "updated"


@pytest.mark.asyncio
async def test_one_replica_syncs_a_catalog_at_a_time(sqlite_engine: Engine, sim: Any) -> None:
    s = Sync(sqlite_engine, sim)
    with sqlite_engine.begin() as conn:
        assert store.claim(conn, "1305", "someone-else", 600) is None
    assert await s.sync.sync("1305") == "busy"


@pytest.mark.asyncio
async def test_every_applied_update_is_published_rows_then_its_version(sqlite_engine: Engine, sim: Any) -> None:
    admin_set_catalogs(sim.ledger, {"1305": {"versions": 2, "rows": 6, "max_versions_per_file": 2}})
    s = Sync(sqlite_engine, sim)
    await s.sync.sync("1305")
    assert await s.publish() == 9
    keys = [k.decode() for k, _ in s.published]
    assert keys[-1] == "1305:__version__" and len(set(keys[:-1])) == 9
    marker = json.loads(s.published[-1][1])
    assert marker["ver"] == catalog_version(2) and marker["rows"] == 12  # rows the file carried
    row = json.loads(s.published[0][1])
    assert row["type"] == "row" and row["infno"] == "1305" and row["row"][0] == row["code"]
    assert await s.publish() == 0  # published once
    assert s.versions("1305")[0]["published_at"] is not None
