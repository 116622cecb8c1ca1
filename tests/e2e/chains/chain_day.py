"""Imported as ``e2e.chains.chain_day``. The whole HIS → platform path as real processes, fed generated HIS days.

:func:`bridge_on_stack` starts the simulator (``yibao sim``) and the ingest, registration and settlement workers
(``yibao worker …``) through :class:`yibao.stack.bridge.LocalBridge`, on the session's real Kafka and a fresh
PostgreSQL database of its own, under a topic prefix of its own. :class:`ChainRig` feeds it a day of CDC change
events (:func:`yibao.fakedata.his.generate_day`, produced to the prefixed CDC topics as the connector would),
waits until HIS has an answer to every request, and checks what a hospital checks: every request answered with
success, none answered twice, and the platform's ledger agreeing with what HIS was told
(:func:`yibao.stack.audit.audit`).

Days of one rig share the simulator's population (its seed) and use disjoint people, so no patient of one test
is still in the ward (one open admission per person) when the next test admits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from support.kafka import consume, produce
from support.stack import new_database
from yibao.cli.demo import _wait_for_answers
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import chain_calls
from yibao.core.kafka import create_topics
from yibao.core.results import HisResult
from yibao.core.topics import topic
from yibao.fakedata.cdc import CdcShape, RawCdcMessage
from yibao.fakedata.his import generate_day
from yibao.fakedata.people import population
from yibao.hisevents import Ingestor, load_mapping
from yibao.stack import Stack
from yibao.stack.audit import Answers, RequestKey, audit, his_requests
from yibao.stack.bridge import CHAIN_SERVICES, LocalBridge

__all__ = ["SEED", "FAST", "Day", "ChainRig", "bridge_on_stack", "shuffled_tables"]

#: the simulator's population seed: every generated patient is a person it knows
SEED = 2026
MAPPING = "example-oracle-his"
#: short waits, so a fault costs a fraction of a second instead of the production minutes
FAST = {
    "YIBAO_SIM_HOLD_S": "1",
    "YIBAO_PLATFORM_RETRY_BACKOFF_S": "0.05",
    "YIBAO_REGISTRATION_CHAIN_BACKOFF_S": "0.1",
    "YIBAO_SETTLEMENT_CHAIN_BACKOFF_S": "0.1",
    "YIBAO_REGISTRATION_CHAIN_BACKOFF_MAX_S": "1",
    "YIBAO_SETTLEMENT_CHAIN_BACKOFF_MAX_S": "1",
    "YIBAO_REGISTRATION_CHAIN_MAX_ATTEMPTS": "40",
    "YIBAO_SETTLEMENT_CHAIN_MAX_ATTEMPTS": "40",
    "YIBAO_REGISTRATION_CHAIN_LEASE_S": "10",
    "YIBAO_SETTLEMENT_CHAIN_LEASE_S": "10",
}


@dataclass
class Day:
    """A generated HIS day: its CDC messages (in commit order) and the HIS requests they make."""

    messages: list[RawCdcMessage]
    requests: dict[str, set[RequestKey]]

    def count(self) -> int:
        return sum(len(keys) for keys in self.requests.values())


def shuffled_tables(messages: list[RawCdcMessage], seed: int) -> list[RawCdcMessage]:
    """The same change events with the tables interleaved at random: each table's (topic's) own order is kept, as
    a connector keeps it, but events of different tables of one visit may come in any order."""
    rng = random.Random(f"shuffle:{seed}")
    queues: dict[str, list[RawCdcMessage]] = {}
    for m in messages:
        queues.setdefault(m.topic, []).append(m)
    for q in queues.values():
        q.reverse()
    out: list[RawCdcMessage] = []
    while queues:
        name = rng.choice(sorted(queues))
        out.append(queues[name].pop())
        if not queues[name]:
            del queues[name]
    return out


class ChainRig:
    """A started bridge and what a test does with it."""

    def __init__(self, bridge: LocalBridge, database_url: str) -> None:
        self.bridge = bridge
        self.database_url = database_url
        self.ingestor = Ingestor(load_mapping(MAPPING))
        self._people = iter(range(0, 500, 40))  # 12 disjoint groups of 40 people
        self._days = iter(range(1, 400))
        self._engine: Engine | None = None

    # --- days ---------------------------------------------------------------------------------------------

    def day(self, *, outpatients: int, inpatients: int, duplicates: int = 0) -> Day:
        """A new day of its own (visit ids carry the date) for 40 people nobody else used."""
        start = next(self._people)
        people = population(SEED, 500)[start:start + 40]
        date = _dt.date(2026, 11, 1) + _dt.timedelta(days=next(self._days))
        messages = generate_day(SEED, day=date, outpatients=outpatients, inpatients=inpatients, people=people,
                                shape=CdcShape(decimal_mode="precise", schemas=True), duplicates=duplicates)
        return Day(messages, his_requests(self.ingestor, messages))

    async def produce(self, messages: list[RawCdcMessage]) -> None:
        await produce(self.bridge.info.kafka_bootstrap,
                      [(self.bridge.cdc_topic(m.topic), m.key, m.value) for m in messages])

    async def answers(self, day: Day, *, timeout: float = 120) -> Answers:
        """The HisResults so far, once every request of ``day`` has its final answer (or at the timeout)."""
        results, _ = await _wait_for_answers(self.bridge.info.kafka_bootstrap, day.requests, time.monotonic(),
                                             timeout, prefix=self.bridge.prefix, quiet=True)
        return Answers(results)

    async def run(self, day: Day, messages: list[RawCdcMessage] | None = None, *, timeout: float = 120) -> Answers:
        await self.produce(day.messages if messages is None else messages)
        return await self.answers(day, timeout=timeout)

    async def results_until(self, done: Callable[[list[HisResult]], bool], *, timeout: float = 90) -> list[HisResult]:
        """Every HisResult so far, once ``done(results)`` holds (AssertionError at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            records = await consume(self.bridge.info.kafka_bootstrap, [topic("his_results", self.bridge.prefix)],
                                    idle=1.0, timeout=10)
            results = [HisResult.model_validate_json(r.value) for r in records]
            if done(results):
                return results
            assert time.monotonic() < deadline, "the HIS results awaited never came"

    # --- checks -------------------------------------------------------------------------------------------

    def problems(self, day: Day, answers: Answers) -> list[str]:
        """What a hospital would complain about: a request not answered with success or answered twice, and
        every disagreement between the platform's ledger and what HIS was told."""
        report = audit(answers.results, self.bridge.admin("settlements"))
        return answers.unexpected(day.requests) + report.problems

    def explain(self, problems: list[str]) -> str:
        tails = "\n".join(f"--- {name}.log\n{w.log_tail(15)}" for name, w in self.bridge.workers.items())
        return "\n".join(problems[:30]) + "\n" + tails

    # --- the database and the simulator ----------------------------------------------------------------------

    @property
    def db(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.database_url)
        return self._engine

    def calls(self, service: str, infno: str) -> list[tuple[str, str, str | None]]:
        """(visit, status, resolution) of every journalled call of ``infno`` by ``service``."""
        with self.db.connect() as conn:
            rows = conn.execute(select(chain_calls.c.visit_key, chain_calls.c.status, chain_calls.c.resolution)
                                .where(chain_calls.c.service == self.bridge.prefix + service,  # the deployment's
                                       chain_calls.c.infno == infno)
                                .order_by(chain_calls.c.id)).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    async def wait_for_calls_in_flight(self, service: str, infnos: tuple[str, ...], *,
                                       timeout: float = 60) -> dict[str, str]:
        """infno → the visit of a ``service`` call journalled as sent and not answered yet, once every one of
        ``infnos`` has such a call at the same moment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = {infno: [visit for visit, status, _ in self.calls(service, infno) if status == "sent"]
                    for infno in infnos}
            if all(sent.values()):
                return {infno: visits[0] for infno, visits in sent.items()}
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{', '.join(infnos)} of {service} not all in flight within {timeout:.0f}s")

    def fired(self) -> dict[str, int]:
        """The simulator's fault counters (``infno:kind`` → times fired)."""
        return dict(self.bridge.admin("counters").get("faults", {}))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def bridge_on_stack(stack: Stack, tmp: Path, *, extra_env: dict[str, str] | None = None,
                    services: tuple[str, ...] = CHAIN_SERVICES) -> Iterator[ChainRig]:
    """A module's bridge: a fresh database, a topic prefix of its own, the CDC topics created, every process
    started and ready. Stopped (and its logs kept in ``tmp``) afterwards."""
    url = new_database(stack, tmp)
    upgrade(url)
    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    info = dataclasses.replace(stack.info, database_url=url)
    topics = [prefix + t for t in load_mapping(MAPPING).topics()]
    asyncio.run(create_topics(info.kafka_bootstrap, [(t, 1, {}) for t in topics]))
    bridge = LocalBridge(info, tmp, prefix=prefix, sim_seed=SEED, env={**FAST, **(extra_env or {})},
                         services=services)
    bridge.start()
    rig = ChainRig(bridge, url)
    try:
        yield rig
    finally:
        rig.close()
        bridge.stop()
