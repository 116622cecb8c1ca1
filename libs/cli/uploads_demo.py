"""The uploads for ``yibao demo``: after the day's settlements, what HIS still owes the platforms — the national
platform's data uploads (4101 结算清单, 4201 自费, 4301-4701 病案/医嘱/检查, 3301 目录对照, 3401 科室, 35xx 进销存,
7101 电子处方) and the other targets' (自费 platform, 一码通, DRG, 疫情, 流感/发热) — sent by the upload-scheduler worker
per record, against the simulator's side of each platform; and the platform catalogs it keeps in force.

Two calls, around the bridge's start (the shape of :mod:`yibao.cli.mobilepay_demo`)::

    bridge = LocalBridge(info, workdir, services=(*CHAIN_SERVICES, "upload-scheduler"), ...)
    uploads_demo.prepare(bridge, workdir)     # targets, their credentials, every lane realtime — before start()
    bridge.start()
    ...                                       # the day: inpatient settlements reach his_results
    for line in asyncio.run(uploads_demo.run(bridge)):
        print(line)

``run`` reads the day's inpatient settlements on ``his_results`` (each opened its 4101 结算清单, owed by HIS), gives
HIS's 清单 content for them, publishes a generated day of every other upload on ``upload_sources`` (a few planted
bad: the platform rejects them with its reason, or the scheduler parks them naming the field), waits until every
record is accepted, rejected, parked or withdrawn, sends HIS's fixes of the refused ones, and returns what ops read:
``GET /uploads/summary?date=…`` per target and kind, the refusals by reason, the catalogs in force.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml

from yibao.core import clock
from yibao.core.topics import topic

__all__ = ["prepare", "run", "worker_env", "demo_lanes", "SERVICE", "TARGETS", "Uploads"]

SERVICE = "upload-scheduler"
#: every target the scheduler ships; the simulator stands in for each
TARGETS = ("national", "zifei", "yimatong", "drg", "epidemic", "flu")
#: catalogs the demo keeps in force (a 13xx file catalog through 9102, a paged one, the institution)
CATALOGS = ("1301", "1305", "1312", "1201")
#: what a record ends with in the demo (pending records that wait for a refused prerequisite are settled too)
SETTLED = ("accepted", "rejected", "parked", "withdrawn")
_PREFIX = "YIBAO_UPLOAD_SCHEDULER_"


def demo_lanes(path: Path) -> Path:
    """The shipped lanes (data/lanes.yaml) with every schedule realtime, written to ``path``: in production the
    medical-record uploads go daily after 01:00 and the epidemic indicators every 15 minutes; the demo sends each
    record as soon as HIS gives it (keys, batches, deadlines and prerequisites unchanged)."""
    text = resources.files("yibao.upload_scheduler.data").joinpath("lanes.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    for spec in raw["lanes"].values():
        spec["schedule"] = {"mode": "realtime"}
    path.write_text("# yibao demo: data/lanes.yaml with every schedule realtime\n"
                    + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def worker_env(sim_url: str, *, targets: Iterable[str] = TARGETS, lanes_file: Path | None = None,
               catalogs: Iterable[str] = CATALOGS) -> dict[str, str]:
    """The upload-scheduler's settings for a bridge on the simulator at ``sim_url``: the targets enabled, where
    each lives (``<sim_url>/targets/<name>``), the credentials the simulator accepts, short waits."""
    from yibao.simulator.targets import CREDENTIALS

    c, s = CREDENTIALS, _PREFIX
    env = {f"{s}TARGETS_ENABLED": json.dumps(list(targets)), f"{s}CHAIN_BACKOFF_S": "0.2",
           f"{s}CHAIN_BACKOFF_MAX_S": "2", f"{s}CHAIN_MAX_ATTEMPTS": "20", f"{s}REQUIREMENT_POLL_S": "0.5",
           f"{s}ZIFEI_POLL_S": "0.2", f"{s}TARGET_TIMEOUT_S": "5", f"{s}GAUGES_INTERVAL_S": "2",
           f"{s}CATALOG_INFNOS": json.dumps(list(catalogs)), f"{s}CATALOG_DICTIONARIES": json.dumps(["insutype"]),
           f"{s}CATALOG_SYNC_INTERVAL_S": "60", f"{s}CATALOG_RETRY_S": "2", f"{s}CATALOG_PAGE_SIZE": "50",
           f"{s}ZIFEI_APP_ID": c["zifei"]["app_id"], f"{s}ZIFEI_APP_SECRET": c["zifei"]["secret"],
           f"{s}YIMATONG_APP_ID": c["yimatong"]["app_id"], f"{s}YIMATONG_APP_SECRET": c["yimatong"]["secret"],
           f"{s}DRG_APP_KEY": c["drg"]["app_key"], f"{s}DRG_APP_SECRET": c["drg"]["secret"],
           f"{s}EPIDEMIC_TOKEN": c["epidemic"]["token"], f"{s}FLU_TOKEN": c["flu"]["token"]}
    for name in ("zifei", "yimatong", "drg", "epidemic", "flu"):
        env[f"{s}{name.upper()}_URL"] = f"{sim_url}/targets/{name}"
    if lanes_file is not None:
        env[f"{s}LANES_FILE"] = str(lanes_file)
    return env


def prepare(bridge: Any, workdir: Path, *, extra: dict[str, str] | None = None) -> None:
    """Configure a :class:`~yibao.stack.bridge.LocalBridge` (not started yet) for the upload scheduler: every
    target enabled on the simulator, with its credentials; every lane realtime (:func:`demo_lanes`)."""
    lanes = demo_lanes(workdir / "uploads-lanes.yaml")
    bridge.extra_env = {**bridge.extra_env, **worker_env(bridge.sim_url, lanes_file=lanes), **(extra or {})}


# --- the run -------------------------------------------------------------------------------------------------------

@dataclass
class Uploads:
    """What the demo sent and what became of it."""

    sent: dict[tuple[str, str], Any] = field(default_factory=dict)  #: (kind, key) → UploadItem
    lists: int = 0  #: 4101 清单 given for the day's settlements
    refunded: int = 0  #: settlements refunded: their 清单 withdrawn
    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  #: (kind, key) → the record's view
    refused: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  #: before the fixes
    fixed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    open: list[str] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    catalogs: list[dict[str, Any]] = field(default_factory=list)


async def run(bridge: Any, *, seed: int = 2026, timeout: float = 180, fixes: bool = True) -> list[str]:
    """A generated day of uploads through the running bridge; the summary lines to print."""
    from yibao.fakedata.uploads import generate_uploads
    from yibao.upload_scheduler.config import load_lanes
    from yibao.upload_scheduler.records import key_of

    lanes = load_lanes()
    url = bridge.workers[SERVICE].url
    started = time.monotonic()
    codes = bridge.admin("catalogs/codes?infno=1301&limit=40")  # valid 医疗目录编码 for the 目录对照 and 处方
    day = clock.today() - _dt.timedelta(days=2)  # yesterday's records and the day before's, all due now
    week = generate_uploads(seed, day, days=1, inpatients=1, outpatients=2, pharmacy=2, codes=codes, bad_day=0)
    settled, refunded = await _inpatient_settlements(bridge)
    items, fixed_items = _with_day_lists(week, settled)
    up = Uploads(lists=sum(1 for i in items if i.kind == "4101"), refunded=len(refunded))

    def key(item: Any) -> tuple[str, str]:
        return item.kind, key_of(lanes[item.kind], item.record, item.record_key)

    up.sent = {key(i): i for i in items}
    if not settled:  # no inpatient stay settled in the day: the generated one opens its 清单, as settlement would
        await _produce(bridge, [(topic("his_results", bridge.prefix), s.his_visit_id.encode(), _settled(s).to_json())
                                for s in week.settled])
    await _send(bridge, [(key(i), i) for i in items])
    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + timeout
        up.records = await _until_settled(client, url, set(up.sent), lanes, deadline)
        up.refused = {k: r for k, r in up.records.items() if r["status"] in ("rejected", "parked")}
        if fixes and up.refused:
            fixes_by_key = {key(f): f for f in fixed_items if key(f) in up.refused}
            await _send(bridge, list(fixes_by_key.items()))
            want = {k: r["revision"] + 1 for k, r in up.refused.items() if k in fixes_by_key}
            up.records.update(await _until_settled(client, url, set(want), lanes, deadline, min_revision=want))
            up.fixed = Counter(up.records[k]["status"] for k in want if k in up.records)
            up.records = await _records(client, url)
        up.open = [f"{k[0]} {k[1]}: {up.records.get(k, {}).get('status', 'not there')}" for k in up.sent
                   if up.records.get(k, {}).get("status") not in SETTLED]
        up.seconds = time.monotonic() - started
        up.dates = sorted({str(r["due_at"])[:10] for k, r in up.records.items() if k in up.sent and r.get("due_at")}
                          | {str(r["due_at"])[:10] for r in up.records.values() if r["kind"] == "4101"
                             and r.get("due_at")})
        up.summary = [row for d in up.dates for row in
                      (await _get(client, url, "/uploads/summary", {"date": d})).get("rows", [])]
        up.catalogs = await _catalogs(client, url, deadline)
    return _lines(up, lanes)


def _with_day_lists(week: Any, settled: list[Any]) -> tuple[list[Any], list[Any]]:
    """The generated uploads with their 4101 清单 replaced by one per inpatient settlement of the day (the first
    planted bad, like the generated one); and the fixes of the planted bad records."""
    lists = [i for i in week.items if i.kind == "4101"]
    if not settled or not lists:
        return list(week.items), list(week.fixes.values())
    from dataclasses import replace

    template = lists[0]
    good = next((f for f in week.fixes.values() if f.kind == "4101"), template)
    items = [i for i in week.items if i.kind != "4101"]
    fixes = [f for f in week.fixes.values() if f.kind != "4101"]
    for n, result in enumerate(settled):
        when = clock.as_shanghai(result.setl_time or result.occurred_at)
        base = template if n == 0 else good
        made = replace(base, source_id=f"4101-{result.setl_id}", occurred_at=when,
                       record=_list_for(base.record, result), his_visit_id=result.his_visit_id,
                       insuplc_admdvs=result.insuplc_admdvs or template.insuplc_admdvs, bad=base.bad)
        items.append(made)
        if n == 0 and template.bad:
            fixes.append(replace(made, source_id=f"4101-{result.setl_id}-fix", record=_list_for(good.record, result),
                                 bad=None))
    return items, fixes


def _list_for(record: dict[str, Any], result: Any) -> dict[str, Any]:
    """A 4101 清单 of the settlement ``result``: its setl_id, mdtrt_id, visit and amounts."""
    out = copy.deepcopy(record)
    info = out["setlinfo"]
    info.update(setl_id=result.setl_id, mdtrt_id=result.mdtrt_id or f"M{result.setl_id}", biz_sn=result.his_visit_id,
                medcasno=f"BA{result.his_visit_id}")
    split = result.split
    if split is not None:
        info.update(psn_cashpay=split.psn_cash_pay, acct_pay=split.acct_pay, psn_selfpay=split.psn_part_amt,
                    psn_ownpay=Decimal("0.00"))
        out["payinfo"] = [{"fund_pay_type": "310100", "fund_payamt": split.fund_pay_sumamt}]
    return out


def _settled(s: Any) -> Any:
    from yibao.core.results import HisResult, SettlementSplit, stable_id

    split = SettlementSplit(medfee_sumamt=s.medfee_sumamt, fund_pay_sumamt=s.medfee_sumamt - Decimal("120.00"),
                            psn_part_amt=Decimal("120.00"), acct_pay=Decimal("0.00"), psn_cash_pay=Decimal("120.00"))
    return HisResult(message_id=stable_id("demo-settlement", s.setl_id), his_visit_id=s.his_visit_id,
                     visit_kind="inpatient", kind="settled", service="settlement", setl_id=s.setl_id,
                     setl_time=s.setl_time, split=split)


async def _inpatient_settlements(bridge: Any) -> tuple[list[Any], set[str]]:
    """The day's inpatient settlements on his_results (each opened its 4101), without those refunded since (their
    清单 is withdrawn); and the refunded ones."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from yibao.core.results import HisResult

    name = topic("his_results", bridge.prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=bridge.info.kafka_bootstrap, enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    settled: dict[str, Any] = {}
    refunded: set[str] = set()
    try:
        parts = [TopicPartition(name, p) for p in (consumer.partitions_for_topic(name)
                                                   or await _partitions(consumer, name))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and await _behind(consumer, parts, ends):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    r = HisResult.model_validate_json(record.value)
                    if r.visit_kind != "inpatient":
                        continue
                    if r.kind == "settled" and r.setl_id:
                        settled[r.setl_id] = r
                    elif r.kind == "refunded" and r.orig_setl_id:
                        refunded.add(r.orig_setl_id)
    finally:
        await consumer.stop()
    return [r for k, r in settled.items() if k not in refunded], refunded


async def _behind(consumer: Any, parts: list[Any], ends: dict[Any, int]) -> bool:
    for p in parts:
        if await consumer.position(p) < ends[p]:
            return True
    return False


async def _partitions(consumer: Any, name: str) -> set[int]:
    await consumer._client.force_metadata_update()  # a fresh client knows no topic yet
    return consumer.partitions_for_topic(name) or {0}


async def _produce(bridge: Any, messages: list[tuple[str, bytes | None, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bridge.info.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(t, key=k, value=v) for t, k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _send(bridge: Any, items: list[tuple[tuple[str, str], Any]]) -> None:
    """HIS's records on upload_sources (key ``<kind>:<record key>``; amounts written exactly)."""
    from yibao.envelope.national import jsontext

    name = topic("upload_sources", bridge.prefix)
    await _produce(bridge, [(name, f"{k[0]}:{k[1]}".encode(), jsontext.dumps_bytes(i.message())) for k, i in items])


async def _get(client: httpx.AsyncClient, url: str, path: str, params: dict[str, str] | None = None) -> Any:
    reply = await client.get(url + path, params=params)
    reply.raise_for_status()
    return reply.json()


async def _records(client: httpx.AsyncClient, url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every record's state (GET /uploads/records, paged)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    after: str | None = None
    while True:
        page = await _get(client, url, "/uploads/records", {"limit": "1000", **({"after": after} if after else {})})
        out.update({(r["kind"], r["key"]): r for r in page["records"]})
        after = page.get("next")
        if not after:
            return out


def _settled_record(k: tuple[str, str], records: dict[tuple[str, str], dict[str, Any]], lanes: dict[str, Any],
                    min_revision: int) -> bool:
    """Accepted, rejected, parked or withdrawn (at least ``min_revision``); or pending on a prerequisite that was
    refused (it goes once HIS fixes that one)."""
    r = records.get(k)
    if r is None or r["revision"] < min_revision:
        return False
    if r["status"] in SETTLED:
        return True
    spec = lanes.get(k[0])
    needs = spec.requires.lane if spec is not None and spec.requires is not None else None
    return (r["status"] == "pending" and needs is not None
            and records.get((needs, k[1]), {}).get("status") in ("rejected", "parked"))


async def _until_settled(client: httpx.AsyncClient, url: str, keys: set[tuple[str, str]], lanes: dict[str, Any],
                         deadline: float, *, min_revision: dict[tuple[str, str], int] | None = None
                         ) -> dict[tuple[str, str], dict[str, Any]]:
    """Poll the records until every one of ``keys`` has settled (or the deadline: the records as they are)."""
    min_revision = min_revision or {}
    while True:
        records = await _records(client, url)
        if all(_settled_record(k, records, lanes, min_revision.get(k, 1)) for k in keys) \
                or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.5)


async def _catalogs(client: httpx.AsyncClient, url: str, deadline: float) -> list[dict[str, Any]]:
    """The catalogs in force, once each demo catalog was synced (or the deadline)."""
    while True:
        state = (await _get(client, url, "/catalog/state")).get("catalogs", [])
        if {s["infno"] for s in state if s.get("ver") or s.get("rows")} >= set(CATALOGS) \
                or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.5)


def _reason(kind: str, reason: str | None) -> str:
    """The reason without the kind it starts with ("[3301] …", "3401: …")."""
    text = reason or ""
    for lead in (f"[{kind}] ", f"{kind}: "):
        text = text.removeprefix(lead)
    return text


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _lines(up: Uploads, lanes: dict[str, Any]) -> list[str]:
    national = sum(1 for k in up.sent if lanes[k[0]].target == "national")
    lines = [f"uploads: HIS gave {len(up.sent)} records of {len({k[0] for k in up.sent})} kinds "
             f"({national} for the national platform, {len(up.sent) - national} for the 5 other targets; "
             f"{up.lists} 结算清单 for the day's inpatient settlements"
             + (f", {up.refunded} withdrawn as refunded" if up.refunded else "")
             + f") — all settled in {up.seconds:.1f}s"]
    lines.append(f"  GET /uploads/summary?date=… for {', '.join(up.dates)} — per target: due · accepted · rejected · "
                 f"parked · withdrawn · overdue; per kind: accepted/due")
    rows: dict[tuple[str, str], Counter[str]] = {}
    for row in up.summary:
        c = rows.setdefault((row["target"], row["kind"]), Counter())
        c.update({k: v for k, v in row.items() if isinstance(v, int)})
    for target in TARGETS:
        mine = {kind: c for (t, kind), c in sorted(rows.items()) if t == target}
        if not mine:
            continue
        total: Counter[str] = sum(mine.values(), Counter())
        head = " · ".join(f"{what} {total[what]}" for what in ("due", "accepted", "rejected", "parked", "withdrawn",
                                                               "overdue") if total[what] or what == "due")
        lines.append(f"  {target:9} {head}")
        kinds = [f"{kind} {c['accepted']}/{c['due']}" + (f" ({c['withdrawn']} withdrawn)" if c["withdrawn"] else "")
                 + ("" if c["accepted"] + c["withdrawn"] == c["due"] else " ✗") for kind, c in mine.items()]
        for start in range(0, len(kinds), 8):
            lines.append(f"  {'':9}   " + ", ".join(kinds[start:start + 8]))
    reasons = Counter(f"{r['status']} {k[0]}: {_reason(k[0], r.get('reason'))[:90]}"
                      + (f" (field {r['reason_field']})" if r.get("reason_field") else "")
                      for k, r in up.refused.items())
    if reasons:
        lines.append(f"  refused at first, by reason ({len(up.refused)}: the demo plants bad records on purpose):")
        lines += [f"    {n:3} × {reason}" for reason, n in sorted(reasons.items())]
    if up.fixed:
        lines.append(f"  HIS sent {sum(up.fixed.values())} fixes: "
                     + ", ".join(f"{status} {n}" for status, n in up.fixed.most_common()))
    in_force = [c for c in up.catalogs if c["infno"] in CATALOGS]
    if in_force:
        lines.append("  catalogs in force (synced from the platform, published on yibao.catalog.v1): "
                     + ", ".join(f"{c['infno']} ver {c.get('ver') or '-'} ({_rows(c.get('rows') or 0)})"
                                 for c in sorted(in_force, key=lambda c: c["infno"])))
    final = Counter(up.records[k]["status"] for k in up.sent if k in up.records)
    if up.open:
        lines.append(f"  PROBLEMS: {len(up.open)} records not settled: " + "; ".join(up.open[:10]))
    elif final["accepted"] + final["withdrawn"] == len(up.sent):
        lines.append("  every record HIS gave is now held by its platform (the refused ones once fixed)")
    else:
        lines.append("  records now: " + ", ".join(f"{s} {n}" for s, n in final.most_common()))
    return lines
