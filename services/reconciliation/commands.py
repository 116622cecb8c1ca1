"""Messages the worker consumes: HisResults into the ledger, and finance's commands.

Both are units of work run through :meth:`ServiceRuntime.process` (retry, park); a message that cannot be read
is an :class:`~yibao.core.errors.InputError` and is parked at once.

* A ``run`` command submits a run whose id is derived from the command id (a redelivered command names the
  same run, which then exists: nothing happens twice); the run goes on in the background and reports on
  ``yibao.recon.results.v1``.
* ``approve`` / ``reject`` decide the run's pending repairs, waiting (up to ``wait_s``) while the run — or a run
  holding one of its days — is still going. Approving what was already decided (a redelivery)
  finds nothing pending: the message is acknowledged as a duplicate.

Every command must be signed (:mod:`yibao.reconciliation.signing`): :func:`handle_signed_command` verifies the
signature, the issuer and their role, refuses replays by nonce, applies four eyes to approvals and writes the
audit row; an unsigned, forged, stale, replayed or unauthorised command is parked with the reason and never
acts.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError
from sqlalchemy import Connection

from yibao.core.errors import DecodeError, InputError
from yibao.core.results import HisResult

from . import audit
from .audit import Actor
from .errors import ApprovalError, BadCommand, FourEyesViolation, RunBusy, RunNotFound
from .signing import CommandKeys, claim_nonce, finish_nonce, verify_command
from .ledger import record_result
from .models import ReconCommand
from .reconciler import Reconciler
from .runs import run_id_for_command

__all__ = ["parse_his_result", "store_his_result", "parse_command", "handle_command", "handle_signed_command"]

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


async def handle_command(reconciler: Reconciler, command: ReconCommand, *, actor: Actor | None = None,
                         wait_s: float = 600.0, poll_s: float = 2.0) -> str:
    """Act on one command (already verified); the outcome for the runtime's metrics (processed, duplicate)."""
    if command.kind == "run":
        try:
            request = command.run_request()
        except ValidationError as exc:
            raise BadCommand(f"run command {command.command_id}: {exc.errors()[0]['msg']}") from None
        run = await reconciler.start(request, run_id=run_id_for_command(command.command_id), actor=actor)
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
                             ids=command.difference_ids, actor=actor)
                break
            except RunBusy:
                if loop.time() >= deadline:
                    raise  # transient: the runtime retries, then parks it
                await asyncio.sleep(poll_s)
    except RunNotFound as exc:
        raise BadCommand(str(exc)) from None
    except RunBusy:
        raise
    except FourEyesViolation as exc:
        refusal = str(exc)
        if actor is not None:
            await reconciler.db(lambda conn: audit.record(conn, actor, command.kind, "refused", run_id=command.run_id,
                                                          difference_ids=command.difference_ids, detail=refusal))
        raise BadCommand(f"{command.kind} command {command.command_id} refused: {refusal}") from None
    except ApprovalError as exc:
        if actor is not None:
            reason = str(exc)
            await reconciler.db(lambda conn: audit.record(conn, actor, command.kind, "refused", run_id=command.run_id,
                                                          difference_ids=command.difference_ids, detail=reason))
        log.warning("command not applied", extra={"fields": {"command_id": command.command_id,
                                                             "reason": str(exc)}})
        return "duplicate"
    return "processed"


async def handle_signed_command(reconciler: Reconciler, keys: CommandKeys | None, value: bytes | None, *,
                                source: str, max_age_s: float = 300.0, clock_skew_s: float = 60.0,
                                wait_s: float = 600.0, poll_s: float = 2.0) -> str:
    """Verify, then act on, one message of the command topic (see the module docstring)."""
    try:
        verified = verify_command(value, keys, max_age_s=max_age_s, clock_skew_s=clock_skew_s)
    except InputError as exc:
        reason = str(exc)
        await reconciler.db(lambda conn: audit.record(conn, Actor("-", "-", "command", source), "command",
                                                      "refused", detail=reason))
        log.warning("command refused", extra={"fields": {"source": source, "reason": reason}})
        raise
    command = verified.command
    key_id = command.key_id or ""
    try:
        state = await reconciler.db(lambda conn: claim_nonce(conn, verified, key_id))
    except InputError as exc:
        reason = str(exc)
        await reconciler.db(lambda conn: audit.record(conn, Actor(verified.principal.user, verified.role, "command",
                                                                  source), command.kind, "refused",
                                                      run_id=command.run_id, detail=reason))
        raise
    if state == "done":
        return "duplicate"
    actor = Actor(verified.principal.user, verified.role, "command", source)
    outcome = await handle_command(reconciler, command, actor=actor, wait_s=wait_s, poll_s=poll_s)
    await reconciler.db(lambda conn: finish_nonce(conn, verified.nonce))
    return outcome
