"""The prescription centre's feedback through a real ``yibao worker upload-scheduler`` on the real broker and database,
with the platform simulator calling the hospital back: HIS uploads two prescriptions (7101); the simulator's pharmacy
approves one and rejects the other (7102, by its rule) and the approved one is bought (7103); the review and the
purchase reach the 7101 records (GET /uploads/records) and HIS (``his_results``) with exact money. On the same rig:
a forged post, a repeated msgid, an unknown hi_rxno and an invalid field, each refused or answered as the platform
expects, changing nothing.

One rig for the module (a simulator, a database, a worker); polls with deadlines, no sleeps."""

from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.kafka import consume, produce
from support.simulator import SimulatorThread
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.core import clock
from yibao.core.kafka import catalog_topics, create_topics
from yibao.core.topics import topic
from yibao.envelope.national import jsontext
from yibao.fakedata.uploads import generate_uploads
from yibao.simulator import Simulator, SimulatorSettings
from yibao.simulator.uploads import valid_codes
from yibao.stack import Stack
from yibao.stack._proc import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

PREFIX = "rxfeedback."
TOKEN = "rx-feedback-e2e-token"
HEADER = "X-Yibao-Inbound-Token"
CODE = "H44010600001"


@dataclass
class Rig:
    sim: Simulator
    worker: WorkerProcess
    bootstrap: str

    @property
    def inbound(self) -> str:
        return f"{self.worker.url}/national/inbound"

    def post(self, envelope: dict[str, Any], *, token: str | None = TOKEN) -> httpx.Response:
        headers = {"content-type": "application/json"} | ({HEADER: token} if token is not None else {})
        return httpx.post(self.inbound, content=jsontext.dumps_bytes(envelope), headers=headers, timeout=10)

    def records(self) -> dict[str, dict[str, Any]]:
        page = httpx.get(f"{self.worker.url}/uploads/records", params={"kind": "7101"}, timeout=10).json()
        return {r["key"]: r for r in page["records"]}

    def counted(self, infno: str, outcome: str) -> float:
        text = httpx.get(f"{self.worker.url}/metrics", timeout=10).text
        line = f'yibao_upload_inbound_total{{infno="{infno}",outcome="{outcome}"}} '
        return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)


@pytest.fixture(scope="module")
def rig(stack: Stack, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("rx-feedback")
    port = free_port()
    settings = SimulatorSettings(port=0, admin_port=0, population_size=10, seed=17,
                                 rx_feedback_url=f"http://127.0.0.1:{port}/national/inbound",
                                 rx_feedback_token=TOKEN, rx_reject_pattern="^RXNO", rx_review_delay_s=0.5,
                                 rx_purchase_delay_s=0.2, rx_feedback_max_attempts=8)
    db_url = new_database(stack, tmp)
    asyncio.run(create_topics(kafka_bootstrap, catalog_topics(PREFIX)))
    with SimulatorThread(settings) as sim:
        s = "YIBAO_UPLOAD_SCHEDULER_"
        env = {"KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": db_url, "YIBAO_TOPIC_PREFIX": PREFIX,
               "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_PLATFORM_BASE_URL": sim.url,
               f"{s}CATALOG_SYNC_ENABLED": "false", f"{s}CATALOG_PUBLISH": "false", f"{s}CHAIN_BACKOFF_S": "0.2",
               f"{s}INBOUND_TOKEN": TOKEN, f"{s}INBOUND_ALLOWED_SOURCES": json.dumps(["127.0.0.1", "::1"])}
        worker = WorkerProcess("upload-scheduler", env, tmp / "worker.log", port=port).start()
        try:
            yield Rig(sim, worker, kafka_bootstrap)
        finally:
            worker.stop()


@dataclass
class Delivered:
    approved: str  #: hosp_rxno of the prescription the pharmacy approved (and was bought)
    rejected: str
    records: dict[str, dict[str, Any]]
    his: list[dict[str, Any]]
    sent: list[dict[str, Any]]  #: what the simulator posted and how the hospital answered


def _until(what: str, check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def delivered(rig: Rig) -> Delivered:
    """HIS uploads two prescriptions; the platform's 7102s (and the approved one's 7103) reach the hospital."""
    week = generate_uploads(5, clock.today() - _dt.timedelta(days=1), days=1, inpatients=0, outpatients=1,
                            pharmacy=0, codes=valid_codes(rig.sim.ledger))
    item = next(i for i in week.items if i.kind == "7101")
    tag = uuid.uuid4().hex[:8].upper()
    rxnos = {"ok": f"RXOK{tag}", "no": f"RXNO{tag}"}
    messages = []
    for which, rxno in rxnos.items():
        msg = copy.deepcopy(item.message())
        msg["record"]["data"]["hosp_rxno"] = rxno
        msg["source_id"], msg["his_visit_id"] = f"rx-{rxno}", f"MZ{which.upper()}{tag}"
        messages.append((topic("upload_sources", PREFIX), f"7101:{rxno}".encode(), jsontext.dumps_bytes(msg)))
    asyncio.run(produce(rig.bootstrap, messages))

    def fed_back() -> dict[str, dict[str, Any]] | None:
        records = rig.records()
        ok, no = records.get(rxnos["ok"]), records.get(rxnos["no"])
        if ok and no and ok["feedback"]["review"] and no["feedback"]["review"] and ok["feedback"]["purchases"]:
            return records
        return None

    records = _until("both reviews and the purchase kept with their 7101 records", fed_back)

    def told(rs: list[Any]) -> bool:
        mine = [json.loads(r.value) for r in rs if json.loads(r.value).get("his_request_id") in rxnos.values()]
        return sorted(m["kind"] for m in mine) == ["rx_purchased", "rx_reviewed", "rx_reviewed"]

    his = asyncio.run(consume(rig.bootstrap, [topic("his_results", PREFIX)], timeout=60, until=told))
    mine = [json.loads(r.value) for r in his if json.loads(r.value).get("his_request_id") in rxnos.values()]
    sent = jsontext.loads(httpx.get(rig.sim.admin_url + "/admin/uploads", timeout=10).content)["rx_feedback"]
    return Delivered(rxnos["ok"], rxnos["no"], records, mine, sent)


def test_the_platforms_review_and_purchase_reach_the_prescription_record_and_his(delivered: Delivered) -> None:
    ok, no = delivered.records[delivered.approved], delivered.records[delivered.rejected]
    assert ok["status"] == no["status"] == "accepted"
    assert ok["feedback"]["review"]["rx_chk_stas_codg"] == "1" and no["feedback"]["review"]["rx_chk_stas_codg"] == "2"
    assert ok["feedback"]["review"]["hi_rxno"] == ok["receipt"]["hi_rxno"]
    assert no["feedback"]["purchases"] == []
    [bought] = ok["feedback"]["purchases"]
    [posted] = [s for s in delivered.sent if s["infno"] == "7103" and s["infcode"] == 0]
    amounts = ("fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay")
    assert {k: bought[k] for k in amounts} == {k: str(posted["data"][k]) for k in amounts}  # exact, as sent
    by_kind = {(m["kind"], m["his_request_id"]): m for m in delivered.his}
    purchase = by_kind[("rx_purchased", delivered.approved)]
    assert {k: purchase["detail"][k] for k in amounts} == {k: bought[k] for k in amounts}
    assert by_kind[("rx_reviewed", delivered.rejected)]["reason"].startswith("审核不通过")
    assert all(m["service"] == "upload-scheduler" and m["visit_kind"] == "outpatient" for m in delivered.his)
    # every 7102/7103 the simulator posted was answered infcode 0 (after a retry at most)
    assert {s["infcode"] for s in delivered.sent if "infcode" in s} == {0}


def test_the_pharmacists_never_reach_the_workers_log(rig: Rig, delivered: Delivered) -> None:
    from yibao.simulator.rx_feedback import review_input

    people = review_input(rig.sim.settings, "HX1", True, clock.now())["data"]
    log = rig.worker.log_path.read_text(encoding="utf-8", errors="replace")
    assert "platform feedback recorded" in log
    for name in ("phar_name", "phar_certno", "rchk_phar_name", "rchk_phar_certno"):
        assert people[name] not in log, name


def _review_envelope(rig: Rig, hi_rxno: str, **data: Any) -> dict[str, Any]:
    from yibao.simulator.rx_feedback import review_input

    payload = review_input(rig.sim.settings, hi_rxno, True, clock.now())
    payload["data"].update(data)
    return rig.sim.rx_feedback.envelope("7102", CODE, {k: v for k, v in payload.items()})


def test_a_forged_post_is_refused_and_changes_nothing(rig: Rig, delivered: Delivered) -> None:
    hi_rxno = delivered.records[delivered.rejected]["receipt"]["hi_rxno"]
    before = rig.counted("-", "unauthenticated")
    for token in (None, "a-guess"):
        answer = rig.post(_review_envelope(rig, hi_rxno, rx_chk_stas_codg="1"), token=token)
        assert answer.status_code == 401 and answer.json()["infcode"] == -1
    assert rig.counted("-", "unauthenticated") == before + 2
    assert rig.records()[delivered.rejected]["feedback"]["review"]["rx_chk_stas_codg"] == "2"


def test_a_repeated_msgid_is_answered_the_same_and_kept_once(rig: Rig, delivered: Delivered) -> None:
    [first] = [s for s in delivered.sent if s["infno"] == "7102" and s["hi_rxno"] ==
               delivered.records[delivered.approved]["receipt"]["hi_rxno"] and s["infcode"] == 0]
    again = {**rig.sim.rx_feedback.envelope("7102", CODE, {"data": first["data"]}), "msgid": first["msgid"]}
    before = rig.counted("7102", "duplicate")
    answers = [rig.post(again).json() for _ in range(2)]
    assert answers[0] == answers[1] and answers[0]["infcode"] == 0
    assert rig.counted("7102", "duplicate") == before + 2
    review = rig.records()[delivered.approved]["feedback"]["review"]
    assert review["msgid"] == first["msgid"]


def test_an_unknown_hi_rxno_is_refused_with_the_reason(rig: Rig, delivered: Delivered) -> None:
    before = rig.counted("7102", "unknown_rx")
    answer = rig.post(_review_envelope(rig, "HX20990101999999")).json()
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("[7102] input.data.hi_rxno: 医保处方编号不存在")
    assert rig.counted("7102", "unknown_rx") == before + 1


def test_an_invalid_field_is_refused_naming_it(rig: Rig, delivered: Delivered) -> None:
    hi_rxno = delivered.records[delivered.approved]["receipt"]["hi_rxno"]
    envelope = _review_envelope(rig, hi_rxno)
    del envelope["input"]["data"]["rx_chk_time"]
    answer = rig.post(envelope).json()
    assert answer["infcode"] == -1 and answer["err_msg"] == "[7102] input.data.rx_chk_time: required"
    bought = rig.post(rig.sim.rx_feedback.envelope("7103", CODE, {"data": {"hi_rxno": hi_rxno}})).json()
    assert bought["infcode"] == -1 and bought["err_msg"].startswith("[7103] input.data.fund_pay_sumamt: required")
