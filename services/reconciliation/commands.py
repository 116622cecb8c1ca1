"""Messages the worker consumes: HisResults into the ledger, and finance's commands.

Both are units of work run through :meth:`ServiceRuntime.process` (retry, park); a message that cannot be read
is an :class:`~yibao.core.errors.InputError` and is parked at once.

* A ``run`` command submits a run whose id is derived from the command id (a redelivered command names the
  same run, which then exists: nothing happens twice); the run goes on in the background and reports on
  ``yibao.recon.results.v1``.
* ``approve`` / ``reject`` decide the run's pending repairs, waiting (up to ``wait_s``) while the run — or a run
  holding one of its days — is still going. Approving what was already decided (a redelivery)
  finds nothing pending: the message is acknowledged as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError
from sqlalchemy import Connection

from yibao.core.errors import DecodeError
from yibao.core.results import HisResult

from .errors import ApprovalError, BadCommand, RunBusy, RunNotFound
from .ledger import record_result
from .models import ReconCommand
from .reconciler import Reconciler
from .runs import run_id_for_command

__all__ = ["parse_his_result", "store_his_result", "parse_command", "handle_command"]

log = logging.getLogger(__name__)


def parse_his_result(value: bytes | None) -> HisResult | None:
    """None for a tombstone; DecodeError for anything that is not a HisResult."""
    if value is None:
        return None
    try:
        return HisResult.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        raise DecodeError(f"not a HisResult: {where}: {first.get('msg')}") from None


def store_his_result(conn: Connection, value: bytes | None) -> str:
    result = parse_his_result(value)
    if result is None:
        return "skipped"
    return record_result(conn, result)


def parse_command(value: bytes | None) -> ReconCommand:
    if value is None:
        raise BadCommand("an empty command message")
    try:
        return ReconCommand.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "command"
        raise BadCommand(f"not a reconciliation command: {where}: {first.get('msg')}") from None


async def handle_command(reconciler: Reconciler, command: ReconCommand, *, wait_s: float = 600.0,
                         poll_s: float = 2.0) -> str:
    """Act on one command; the outcome for the runtime's metrics (processed, duplicate, skipped)."""
    if command.kind == "run":
        try:
            request = command.run_request()
        except ValidationError as exc:
            raise BadCommand(f"run command {command.command_id}: {exc.errors()[0]['msg']}") from None
        run = await reconciler.start(request, run_id=run_id_for_command(command.command_id))
        log.info("run requested by command", extra={"fields": {"command_id": command.command_id,
                                                               "run_id": run.run_id, "state": run.state}})
        return "processed"
    assert command.run_id and command.by
    decide = reconciler.approve if command.kind == "approve" else reconciler.reject
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    try:
        while True:
            try:
                await decide(command.run_id, by=command.by, reason=command.reason or f"{command.kind} by command",
                             ids=command.difference_ids)
                break
            except RunBusy:
                if loop.time() >= deadline:
                    raise  # transient: the runtime retries, then parks it
                await asyncio.sleep(poll_s)
    except RunNotFound as exc:
        raise BadCommand(str(exc)) from None
    except RunBusy:
        raise
    except ApprovalError as exc:
        log.warning("command not applied", extra={"fields": {"command_id": command.command_id,
                                                             "reason": str(exc)}})
        return "duplicate"
    return "processed"
