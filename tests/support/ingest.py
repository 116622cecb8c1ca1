"""Feeding an ingest worker a generated HIS day under a topic prefix of the test's own, and knowing what must
come out (the pure library's view of the same messages is the oracle)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from support.kafka import consume, produce
from support.workers import WorkerProcess
from yibao.core.kafka import create_topics
from yibao.core.topics import topic
from yibao.fakedata.cdc import CdcShape, RawCdcMessage
from yibao.fakedata.his import generate_day
from yibao.hisevents import Ingestor, load_mapping

__all__ = ["IngestDeployment", "MAPPING"]

MAPPING = load_mapping("example-oracle-his")


@dataclass
class IngestDeployment:
    """One deployment's view of ingest: its prefix, its CDC topics, its canonical and dead-letter topics."""

    prefix: str
    bootstrap: str
    database_url: str
    _case: dict[str, str] = field(default_factory=lambda: {t.lower(): t for t in MAPPING.topics()})

    @property
    def cdc_topics(self) -> list[str]:
        return [self.prefix + t for t in MAPPING.topics()]

    @property
    def events_topic(self) -> str:
        return topic("his_events", self.prefix)

    @property
    def dlq_topic(self) -> str:
        return topic("dlq", self.prefix)

    async def create_cdc_topics(self) -> None:
        await create_topics(self.bootstrap, [(t, 1, {}) for t in self.cdc_topics])

    def worker(self, log: Path, **env: str) -> WorkerProcess:
        return WorkerProcess("ingest", {
            "KAFKA_BOOTSTRAP": self.bootstrap, "DATABASE_URL": self.database_url, "YIBAO_TOPIC_PREFIX": self.prefix,
            "YIBAO_INGEST_CDC_TOPICS": json.dumps(self.cdc_topics), "YIBAO_SESSION_TIMEOUT_S": "6",
            "YIBAO_OUTAGE_BACKOFF_MAX_S": "2", **env,
        }, log)

    def cdc_topic(self, name: str) -> str:
        return self.prefix + self._case.get(name.lower(), name)

    def day(self, seed: int, *, outpatients: int = 20, inpatients: int = 2,
            day: _dt.date = _dt.date(2026, 3, 2)) -> list[RawCdcMessage]:
        return generate_day(seed, day=day, outpatients=outpatients, inpatients=inpatients,
                            shape=CdcShape(decimal_mode="string"))

    def expected_ids(self, messages: list[RawCdcMessage]) -> list[str]:
        ingestor = Ingestor(MAPPING)
        ids: list[str] = []
        for m in messages:
            if not m.expect_error:
                ids += [e.event_id for e in ingestor.ingest(self.cdc_topic(m.topic), 0, 0, m.key, m.value).events]
        return ids

    async def send(self, messages: list[RawCdcMessage]) -> None:
        await produce(self.bootstrap, [(self.cdc_topic(m.topic), m.key, m.value) for m in messages])

    async def events(self, wanted: set[str], *, timeout: float = 120) -> list:
        """The canonical records whose event id is wanted, once every one of them arrived."""

        def complete(records: list) -> bool:
            return wanted <= {json.loads(r.value)["event_id"] for r in records}

        records = await consume(self.bootstrap, [self.events_topic], timeout=timeout, until=complete)
        return [r for r in records if json.loads(r.value)["event_id"] in wanted]

    async def dead_letters(self, *, idle: float = 3) -> list[dict]:
        records = await consume(self.bootstrap, [self.dlq_topic], timeout=idle + 5, idle=idle)
        return [json.loads(r.value) for r in records]

    @staticmethod
    def id_counts(records: list) -> Counter[str]:
        return Counter(json.loads(r.value)["event_id"] for r in records)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
