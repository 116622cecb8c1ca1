"""A generated week of every upload through a real ``yibao worker upload-scheduler`` on the real broker and database,
against the platform simulator over HTTP (national platform and the five other targets), with faults on and the
worker killed -9 mid-batch:

* HIS (this test) publishes the week's settlements on ``his_results`` and every record on ``upload_sources``;
* every record ends accepted, except the planted bad ones — rejected with the platform's reason or parked with the
  field named — and HIS reads that on ``upload_results``;
* HIS sends the fixes; each is sent once and accepted;
* the platforms then hold exactly what the hospital holds: every record once, with the content of its last
  revision; a record went twice only as the resend a lost answer called for, and never counted twice;
* the catalog sync brought 1305 (a 13xx file catalog, through 9102), 1312 (paged) and 1201 up to date and published
  them on ``yibao.catalog.v1``; ops read the day's summary as JSON and Excel.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from support.kafka import consume, produce
from support.simulator import SimulatorThread
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.schema import chain_calls, upload_records
from yibao.core.kafka import catalog_topics, create_topics
from yibao.core.results import HisResult, SettlementSplit, stable_id
from yibao.core.topics import topic
from yibao.envelope.catalog import Catalog
from yibao.envelope.national import jsontext
from yibao.fakedata.uploads import EVERY_KIND, UploadItem, generate_uploads
from yibao.simulator import Simulator, SimulatorSettings
from yibao.simulator.targets import CREDENTIALS
from yibao.simulator.uploads import KEYS, catalog_version
from yibao.stack import Stack
from yibao.upload_scheduler.config import load_lanes
from yibao.upload_scheduler.records import key_of
from yibao.upload_scheduler.targets.catalog import build_catalog

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

PREFIX = "uploadweek."
SOURCES = topic("upload_sources", PREFIX)
HIS_RESULTS = topic("his_results", PREFIX)
OUTCOMES = topic("upload_results", PREFIX)
CATALOG_TOPIC = topic("catalog", PREFIX)
LANES = load_lanes()
CATALOG = build_catalog(Catalog.load(None))
TARGETS = ["national", "zifei", "yimatong", "drg", "epidemic", "flu"]

#: answers lost after the work was done (resolved by the transaction's query, or a resend the platform's keys make
#: harmless), connections refused or reset before it, gateway errors — seeded, so every run meets the same ones
FAULTS = ["4101:commit_then_timeout:0.5", "3401:drop_reply:0.5", "3301:drop_reply:0.5", "3503:reset:0.3",
          "4402:http_5xx:0.3", "7101:commit_then_timeout:0.4", "4401:drop_reply:0.2", "3505:drop_reply:0.2",
          "ZF.UPLOAD:drop_reply:0.3", "ZF.TASK:http_5xx:0.3", "DRG.STL:commit_then_timeout:0.3",
          "YMT.UPLOAD:drop_reply:0.3", "FLU.CASE:reset:0.3", "YQ.UPLOAD:drop_reply:0.2", "9102:reset:0.3",
          "1305:http_5xx:0.2"]
FINAL = ("accepted", "rejected", "parked", "withdrawn")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with SimulatorThread(SimulatorSettings(port=0, admin_port=0, population_size=20, hold_s=1.5, seed=7,
                                           faults=FAULTS)) as s:
        httpx.put(s.admin_url + "/admin/catalogs",
                  json={"1305": {"versions": 3, "rows": 40, "max_versions_per_file": 1},
                        "1312": {"versions": 2, "rows": 30}}).raise_for_status()
        yield s


@pytest.fixture(scope="module")
def db_url(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    return new_database(stack, tmp_path_factory.mktemp("uploads-db"))


def worker_env(kafka_bootstrap: str, sim: Simulator, db_url: str) -> dict[str, str]:
    c = CREDENTIALS
    s = "YIBAO_UPLOAD_SCHEDULER_"
    env = {"KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": db_url, "YIBAO_TOPIC_PREFIX": PREFIX,
           "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_PLATFORM_BASE_URL": sim.url, "YIBAO_PLATFORM_READ_TIMEOUT_S": "1",
           "YIBAO_PLATFORM_RETRY_BACKOFF_S": "0.05",
           f"{s}TARGETS_ENABLED": json.dumps(TARGETS), f"{s}CHAIN_BACKOFF_S": "0.2", f"{s}CHAIN_MAX_ATTEMPTS": "20",
           f"{s}CHAIN_LEASE_S": "5", f"{s}REQUIREMENT_POLL_S": "0.5", f"{s}ZIFEI_POLL_S": "0.2",
           f"{s}TARGET_TIMEOUT_S": "1", f"{s}GAUGES_INTERVAL_S": "1",
           f"{s}CATALOG_INFNOS": json.dumps(["1305", "1312", "1201"]), f"{s}CATALOG_DICTIONARIES": "[\"insutype\"]",
           f"{s}CATALOG_SYNC_INTERVAL_S": "3", f"{s}CATALOG_RETRY_S": "1", f"{s}CATALOG_PAGE_SIZE": "20",
           # a sync the killed worker held is taken over once its lease lapses (production: 10 minutes)
           f"{s}CATALOG_LEASE_S": "5",
           f"{s}ZIFEI_APP_ID": c["zifei"]["app_id"], f"{s}ZIFEI_APP_SECRET": c["zifei"]["secret"],
           f"{s}YIMATONG_APP_ID": c["yimatong"]["app_id"], f"{s}YIMATONG_APP_SECRET": c["yimatong"]["secret"],
           f"{s}DRG_APP_KEY": c["drg"]["app_key"], f"{s}DRG_APP_SECRET": c["drg"]["secret"],
           f"{s}EPIDEMIC_TOKEN": c["epidemic"]["token"], f"{s}FLU_TOKEN": c["flu"]["token"]}
    for name in ("zifei", "yimatong", "drg", "epidemic", "flu"):
        env[f"{s}{name.upper()}_URL"] = f"{sim.url}/targets/{name}"
    return env


def key(item: UploadItem) -> tuple[str, str]:
    return item.kind, key_of(LANES[item.kind], item.record, item.record_key)


def settled_message(setl_id: str, visit: str, when: _dt.datetime, total: Decimal) -> HisResult:
    split = SettlementSplit(medfee_sumamt=total, fund_pay_sumamt=total - Decimal("120.00"),
                            psn_part_amt=Decimal("120.00"), acct_pay=Decimal("0.00"), psn_cash_pay=Decimal("120.00"))
    return HisResult(message_id=stable_id("test-settlement", setl_id), his_visit_id=visit, visit_kind="inpatient",
                     kind="settled", service="settlement", setl_id=setl_id, setl_time=when, split=split)


async def send(bootstrap: str, items: list[UploadItem]) -> None:
    await produce(bootstrap, [(SOURCES, f"{i.kind}:{key(i)[1]}".encode(), jsontext.dumps_bytes(i.message()))
                              for i in items])


def latest(records: list[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each record's outcome with the highest revision (last one heard of that revision: the topic keeps a
    record's outcomes in order)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        v = json.loads(r.value)
        k = (v["kind"], v["record_key"])
        if k not in out or v["revision"] >= out[k]["revision"]:
            out[k] = v
    return out


Key = tuple[str, str]


async def outcomes_until(bootstrap: str, want: dict[Key, set[str]], *, timeout: float,
                         min_revision: dict[Key, int] | None = None) -> dict[Key, dict[str, Any]]:
    """Outcomes read until every record in ``want`` has one of its wanted statuses (at least its revision)."""
    min_revision = min_revision or {}

    def done(records: list[Any]) -> bool:
        last = latest(records)
        return all(k in last and last[k]["status"] in statuses and last[k]["revision"] >= min_revision.get(k, 1)
                   for k, statuses in want.items())

    records = await consume(bootstrap, [OUTCOMES], timeout=timeout, until=done)
    last = latest(records)
    missing = {k: (last.get(k, {}).get("status"), last.get(k, {}).get("reason")) for k, s in want.items()
               if k not in last or last[k]["status"] not in s or last[k]["revision"] < min_revision.get(k, 1)}
    assert not missing, f"{len(missing)} record(s) not where expected: {dict(list(missing.items())[:10])}"
    return last


def journal(db_url: str, query: Any) -> list[Any]:
    """Rows of the scheduler's call journal (chain_calls)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).all())
    finally:
        engine.dispose()


def lost_answers_resent(db_url: str) -> Counter[str]:
    """Per transaction: the calls whose answer was lost and that the engine resolved by sending again."""
    rows = journal(db_url, select(chain_calls.c.infno, func.count()).where(
        chain_calls.c.resolution == "retried").group_by(chain_calls.c.infno))
    return Counter({infno: int(n) for infno, n in rows})


async def mid_batch(db_url: str, settled: int, *, timeout: float = 120) -> None:
    """Returns once ``settled`` records are accepted, rejected or parked while upload calls are in flight (sent,
    not answered): the moment to kill the worker. Read from the database, which knows it first."""
    final = select(func.count()).select_from(upload_records).where(upload_records.c.status.in_(FINAL))
    sent = select(func.count()).select_from(chain_calls).where(chain_calls.c.status == "sent")
    engine = make_engine(db_url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while loop.time() < deadline:
            with engine.connect() as conn:
                if conn.execute(final).scalar_one() >= settled and conn.execute(sent).scalar_one():
                    return
            await asyncio.sleep(0.02)
    finally:
        engine.dispose()
    raise AssertionError(f"never {settled} records settled with upload calls in flight within {timeout:.0f}s")


def canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            found = first_difference(a.get(k), b.get(k), f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if canon(a) == canon(b) else f"{path}: {a!r} != {b!r}"


def platform_form(item: UploadItem) -> Any:
    spec = LANES[item.kind]
    body = CATALOG.prepare_input(spec.infno, spec.body([item.record]))
    form = body if spec.shape == "object" else body[spec.node][0]
    return jsontext.loads(jsontext.dumps_bytes(form))


async def test_a_week_of_every_upload_with_faults_and_a_killed_worker(
        kafka_bootstrap: str, sim: Simulator, db_url: str, tmp_path: Path) -> None:
    await create_topics(kafka_bootstrap, catalog_topics(PREFIX))
    codes = httpx.get(sim.admin_url + "/admin/catalogs/codes?infno=1301&limit=40").json()
    start = clock.today() - _dt.timedelta(days=10)
    week = generate_uploads(7, start, days=7, inpatients=1, outpatients=2, pharmacy=2, codes=codes, bad_day=1)
    assert week.kinds() == set(EVERY_KIND)
    bad = {key(i) for i in week.bad()}
    expected: dict[tuple[str, str], set[str]] = {}
    last_item: dict[tuple[str, str], UploadItem] = {}
    for item in week.items:
        expected[key(item)] = {"rejected", "parked"} if key(item) in bad else {"accepted"}
        last_item[key(item)] = item

    env = worker_env(kafka_bootstrap, sim, db_url)
    first = WorkerProcess("upload-scheduler", env, tmp_path / "worker-1.log").start()
    try:
        await produce(kafka_bootstrap, [(HIS_RESULTS, s.his_visit_id.encode(),
                                         settled_message(s.setl_id, s.his_visit_id, s.setl_time,
                                                         s.medfee_sumamt).to_json()) for s in week.settled])
        await send(kafka_bootstrap, week.items)
        # a crash mid-batch: once some records were settled, kill -9 while calls are in flight (no shutdown)
        await mid_batch(db_url, max(20, len(expected) // 4))
    finally:
        first.kill()
    in_flight = {i: infno for i, infno in journal(db_url, select(chain_calls.c.id, chain_calls.c.infno).where(
        chain_calls.c.status == "sent"))}  # what the killed worker left: sent, its answer never read
    second = WorkerProcess("upload-scheduler", env, tmp_path / "worker-2.log").start()
    try:
        last = await outcomes_until(kafka_bootstrap, expected, timeout=300)
        for k in bad:  # HIS reads why: the platform's reason, or ours with the field
            assert last[k]["reason"], k
            if last[k]["status"] == "parked":
                assert last[k]["reason_field"], k

        fixes = list(week.fixes.values())
        assert {key(f) for f in fixes} == bad
        await send(kafka_bootstrap, fixes)
        last_item.update({key(f): f for f in fixes})
        last = await outcomes_until(kafka_bootstrap, {k: {"accepted"} for k in expected}, timeout=240,
                                    min_revision={k: 2 for k in bad if k[0] != "4101"})

        # the uploads the killed worker left in flight were resolved (by the transaction's query, or a resend the
        # platform's keys make harmless); a query left in flight (5101, a task poll) is simply asked again
        assert in_flight, "the worker was killed with no call in flight"
        left = journal(db_url, select(chain_calls.c.id, chain_calls.c.infno, chain_calls.c.status,
                                      chain_calls.c.resolution).where(chain_calls.c.id.in_(list(in_flight))))
        unresolved = [(infno, status) for _, infno, status, resolution in left
                      if not CATALOG.transaction(infno).retry_safe and not (status == "resolved" and resolution)]
        assert not unresolved, unresolved

        # the scheduler's own view (ops): nothing open, each fix sent once more, the day's summary readable
        records = []
        after = None
        while True:
            params = {"limit": "1000", **({"after": after} if after else {})}
            page = httpx.get(second.url + "/uploads/records", params=params, timeout=10).json()
            records += page["records"]
            after = page["next"]
            if not after:
                break
        assert Counter(r["status"] for r in records) == Counter({"accepted": len(expected)})
        for r in records:
            k = (r["kind"], r["key"])
            limit = 1 if k not in bad else 2
            if LANES[r["kind"]].shape == "list":
                limit += 1  # a batch refused for another record's sake, then sent alone
            assert r["sends"] <= limit + 1, r  # + the batch in flight when the worker was killed
        day = (start + _dt.timedelta(days=1)).isoformat()
        summary = httpx.get(second.url + "/uploads/summary", params={"date": day}, timeout=10).json()
        assert summary["total"]["due"] > 0 and summary["total"]["accepted"] == summary["total"]["due"]
        xlsx = httpx.get(second.url + "/uploads/summary.xlsx", params={"date": day}, timeout=10)
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"

        # the national platform holds every record once, with the content of the hospital's last revision
        plat = jsontext.loads(httpx.get(sim.admin_url + "/admin/uploads", timeout=10).content)  # exact amounts
        held = {(r["family"], r["key"]): r for r in plat["records"]}
        for (kind, rkey), item in last_item.items():
            if not kind[0].isdigit() or kind in ("3302", "3403", "3507", "7104", "7105"):
                continue
            family = {"3301": "3301", "3401": "3401", "7101": "7101"}.get(kind, kind)
            stored = held[(family, rkey)]
            assert stored["versions"] == 1, (kind, rkey)
            if kind in KEYS:
                assert canon(stored["content"]) == canon(platform_form(item)), (
                    kind, rkey, first_difference(stored["content"], platform_form(item)))
        # a resend reached the platform only where an answer was lost (a fault, or the worker killed mid-call):
        # never more resends of a transaction than its calls the engine resolved by sending again
        retried = lost_answers_resent(db_url)
        resent = Counter(infno for infno, _ in {(s["infno"], s["msgid"]) for s in plat["submissions"]
                                                 if s["outcome"] == "resend"})  # calls (a list resends its items)
        for s in plat["submissions"]:
            assert s["outcome"] in ("new", "resend", "applied"), s
        for infno, n in resent.items():
            assert n <= retried[infno], (infno, n, retried[infno])
        news = Counter((s["infno"], s["key"]) for s in plat["submissions"] if s["outcome"] == "new")
        assert max(news.values()) == 1

        # the other targets: every record kept once, with the content of the hospital's last revision
        targets = jsontext.loads(httpx.get(sim.admin_url + "/admin/targets", timeout=10).content)
        for (kind, rkey), item in last_item.items():
            if kind[0].isdigit():
                continue
            kept = targets["records"][kind][rkey]
            assert kept["valid"] and kept["versions"] == 1, (kind, rkey)
            form = platform_form(item)
            if LANES[kind].shape == "object":  # the platform keeps the record's object (病案首页, 病例 …)
                [form] = form.values()
            assert canon(kept["content"]) == canon(form), (kind, rkey, first_difference(kept["content"], form))
        by_outcome = defaultdict(list)
        for s in targets["submissions"]:
            by_outcome[s["outcome"]].append(s)
        assert set(by_outcome) <= {"new", "resend"}
        resent_targets = Counter(LANES[b].infno for b, _ in {(s["bucket"], s["request_id"])
                                                             for s in by_outcome["resend"]})
        for infno, n in resent_targets.items():
            assert n <= retried[infno], (infno, n, retried[infno])

        # the catalogs: 1305 by version through 9102, 1312 paged, 1201; published on yibao.catalog.v1 (a sync the
        # killed worker was running resumes from the version in force)
        async def catalogs_current() -> dict[str, Any]:
            for _ in range(180):
                state = {s["infno"]: s for s in httpx.get(second.url + "/catalog/state", timeout=10)
                         .json()["catalogs"]}
                if state.get("1305", {}).get("ver") == catalog_version(3) and "1312" in state and "1201" in state:
                    return state
                await asyncio.sleep(0.5)
            raise AssertionError(f"catalogs not current: {state}")

        state = await catalogs_current()
        assert state["1305"]["rows"] == 40 + 20 + 20 and state["1312"]["rows"] == 45
        published = await consume(kafka_bootstrap, [CATALOG_TOPIC], timeout=60, until=lambda rs: any(
            r.key == b"1305:__version__" and json.loads(r.value)["ver"] == catalog_version(3) for r in rs))
        codes_1305 = {r.key for r in published if r.key.startswith(b"1305:") and not r.key.endswith(b"__version__")}
        assert len(codes_1305) == 80
    finally:
        second.stop()
