"""The reconciliation worker as a real process on the real broker and database, talking to the simulator.

One worker (`yibao worker reconciliation`) and one simulator (`yibao sim`, a process too) serve the module.
HisResults produced to the topic become the hospital ledger (duplicates absorbed, garbage parked); a run asked
over HTTP reports progress and a final state and serves its reports; a run and an approval sent on the command
topic, signed, are acted on, and the repair goes back to HIS on the results topic; unsigned and forged
commands are parked. The API refuses anonymous callers (401), wrong roles (403) and self-approval (403, four
eyes), answers every malformed body with a 4xx, and writes the audit rows — in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from support.finance_auth import KEYS, bearer, token, write_command_keys, write_static_tokens
from support.kafka import consume, produce
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import recon_audit, recon_ledger
from yibao.core.results import HisResult, SettlementSplit
from yibao.core.topics import topic
from yibao.reconciliation.models import ReconCommand
from yibao.reconciliation.runs import run_id_for_command
from yibao.reconciliation.signing import signed_command
from yibao.stack import Stack
from yibao.stack._proc import free_port

pytestmark = pytest.mark.integration

PREFIX = "recontest."
RESULTS = topic("his_results", PREFIX)
COMMANDS = topic("recon_commands", PREFIX)
RUN_EVENTS = topic("recon_results", PREFIX)
DLQ = topic("dlq", PREFIX)
DAY = dt.date(2026, 3, 10)
FINAL = {"balanced", "differences_found", "repaired_and_balanced", "failed", "refused"}


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, admin = free_port(), free_port()
    log = (tmp_path_factory.mktemp("sim") / "sim.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "yibao.cli.main", "sim", "--port", str(port), "--admin-port",
                             str(admin), "--population", "20"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{admin}/admin/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def database(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = new_database(stack, tmp_path_factory.mktemp("recondb"))
    upgrade(url)
    engine = make_engine(url)
    engine.url_text = url  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, database: Engine, simulator: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("reconciliation")
    proc = WorkerProcess("reconciliation", {
        "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": database.url_text,  # type: ignore[attr-defined]
        "YIBAO_TOPIC_PREFIX": PREFIX, "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_PLATFORM_BASE_URL": simulator,
        "YIBAO_PLATFORM_RETRY_BACKOFF_S": "0", "YIBAO_RECONCILIATION_SCHEDULE_ENABLED": "false",
        "YIBAO_RECONCILIATION_REPORTS_DIR": str(tmp / "reports"), "YIBAO_RECONCILIATION_INSUTYPES": '["310"]',
        "YIBAO_RECONCILIATION_CLR_TYPES": '["11"]', "YIBAO_RECONCILIATION_SETL_OPTINS": '["440100"]',
        "YIBAO_LOG_JSON": "false",
        "YIBAO_RECONCILIATION_AUTH_STATIC_TOKENS_FILE": str(write_static_tokens(tmp)),
        "YIBAO_RECONCILIATION_COMMAND_KEYS_FILE": str(write_command_keys(tmp)),
    }, tmp / "worker.log").start()
    yield proc
    proc.stop()


def sign(user: str, command: ReconCommand) -> bytes:
    key_id, secret = KEYS[user]
    return signed_command(command.model_copy(update={"by": user}), key_id=key_id, secret=secret)


def settled(setl_id: str, day: dt.date, medfee: str, *, message_id: str | None = None) -> HisResult:
    amount = Decimal(medfee)
    return HisResult(
        message_id=message_id or f"it-{setl_id}", his_visit_id=f"V-{setl_id}", visit_kind="outpatient",
        kind="settled", service="settlement", msgid=f"M{setl_id}", psn_no=f"P{setl_id}", insutype="310",
        insuplc_admdvs="440100", mdtrt_id=f"D{setl_id}", setl_id=setl_id, clr_type="11", clr_optins="440100",
        setl_time=dt.datetime.combine(day, dt.time(10), tzinfo=clock.SHANGHAI),
        split=SettlementSplit(medfee_sumamt=amount, fund_pay_sumamt=amount / 2, psn_part_amt=amount / 2,
                              acct_pay=Decimal("0"), psn_cash_pay=amount / 2))


async def _until(predicate, timeout: float = 60, every: float = 0.3):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


def _booked(engine: Engine, prefix: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(recon_ledger.c.setl_id).where(recon_ledger.c.setl_id.like(prefix + "%")))
                      .scalars())


async def _final_run(worker: WorkerProcess, run_id: str, timeout: float = 90) -> dict:
    async def final():
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"{worker.url}/recon/runs/{run_id}", headers=bearer("sun.ops"))
        data = reply.json() if reply.status_code == 200 else {}
        return data if data.get("state") in FINAL else None

    return await _until(final, timeout)


async def _book(bootstrap: str, engine: Engine, results: list[HisResult], prefix: str, count: int) -> None:
    await produce(bootstrap, [(RESULTS, r.his_visit_id.encode(), r.to_json()) for r in results])

    async def all_there():
        return len(_booked(engine, prefix)) == count

    await _until(all_there)


async def test_his_results_are_booked_once_and_garbage_is_parked(worker, kafka_bootstrap, database) -> None:
    first, second = settled("A1", DAY, "10.00"), settled("A2", DAY, "20.00")
    await produce(kafka_bootstrap, [(RESULTS, b"V-A1", first.to_json()), (RESULTS, b"V-A2", second.to_json()),
                                    (RESULTS, b"V-A1", first.to_json()), (RESULTS, b"V-X", b"{broken"),
                                    (RESULTS, b"V-A2", settled("A2", DAY, "99.00", message_id="other").to_json())])
    records = await consume(kafka_bootstrap, [DLQ], timeout=60,
                            until=lambda rs: any(r.key == b"V-X" for r in rs))
    assert any(json.loads(r.value)["reason_code"] == "undecodable" for r in records if r.key == b"V-X")
    assert _booked(database, "A") == ["A1", "A2"]
    with database.connect() as conn:
        amount = conn.execute(select(recon_ledger.c.medfee_sumamt).where(recon_ledger.c.setl_id == "A2")).scalar()
        assert amount == Decimal("20.00")
        assert conn.execute(select(func.count()).select_from(recon_ledger)
                            .where(recon_ledger.c.setl_id.like("A%"))).scalar() == 2


async def test_a_run_over_http_reports_progress_a_final_state_and_its_reports(worker, kafka_bootstrap,
                                                                               database) -> None:
    day = DAY + dt.timedelta(days=1)
    await _book(kafka_bootstrap, database, [settled("B1", day, "30.00")], "B", 1)
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{worker.url}/recon/runs", json={"date": day.isoformat()}, headers=bearer("li.clerk"))
        assert reply.status_code == 202, reply.text
        assert reply.json()["requested_by"] == "li.clerk"
        run_id = reply.json()["run_id"]
        run = await _final_run(worker, run_id)
        assert run["state"] == "differences_found", run
        [diff] = run["differences"]
        assert (diff["setl_id"], diff["diff_class"], diff["status"]) == ("B1", "his_only", "pending_approval")
        xlsx = await client.get(f"{worker.url}/recon/runs/{run_id}/report/xlsx", headers=bearer("li.clerk"))
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
        html = await client.get(f"{worker.url}/recon/runs/{run_id}/report/html", headers=bearer("wang.approver"))
        assert "B1" in html.text
        assert (await client.get(f"{worker.url}/recon/runs/nope", headers=bearer("li.clerk"))).status_code == 404
        bad = await client.post(f"{worker.url}/recon/runs", json={"date": "tomorrow"}, headers=bearer("li.clerk"))
        assert bad.status_code == 400
        metrics = (await client.get(f"{worker.url}/metrics")).text
    assert 'yibao_recon_runs_total{result="differences_found"}' in metrics
    events = await consume(kafka_bootstrap, [RUN_EVENTS], timeout=60,
                           until=lambda rs: any(json.loads(r.value)["run_id"] == run_id
                                                and json.loads(r.value)["state"] == "differences_found" for r in rs))
    states = [json.loads(r.value)["state"] for r in events if r.key == run_id.encode()]
    assert states[0] == "running" and states[-1] == "differences_found"


async def test_commands_on_the_topic_run_and_approve_and_repairs_go_back_to_his(worker, kafka_bootstrap,
                                                                                database) -> None:
    day = DAY + dt.timedelta(days=2)
    await _book(kafka_bootstrap, database, [settled("C1", day, "40.00")], "C", 1)
    run_cmd = sign("li.clerk", ReconCommand(command_id="it-run-1", kind="run", date_from=day, by="-"))
    await produce(kafka_bootstrap, [(COMMANDS, b"run", run_cmd)])
    run_id = run_id_for_command("it-run-1")
    run = await _final_run(worker, run_id)
    assert run["state"] == "differences_found" and run["trigger"] == "command" and run["requested_by"] == "li.clerk"
    approve = sign("wang.approver", ReconCommand(command_id="it-approve-1", kind="approve", run_id=run_id, by="-",
                                                 reason="the platform confirms it never had C1"))
    await produce(kafka_bootstrap, [(COMMANDS, b"approve", approve),
                                    (COMMANDS, b"junk", b'{"kind": "explode"}')])

    async def repaired():
        async with httpx.AsyncClient() as client:
            data = (await client.get(f"{worker.url}/recon/runs/{run_id}", headers=bearer("wang.approver"))).json()
        return data if data["state"] == "repaired_and_balanced" else None

    run = await _until(repaired, 90)
    [diff] = run["differences"]
    assert (diff["approved_by"], diff["status"], diff["action"]) == ("wang.approver", "repaired", "void")
    records = await consume(kafka_bootstrap, [RESULTS], timeout=60,
                            until=lambda rs: any(r.key == b"V-C1" and b"reconciliation_repair" in r.value for r in rs))
    [repair] = [HisResult.model_validate_json(r.value) for r in records
                if r.key == b"V-C1" and b"reconciliation_repair" in r.value]
    assert (repair.kind, repair.orig_setl_id, repair.service) == ("refunded", "C1", "reconciliation")
    assert _booked(database, "C") == ["C1"]  # voided, not deleted; the repair result was not booked again
    dlq = await consume(kafka_bootstrap, [DLQ], timeout=60, until=lambda rs: any(r.key == b"junk" for r in rs))
    assert any(json.loads(r.value)["reason_code"] in ("recon_bad_command", "recon_command_refused")
               for r in dlq if r.key == b"junk")


async def test_an_overlapping_run_is_refused_over_http(worker) -> None:
    day = DAY + dt.timedelta(days=3)
    async with httpx.AsyncClient() as client:
        first = await client.post(f"{worker.url}/recon/runs", json={"date": day.isoformat()}, headers=bearer("li.clerk"))
        second = await client.post(f"{worker.url}/recon/runs", json={"date": day.isoformat()},
                                   headers=bearer("zhao.both"))
        run = await _final_run(worker, first.json()["run_id"])
    assert run["state"] == "balanced" and "no data" in run["message"]
    # the second either came while the first still ran (refused) or after it ended (a run of its own)
    assert second.status_code in (202, 409)
    if second.status_code == 409:
        assert second.json()["state"] == "refused" and first.json()["run_id"] in second.json()["message"]


# --- who may act ---------------------------------------------------------------------------------------------


def _audit(engine: Engine, **where) -> list:
    query = select(recon_audit).order_by(recon_audit.c.id)
    for column, value in where.items():
        query = query.where(recon_audit.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).all()


async def test_anonymous_and_bad_tokens_are_401(worker, database) -> None:
    async with httpx.AsyncClient() as client:
        for method, path in (("GET", "/recon/runs"), ("POST", "/recon/runs"), ("GET", "/recon/runs/R1/report/xlsx"),
                             ("POST", "/recon/runs/R1/approve"), ("GET", "/recon/audit")):
            reply = await client.request(method, f"{worker.url}{path}", json={"date": "2026-03-01"})
            assert reply.status_code == 401, (method, path, reply.text)
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        reply = await client.get(f"{worker.url}/recon/runs", headers={"Authorization": "Bearer forged-token-123456"})
        assert reply.status_code == 401 and reply.json()["error"] == "unauthenticated"
        assert reply.headers["X-Content-Type-Options"] == "nosniff" and "default-src 'none'" in \
            reply.headers["Content-Security-Policy"]
    failed = _audit(database, action="login_failed")[-1]
    assert failed.outcome == "denied" and failed.status == 401 and failed.source.startswith("127.0.0.1")
    assert "forged-token" not in Path(worker.log_path).read_text(errors="replace")


async def test_wrong_roles_are_403_and_audited(worker, database) -> None:
    async with httpx.AsyncClient() as client:
        trigger = await client.post(f"{worker.url}/recon/runs", json={"date": "2026-03-01"}, headers=bearer("sun.ops"))
        decide = await client.post(f"{worker.url}/recon/runs/R1/approve", json={"reason": "x"},
                                   headers=bearer("li.clerk"))
        audit = await client.get(f"{worker.url}/recon/audit", headers=bearer("li.clerk"))
    assert (trigger.status_code, decide.status_code, audit.status_code) == (403, 403, 403)
    assert "clerk role" in trigger.json()["message"] and "approver role" in decide.json()["message"]
    denied = _audit(database, actor="sun.ops", action="trigger")
    assert denied and denied[-1].outcome == "denied" and denied[-1].status == 403


async def test_self_approval_is_403_and_another_approver_succeeds(worker, kafka_bootstrap, database) -> None:
    day = DAY + dt.timedelta(days=4)
    await _book(kafka_bootstrap, database, [settled("E1", day, "55.00")], "E", 1)
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{worker.url}/recon/runs", json={"date": day.isoformat()},
                                  headers=bearer("zhao.both"))
        run_id = reply.json()["run_id"]
        run = await _final_run(worker, run_id)
        assert run["state"] == "differences_found"
        mine = await client.post(f"{worker.url}/recon/runs/{run_id}/approve", json={"reason": "mine",
                                                                                    "by": "wang.approver"},
                                 headers=bearer("zhao.both"))
        assert mine.status_code == 400 and "token" in mine.json()["message"]  # no identity from the body
        mine = await client.post(f"{worker.url}/recon/runs/{run_id}/approve", json={"reason": "mine"},
                                 headers=bearer("zhao.both"))
        assert mine.status_code == 403 and mine.json()["error"] == "four_eyes", mine.text
        other = await client.post(f"{worker.url}/recon/runs/{run_id}/approve", json={"reason": "checked 5203"},
                                  headers=bearer("wang.approver"))
        assert other.status_code == 200 and other.json()["state"] == "repaired_and_balanced", other.text
        report = await client.get(f"{worker.url}/recon/runs/{run_id}/report/xlsx", headers=bearer("zhao.both"))
        assert report.status_code == 200
    rows = [(r.actor, r.role, r.action, r.outcome) for r in _audit(database, run_id=run_id)]
    assert rows == [("zhao.both", "clerk", "trigger", "ok"), ("zhao.both", "approver", "approve", "refused"),
                    ("zhao.both", "approver", "approve", "refused"), ("wang.approver", "approver", "approve", "ok"),
                    ("zhao.both", "clerk", "report", "ok")]
    approved = _audit(database, run_id=run_id, actor="wang.approver")[0]
    assert approved.at.tzinfo is not None and approved.at.utcoffset() == dt.timedelta(hours=8)
    assert approved.source.startswith("127.0.0.1") and approved.difference_ids


@pytest.mark.parametrize("path, body", [
    ("/recon/runs", b"[" * 20000 + b"]" * 20000),
    ("/recon/runs", b'{"date": 1e999999999}'),
    ("/recon/runs", b"1e999999999"),
    ("/recon/runs", b'{"date": ["2026-01-01"]}'),
    ("/recon/runs", b'{"date": "2026-01-01", "to": {"$gt": ""}}'),
    ("/recon/runs", b"\xff\xfe\x00"),
    ("/recon/runs", b'{"date": "2026-01-01"' + b" " * 70000 + b"}"),
    ("/recon/runs", b"x" * 3_000_000),
    ("/recon/runs/R1/approve", b'{"reason": {"a": 1}}'),
    ("/recon/runs/R1/approve", b'{"reason": "ok", "ids": [1e999999999]}'),
    ("/recon/runs/R1/approve", b'{"reason": "ok", "ids": [' + b"9" * 5000 + b"]}"),
])
async def test_no_malformed_body_gets_a_500(worker, path, body) -> None:
    user = "li.clerk" if path == "/recon/runs" else "wang.approver"
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{worker.url}{path}", content=body,
                                  headers={**bearer(user), "Content-Type": "application/json"})
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:200])
    assert reply.json()["message"]


async def test_unsigned_and_forged_commands_are_parked_and_never_act(worker, kafka_bootstrap, database) -> None:
    day = DAY + dt.timedelta(days=5)
    unsigned = ReconCommand(command_id="it-unsigned", kind="run", date_from=day, by="li.clerk").to_json()
    forged = json.loads(sign("li.clerk", ReconCommand(command_id="it-forged", kind="run", date_from=day, by="-")))
    forged["date_from"] = (day + dt.timedelta(days=1)).isoformat()
    stolen_identity = json.loads(sign("li.clerk", ReconCommand(command_id="it-approve-self", kind="approve",
                                                               run_id="R1", by="-")))
    await produce(kafka_bootstrap, [(COMMANDS, b"unsigned", unsigned),
                                    (COMMANDS, b"forged", json.dumps(forged).encode()),
                                    (COMMANDS, b"role", json.dumps(stolen_identity).encode())])
    dlq = await consume(kafka_bootstrap, [DLQ], timeout=60,
                        until=lambda rs: {b"unsigned", b"forged", b"role"} <= {r.key for r in rs})
    reasons = {r.key: json.loads(r.value)["reason"] for r in dlq if r.key in (b"unsigned", b"forged", b"role")}
    assert "unsigned" in reasons[b"unsigned"] and "does not verify" in reasons[b"forged"]
    assert "does not hold the role 'approver'" in reasons[b"role"]
    async with httpx.AsyncClient() as client:
        for command_id in ("it-unsigned", "it-forged"):
            reply = await client.get(f"{worker.url}/recon/runs/{run_id_for_command(command_id)}",
                                     headers=bearer("li.clerk"))
            assert reply.status_code == 404
    assert len([r for r in _audit(database, method="command", outcome="refused")]) >= 3


def test_the_worker_log_has_no_personal_data_and_no_token(worker) -> None:
    text = Path(worker.log_path).read_text(errors="replace")
    assert "psn_name" not in text
    for user in ("li.clerk", "wang.approver", "zhao.both", "sun.ops"):
        assert token(user) not in text and KEYS[user][1] not in text


async def test_yibao_recon_send_publishes_signed_commands_the_worker_acts_on(worker, kafka_bootstrap, database,
                                                                          tmp_path) -> None:
    import os

    from support.finance_auth import cli_env

    day = DAY + dt.timedelta(days=6)
    await _book(kafka_bootstrap, database, [settled("G1", day, "12.00")], "G", 1)

    def recon(user: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap, "YIBAO_TOPIC_PREFIX": PREFIX,
               "DATABASE_URL": database.url_text, **cli_env(user, tmp_path)}  # type: ignore[attr-defined]
        return subprocess.run([sys.executable, "-m", "yibao.cli.main", "recon", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    sent = recon("li.clerk", "run", "--date", day.isoformat(), "--send", "--json")
    assert sent.returncode == 0, sent.stderr
    run_id = json.loads(sent.stdout)["run_id"]
    run = await _final_run(worker, run_id)
    assert run["state"] == "differences_found" and run["requested_by"] == "li.clerk"
    decided = recon("wang.approver", "approve", run_id, "--reason", "confirmed by 5203", "--send")
    assert decided.returncode == 0, decided.stderr

    async def repaired():
        async with httpx.AsyncClient() as client:
            data = (await client.get(f"{worker.url}/recon/runs/{run_id}", headers=bearer("sun.ops"))).json()
        return data if data["state"] == "repaired_and_balanced" else None

    run = await _until(repaired, 90)
    assert run["differences"][0]["approved_by"] == "wang.approver"
    rows = [(r.actor, r.method, r.action, r.outcome) for r in _audit(database, run_id=run_id)]
    assert rows == [("li.clerk", "command", "trigger", "ok"), ("wang.approver", "command", "approve", "ok")]
