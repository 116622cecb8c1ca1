"""Two deployments (topic prefixes) sharing one PostgreSQL database: national reconciliation reads only its own
deployment's platform calls. Every call-log row carries the deployment of the connection that wrote it
(``platform_calls.deployment``) — through the platform client's log and through the chain journal alike — and the
reads behind 3201/3202 and the repairs (``call_for``, ``optins_of_calls``) keep to it, even where both deployments
logged the same mdtrt_id and the same visit keys."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import Engine, select

from unit.reconciliation.recon_fakes import NOON, entry
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import platform_calls
from yibao.core.deployment import Deployment, bind
from yibao.envelope.calllog import CallLog, CallRecord, calls_for_visit, row_values, write_rows
from yibao.reconciliation.ledger import insert_entry
from yibao.reconciliation.truth import call_for, optins_of_calls

pytestmark = [pytest.mark.integration]

HOUR = dt.timedelta(hours=1)


def _record(msgid: str, outcome: str, visit: str) -> CallRecord:
    return CallRecord(service="settlement", infno="2207", msgid=msgid, visit_key=visit, started_at=NOON,
                      outcome=outcome)


def _log_by_client(engine: Engine, msgid: str, outcome: str, *, mdtrt_id: str, visit: str,
                   optins: str | None = None) -> None:
    """As the national client logs a call (its CallLog on the service's bound engine)."""
    output = {"setlinfo": {"clr_optins": optins}} if optins else None
    CallLog(engine).write_sync(_record(msgid, outcome, visit), input_obj={"data": {"mdtrt_id": mdtrt_id}},
                               output_obj=output)


def _log_by_journal(engine: Engine, msgid: str, outcome: str, *, mdtrt_id: str, visit: str) -> None:
    """As the chain engine logs a call (in the journal's own transaction)."""
    with engine.begin() as conn:
        write_rows(conn, [row_values(_record(msgid, outcome, visit), input_obj={"data": {"mdtrt_id": mdtrt_id}})])


def test_two_deployments_on_one_database_reconcile_only_their_own_national_calls(fresh_db_url: str) -> None:
    if not fresh_db_url.startswith("postgresql"):
        pytest.skip("needs the stack's PostgreSQL")
    upgrade(fresh_db_url)
    base = make_engine(fresh_db_url)
    tag = uuid.uuid4().hex[:6]
    pa, pb = f"a{tag}.", f"b{tag}."
    a, b, default = bind(base, Deployment(prefix=pa)), bind(base, Deployment(prefix=pb)), base
    try:
        # the same HIS visit and the same platform visit (mdtrt_id) in both deployments
        _log_by_client(a, f"A{tag}-1", "unknown", mdtrt_id="M-SAME", visit="V-SAME")
        _log_by_client(b, f"B{tag}-1", "unknown", mdtrt_id="M-SAME", visit="V-SAME")
        _log_by_journal(b, f"B{tag}-2", "unknown", mdtrt_id="M-ONLY-B", visit="V-B")
        _log_by_client(a, f"A{tag}-3", "success", mdtrt_id="M-A3", visit="V-A3", optins="440111")
        _log_by_client(b, f"B{tag}-3", "success", mdtrt_id="M-B3", visit="V-B3", optins="440222")
        _log_by_client(default, f"D{tag}-3", "success", mdtrt_id="M-D3", visit="V-D3", optins="440333")

        with base.connect() as conn:
            stamped = dict(conn.execute(select(platform_calls.c.msgid, platform_calls.c.deployment)).all())
        assert stamped == {f"A{tag}-1": pa, f"B{tag}-1": pb, f"B{tag}-2": pb, f"A{tag}-3": pa, f"B{tag}-3": pb,
                           f"D{tag}-3": ""}, "every row names the deployment that logged it"

        with a.connect() as ca, b.connect() as cb, default.connect() as cd:
            # by msgid: another deployment's message is not ours
            assert call_for(ca, msgid=f"B{tag}-1", mdtrt_id=None) is None
            assert call_for(cb, msgid=f"B{tag}-1", mdtrt_id=None).msgid == f"B{tag}-1"
            # by mdtrt_id: each finds its own call of the shared platform visit, never the other's
            assert call_for(ca, msgid=None, mdtrt_id="M-SAME").msgid == f"A{tag}-1"
            assert call_for(cb, msgid=None, mdtrt_id="M-SAME").msgid == f"B{tag}-1"
            assert call_for(ca, msgid="NOT-LOGGED", mdtrt_id="M-ONLY-B") is None
            assert call_for(cb, msgid="NOT-LOGGED", mdtrt_id="M-ONLY-B").msgid == f"B{tag}-2"
            assert call_for(cd, msgid=None, mdtrt_id="M-SAME") is None, "the default deployment has no such call"
            # 3201's 清算机构 to ask: from this deployment's unbooked answers only
            day = (NOON - HOUR, NOON + HOUR)
            assert optins_of_calls(ca, *day) == {"440111"}
            assert optins_of_calls(cb, *day) == {"440222"}
            assert optins_of_calls(cd, *day) == {"440333"}
        with a.begin() as ca:  # a books its answer: nothing of a's is left to ask about, b's still is
            assert insert_entry(ca, entry(f"S{tag}", optins="440111", msgid=f"A{tag}-3"))
        with a.connect() as ca, b.connect() as cb:
            assert optins_of_calls(ca, NOON - HOUR, NOON + HOUR) == set()
            assert optins_of_calls(cb, NOON - HOUR, NOON + HOUR) == {"440222"}

        # the operator's "what happened to this visit" keeps to the deployment too
        assert [c["msgid"] for c in calls_for_visit(a, "V-SAME")] == [f"A{tag}-1"]
        assert [c["msgid"] for c in calls_for_visit(b, "V-SAME")] == [f"B{tag}-1"]
        assert json.loads(calls_for_visit(b, "V-B")[0]["input_masked"])["data"]["mdtrt_id"] == "M-ONLY-B"
    finally:
        base.dispose()
