"""The results-to-HIS writer: ``yibao worker his-writer``."""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError
from sqlalchemy import Engine

from yibao.core.db import make_engine
from yibao.core.errors import ConfigurationError, DecodeError
from yibao.core.results import HisResult
from yibao.core.runtime import MessageContext, ServiceRuntime
from yibao.core.topics import topic
from yibao.his_writer.metrics import RESULTS_WRITTEN
from yibao.his_writer.settings import HisWriterSettings
from yibao.his_writer.writer import results_table, write_result

__all__ = ["build", "main", "parse_result"]

log = logging.getLogger(__name__)


def parse_result(value: bytes | None) -> HisResult:
    """A HisResult from the topic's bytes; DecodeError (parked) names what is wrong, never a value."""
    if not value:
        raise DecodeError("empty HisResult")
    try:
        return HisResult.model_validate_json(value)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"]) or "(message)" for e in exc.errors()[:3])
        raise DecodeError(f"not a HisResult: {where}") from None


def build(settings: HisWriterSettings | None = None) -> ServiceRuntime:
    settings = settings or HisWriterSettings()
    url = settings.his_database_url.get_secret_value()
    if not url:
        raise ConfigurationError("YIBAO_HIS_WRITER_HIS_DATABASE_URL is not set: the HIS database to write to")
    his: Engine = make_engine(url)
    table = results_table(settings.results_table, settings.results_schema)
    runtime = ServiceRuntime(settings, name="his-writer")
    source = runtime.app.topic(topic("his_results", settings.topic_prefix), value_type=bytes, key_type=bytes)

    table_ready = not settings.create_table

    def write(result: HisResult) -> bool:
        nonlocal table_ready
        if not table_ready:  # the HIS database may answer only later: made sure of before the first write
            table.metadata.create_all(his, checkfirst=True)
            table_ready = True
        with his.begin() as conn:
            return write_result(conn, table, result)

    @runtime.app.agent(source, name="his-writer-results")
    async def results(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            ctx = MessageContext.of(event)

            async def handle() -> str:
                result = parse_result(ctx.value)
                written = await asyncio.to_thread(write, result)
                RESULTS_WRITTEN.labels("written" if written else "duplicate").inc()
                return "processed" if written else "duplicate"

            await runtime.process(ctx, handle)

    return runtime


def main() -> int:
    return build().run()
