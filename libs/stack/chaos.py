"""Chaos: a long stream of HIS activity through the whole bridge while everything that can fail fails — workers
killed with SIGKILL at random, the database stopped and started again, the broker restarted, every simulator fault
switched on — then the audit a hospital would make: every HIS request answered, none twice, the platform's ledger
agreeing with what HIS was told (nothing settled twice), nothing parked, and the day's reconciliation (3201/3202)
balanced — no single-sided ledger (单边账) left.

``yibao chaos`` runs it (a short run, or ``--visits 10000`` for the long one, which writes bench/results/chaos.json);
the end-to-end tests run short ones. The run has a stack of its own (its broker and database are restarted): a
real Kafka (KRaft) and a private PostgreSQL cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from yibao.core import clock
from yibao.core.errors import StackError

__all__ = ["ChaosPlan", "ChaosReport", "Disruption", "run_chaos", "DEFAULT_FAULTS", "in_commit_order", "order_violations"]

#: faults on the platform for the whole run: lost answers after the platform did the work, resets and 5xx before
#: it did anything, answers held back — on the calls that change the platform and on the lookups that resolve them.
#: Business errors are left out: they are the platform refusing a request, which HIS is told as a rejection and the
#: audit would rightly count as a wrong answer (tests/e2e/chains/test_platform_faults.py covers them).
DEFAULT_FAULTS = (
    "2201:commit_then_timeout:0.03", "2401:commit_then_timeout:0.05", "2203:reset:0.03",
    "2204:drop_reply:0.03", "2301:commit_then_timeout:0.03", "2206:http_5xx:0.03:503",
    "2207:commit_then_timeout:0.05", "2207:reset:0.02", "2304:commit_then_timeout:0.05",
    "2208:commit_then_timeout:0.05", "2305:reset:0.05", "2402:commit_then_timeout:0.03",
    "5204:http_5xx:0.02:502", "5203:reset:0.02", "2601:http_5xx:0.05:503", "*:latency:0.05:20-300",
)

#: the finance identity that starts the day's reconciliation (a static token of the run's own)
CLERK_TOKEN = "chaos-run-clerk-token-0123456789abcdef"

#: short waits, so a fault costs a fraction of a second instead of the production minutes
FAST = {
    "YIBAO_SIM_HOLD_S": "1",
    "YIBAO_PLATFORM_RETRY_BACKOFF_S": "0.05",
    "YIBAO_REGISTRATION_CHAIN_BACKOFF_S": "0.2", "YIBAO_SETTLEMENT_CHAIN_BACKOFF_S": "0.2",
    "YIBAO_REGISTRATION_CHAIN_BACKOFF_MAX_S": "2", "YIBAO_SETTLEMENT_CHAIN_BACKOFF_MAX_S": "2",
    "YIBAO_REGISTRATION_CHAIN_MAX_ATTEMPTS": "60", "YIBAO_SETTLEMENT_CHAIN_MAX_ATTEMPTS": "60",
    "YIBAO_REGISTRATION_CHAIN_LEASE_S": "10", "YIBAO_SETTLEMENT_CHAIN_LEASE_S": "10",
    "YIBAO_SESSION_TIMEOUT_S": "6",
    "YIBAO_RECONCILIATION_SCHEDULE_ENABLED": "false",
}


@dataclass(frozen=True)
class ChaosPlan:
    visits: int = 300
    inpatient_share: float = 0.15
    #: visits per generated HIS day (each day its own people: nobody is in the ward twice)
    day_size: int = 150
    #: what may be done to the bridge: kill (a worker, SIGKILL), database (stopped, started again), broker (restarted)
    disruptions: tuple[str, ...] = ("kill", "database", "broker")
    every_s: tuple[float, float] = (6.0, 15.0)
    database_down_s: tuple[float, float] = (3.0, 15.0)
    faults: tuple[str, ...] = DEFAULT_FAULTS
    #: the workers a kill may hit
    workers: tuple[str, ...] = ("ingest", "registration", "settlement", "reconciliation")
    #: disruptions done once, in this order, before the random ones (e.g. ("database:60", "broker"))
    scripted: tuple[str, ...] = ()
    seed: int = 7
    timeout_s: float = 3600.0
    reconcile: bool = True


@dataclass
class Disruption:
    kind: str
    what: str
    at_s: float
    seconds: float


@dataclass
class ChaosReport:
    plan: dict[str, Any]
    stack: dict[str, str]
    visits: int = 0
    requests: int = 0
    answered: int = 0
    unanswered: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ledger_problems: list[str] = field(default_factory=list)
    #: chains run to their end, by service (one registration chain and one settlement chain per visit)
    chains: dict[str, int] = field(default_factory=dict)
    settled: int = 0
    refunded: int = 0
    parked_visits: int = 0
    dead_letters: int = 0
    reconciliation: dict[str, Any] = field(default_factory=dict)
    disruptions: list[Disruption] = field(default_factory=list)
    faults_fired: dict[str, int] = field(default_factory=dict)
    #: canonical events ingest handed on, per visit on yibao.his.events.v1, before one HIS committed earlier
    ingest_order_violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def single_sided(self) -> int:
        """Differences reconciliation found and could not repair (0 when the day balanced)."""
        state = self.reconciliation.get("state")
        if state in ("balanced", "repaired_and_balanced"):
            return 0
        return int(self.reconciliation.get("differences") or 0) or (1 if self.reconciliation else 0)

    @property
    def ok(self) -> bool:
        return not (self.unanswered or self.unexpected or self.ledger_problems or self.parked_visits
                    or self.dead_letters or self.single_sided)

    def summary(self) -> dict[str, Any]:
        kinds = Counter(d.kind for d in self.disruptions)
        return {
            "ok": self.ok, "visits": self.visits, "chains": sum(self.chains.values()), "chains_by_service": self.chains,
            "requests": self.requests, "answered": self.answered,
            "lost": len(self.unanswered), "answered_wrongly_or_twice": len(self.unexpected),
            "ledger_disagreements (double settlements, single-sided)": len(self.ledger_problems),
            "unrepaired_single_sided": self.single_sided, "settled": self.settled, "refunded": self.refunded,
            "parked_visits": self.parked_visits, "dead_letters": self.dead_letters,
            "reconciliation": self.reconciliation, "disruptions": dict(kinds),
            "faults_fired": sum(self.faults_fired.values()), "seconds": round(self.seconds, 1),
            "ingest_order_violations": len(self.ingest_order_violations),
            "chains_per_s": round(sum(self.chains.values()) / self.seconds, 2) if self.seconds else None,
        }

    def to_json(self) -> str:
        body = {"summary": self.summary(), "plan": self.plan, "stack": self.stack,
                "unanswered": self.unanswered[:50], "unexpected": self.unexpected[:50],
                "ledger_problems": self.ledger_problems[:50],
                "ingest_order_violations": self.ingest_order_violations[:50],
                "disruptions": [dataclasses.asdict(d) for d in self.disruptions], "faults_fired": self.faults_fired}
        return json.dumps(body, indent=2, ensure_ascii=False, default=str)


def run_chaos(plan: ChaosPlan, workdir: Path, *, say: Callable[[str], None] = print) -> ChaosReport:
    """Start a stack and a bridge of the run's own, play the plan, audit; everything is stopped afterwards."""
    from yibao.core.db.migrations import upgrade
    from yibao.stack import start_stack
    from yibao.stack.bridge import LocalBridge

    workdir.mkdir(parents=True, exist_ok=True)
    stack = start_stack(prefer="real", workdir=workdir / "stack", require_real=True)
    bridge = None
    try:
        if stack.kafka_broker is None or stack.postgres_server is None:
            raise StackError("chaos restarts its broker and database: it needs the Kafka broker and the private "
                             "PostgreSQL cluster this machine can start (Java + Maven, PostgreSQL server binaries)")
        info = stack.info
        upgrade(info.database_url)
        tokens = _static_tokens(workdir)
        env = {**FAST, "YIBAO_RECONCILIATION_REPORTS_DIR": str(workdir / "reports"),
               "YIBAO_RECONCILIATION_AUTH_STATIC_TOKENS_FILE": str(tokens)}
        rng = random.Random(plan.seed)
        people = max(500, int(plan.visits * 1.1) + 50)
        bridge = LocalBridge(info, workdir, sim_seed=plan.seed, sim_population=people, env=env,
                             services=("ingest", "registration", "settlement", "reconciliation")).start()
        report = ChaosReport(plan=dataclasses.asdict(plan), stack={"broker": info.kafka_detail,
                                                                  "database": info.database_detail})
        asyncio.run(_play(plan, stack, bridge, report, rng, people, say))
        return report
    finally:
        if bridge is not None:
            bridge.stop()
        stack.stop()


def _static_tokens(workdir: Path) -> Path:
    path = workdir / "finance-tokens.json"
    path.write_text(json.dumps({"users": [{"user": "chaos.clerk", "roles": ["clerk"], "token": CLERK_TOKEN}]}))
    return path


async def _play(plan: ChaosPlan, stack: Any, bridge: Any, report: ChaosReport, rng: random.Random, people: int,
                say: Callable[[str], None]) -> None:
    from yibao.cli.demo import _produce, _wait_for_answers
    from yibao.core.kafka import create_topics
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day
    from yibao.fakedata.people import population
    from yibao.hisevents import Ingestor, load_mapping
    from yibao.stack.audit import Answers, audit, his_requests

    mapping = load_mapping("example-oracle-his")
    ingestor = Ingestor(mapping)
    await create_topics(bridge.info.kafka_bootstrap, [(t, 1, {}) for t in mapping.topics()])
    everyone = population(plan.seed, people)
    messages: list[Any] = []
    requests: dict[str, set[Any]] = {}
    start_person, day = 0, _dt.date(2026, 10, 1)
    remaining = plan.visits
    while remaining > 0:
        size = min(plan.day_size, remaining)
        inpatients = round(size * plan.inpatient_share)
        crowd = everyone[start_person:start_person + size + 10]
        start_person += size + 10
        day_messages = generate_day(plan.seed, day=day, outpatients=size - inpatients, inpatients=inpatients,
                                    people=crowd, shape=CdcShape(decimal_mode="precise", schemas=True))
        for kind, keys in his_requests(ingestor, day_messages).items():
            requests.setdefault(kind, set()).update(keys)
        messages += day_messages
        remaining -= size
        day += _dt.timedelta(days=1)
    messages = in_commit_order(messages)
    report.visits = plan.visits
    report.requests = sum(len(v) for v in requests.values())
    say(f"chaos: {plan.visits} visits, {report.requests} HIS requests, {len(messages)} change events; faults "
        f"{len(plan.faults)}, disruptions {', '.join(plan.disruptions) or 'none'}")

    bridge.set_faults(list(plan.faults))
    started = time.monotonic()
    # the days are on the CDC topics before ingest reads any of them (ingest was down while HIS worked: the backlog
    # its commit order is for). A consumer reading the topics while a producer still writes them can meet a later
    # change of one table before an earlier change of another has reached its own topic — no consumer can wait for
    # a record it cannot see (the chain services' order window covers that) — so the order audit judges ingest alone
    ingest = bridge.workers.get("ingest")
    if ingest is not None:
        await asyncio.to_thread(ingest.stop)
    await _produce(bridge.info.kafka_bootstrap, [(m.topic, m.key, m.value) for m in messages])
    if ingest is not None:
        await asyncio.to_thread(bridge.start_worker, "ingest")
    stop = asyncio.Event()
    monkey = asyncio.create_task(_monkey(plan, stack, bridge, report, rng, started, stop, say))
    try:
        results, _ = await _wait_for_answers(bridge.info.kafka_bootstrap, requests, time.monotonic(),
                                             plan.timeout_s, quiet=True)
    finally:
        stop.set()
        await monkey
    bridge.set_faults([])
    report.faults_fired = {k: int(v) for k, v in bridge.admin("counters").get("faults", {}).items()}
    # the last answers of work a disruption delayed, and what reconciliation books, settle down
    results, _ = await _wait_for_answers(bridge.info.kafka_bootstrap, requests, time.monotonic(), 120, quiet=True)
    report.seconds = time.monotonic() - started
    answers = Answers(results)
    report.unanswered = [f"{kind} {key}" for kind, key in answers.unanswered(requests)]
    report.unexpected = [p for p in answers.unexpected(requests) if not any(u in p for u in report.unanswered)]
    report.answered = report.requests - len(report.unanswered)
    report.ledger_problems = audit(answers.results, bridge.admin("settlements")).problems
    report.settled = sum(1 for r in answers.results if r.kind == "settled")
    report.refunded = sum(1 for r in answers.results if r.kind == "refunded")
    report.parked_visits, report.dead_letters, report.chains = await _parked(bridge)
    report.ingest_order_violations = await _ingest_order(bridge)
    if plan.reconcile:
        told = {r.setl_id for r in answers.results if r.setl_id and r.kind in ("settled", "refunded")}
        report.reconciliation = await _reconcile(bridge, told)
    say(f"chaos: {json.dumps(report.summary(), ensure_ascii=False, default=str)}")


def in_commit_order(messages: list[Any]) -> list[Any]:
    """The generated days' records in HIS commit order, as Debezium writes a HIS's log: each day is generated on
    its own and an inpatient stay runs into the following days, so days put one after the other are not — a topic
    would carry a change committed on the 5th before one committed on the 2nd. A record without a place (a
    tombstone, a heartbeat) keeps the place of the record before it."""
    from yibao.hisevents.debezium import ChangeEvent, decode
    from yibao.hisevents.order import commit_key

    keyed = []
    last: tuple[Any, ...] = ()
    for n, m in enumerate(messages):
        try:
            change = decode(m.topic, 0, 0, m.key, m.value)
        except Exception:  # an injected bad record: where it was
            change = None
        if isinstance(change, ChangeEvent):
            last = commit_key(change.source_ts_ms, change.position) or last
        keyed.append((last, n, m))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [m for _, _, m in keyed]


def victim(rng: random.Random, workers: Sequence[str], killed: set[str]) -> str:
    """The worker a random kill takes: one of those not killed yet while there are any — every worker kind is
    killed once before any is killed twice, so even a short run kills each — then any."""
    fresh = [w for w in workers if w not in killed]
    return rng.choice(fresh or list(workers))


async def _monkey(plan: ChaosPlan, stack: Any, bridge: Any, report: ChaosReport, rng: random.Random,
                  started: float, stop: asyncio.Event, say: Callable[[str], None]) -> None:
    """Disrupt the bridge until ``stop``: the scripted disruptions first, then at random intervals."""
    scripted = list(plan.scripted)
    killed: set[str] = set()
    while not stop.is_set():
        if not scripted:
            if not plan.disruptions:
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=rng.uniform(*plan.every_s))
                return
            except asyncio.TimeoutError:
                pass
        kind, _, arg = (scripted.pop(0) if scripted else rng.choice(plan.disruptions)).partition(":")
        at = time.monotonic() - started
        began = time.monotonic()
        try:
            if kind == "kill":
                name = arg or victim(rng, plan.workers, killed)
                killed.add(name)
                what = f"SIGKILL {name}"
                await asyncio.to_thread(bridge.kill_worker, name)
                await asyncio.sleep(rng.uniform(0.5, 4.0))
                await asyncio.to_thread(bridge.start_worker, name)
            elif kind == "database":
                down = float(arg) if arg else rng.uniform(*plan.database_down_s)
                what = f"PostgreSQL stopped for {down:.0f} s"
                await asyncio.to_thread(stack.postgres_server.stop_fast)
                await asyncio.sleep(down)
                await asyncio.to_thread(stack.postgres_server.start_again)
            elif kind == "broker":
                what = "Kafka broker restarted"
                await asyncio.to_thread(stack.kafka_broker.stop_now)
                await asyncio.sleep(rng.uniform(0.5, 3.0))
                await asyncio.to_thread(stack.kafka_broker.start_again)
            else:
                raise StackError(f"chaos: unknown disruption {kind!r} (kill, database, broker)")
        except StackError:
            raise
        except Exception as exc:  # the disruption itself failed: say so, the run goes on
            what = f"{kind} failed: {type(exc).__name__}: {exc}"
        report.disruptions.append(Disruption(kind, what, round(at, 1), round(time.monotonic() - began, 1)))
        say(f"chaos: {at:7.1f}s {what}")


async def _parked(bridge: Any) -> tuple[int, int, dict[str, int]]:
    """Visits parked, dead letters (on the DLQ topic or in the parked_work table), and chains by service."""
    from sqlalchemy import create_engine, func, select

    from yibao.core.db.schema import chain_visits, parked_work
    from yibao.core.messaging.depth import dead_letter_topic_depth

    engine = create_engine(bridge.info.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            parked = conn.execute(select(func.count()).select_from(chain_visits)
                                  .where(chain_visits.c.status == "parked")).scalar_one()
            table = conn.execute(select(func.count()).select_from(parked_work)).scalar_one()
            chains = dict(conn.execute(select(chain_visits.c.service, func.count())
                                       .group_by(chain_visits.c.service)).all())
    finally:
        engine.dispose()
    on_topic = await dead_letter_topic_depth(bridge.info.kafka_bootstrap, bridge.prefix)
    return int(parked), int(table) + int(on_topic), {str(k): int(v) for k, v in chains.items()}


def order_violations(values: Iterable[bytes]) -> list[str]:
    """Canonical events as a consumer reads them (each partition in offset order) against HIS commit order
    (:func:`yibao.hisevents.order.commit_key`): per visit, the first copy of each event must come in commit order;
    where it does not, the change was handed on too early. Repeats of an event (at least once) are skipped."""
    from yibao.hisevents.order import commit_key

    per_visit: dict[str, list[tuple[Any, str, str]]] = {}
    seen: set[str] = set()
    for value in values:
        event = json.loads(value)
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        source = event.get("source") or {}
        key = commit_key(source.get("ts_ms"), source.get("position"))
        per_visit.setdefault(event["his_visit_id"], []).append((key, event["type"], source.get("table")))
    problems = []
    for visit, events in per_visit.items():
        for (a, a_type, a_table), (b, b_type, b_table) in zip(events, events[1:]):
            if a is not None and b is not None and b < a:
                problems.append(f"visit {visit}: {b_type} ({b_table}) committed before {a_type} ({a_table}) "
                                f"but handed on after it")
    return problems


async def _ingest_order(bridge: Any) -> list[str]:
    """The canonical events topic, read from the start, judged by :func:`order_violations`."""
    import uuid

    from aiokafka import AIOKafkaConsumer

    from yibao.core.topics import topic

    consumer = AIOKafkaConsumer(topic("his_events", bridge.prefix), bootstrap_servers=bridge.info.kafka_bootstrap,
                                group_id=f"chaos-audit-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()) or [])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not consumer.assignment():
                await asyncio.sleep(0.2)
                ends = {}
                continue
            if not ends:
                ends = await consumer.end_offsets(list(consumer.assignment()))
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                values.extend(r.value for r in records)
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
    finally:
        await consumer.stop()
    return order_violations(values)


async def _reconcile(bridge: Any, told: set[str]) -> dict[str, Any]:
    """Today's 3201/3202 run by the reconciliation worker, once it has booked what HIS was told."""
    from sqlalchemy import create_engine, select

    from yibao.core.db.schema import recon_ledger

    engine = create_engine(bridge.info.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        deadline = time.monotonic() + 300
        while True:
            with engine.connect() as conn:
                booked = set(conn.execute(select(recon_ledger.c.setl_id)).scalars())
            if told <= booked or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    finally:
        engine.dispose()
    url = bridge.workers["reconciliation"].url
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {CLERK_TOKEN}"}) as client:
        reply = await client.post(f"{url}/recon/runs", json={"date": clock.today().isoformat()})
        if reply.status_code != 202:
            return {"state": "not started", "detail": reply.text[:300]}
        run_id = reply.json()["run_id"]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            run = (await client.get(f"{url}/recon/runs/{run_id}")).json()
            if run.get("state") in ("balanced", "differences_found", "repaired_and_balanced", "failed", "refused"):
                summary = run.get("summary") or {}
                return {"state": run["state"], "differences": summary.get("differences"), "summary": summary}
            await asyncio.sleep(1)
    return {"state": "did not end"}
