"""The counter through the whole bridge (real processes, real Kafka and PostgreSQL, the simulator): queries over
HTTP and Kafka, each 备案 with its answer lost and resolved without duplication, 门诊慢特病 vs an ordinary diagnosis,
a 核酸 batch from an Excel file (a bad row, a re-import), and the settlement slip.

One bridge for the module (ingest, registration, settlement, counter and the simulator), HIS rows of the example
Oracle HIS encoded by the fake connector (:class:`yibao.fakedata.cdc.CdcEncoder`) as in the other chain tests.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import io
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from e2e.chains.chain_day import SEED, ChainRig, bridge_on_stack
from support.kafka import consume, produce
from unit.simulator.test_counter_side import analysis, order
from yibao.core.db.schema import chain_calls, counter_audit
from yibao.core.results import HisResult
from yibao.core.topics import topic
from yibao.counter.batch import COLUMNS
from yibao.fakedata import his_tables as T
from yibao.fakedata.cdc import CdcEncoder, CdcShape, RawCdcMessage
from yibao.fakedata.his import HisDay
from yibao.fakedata.his_catalog import OUTP_DEPTS, OUTP_ITEMS, doctors_of
from yibao.fakedata.people import Person, population
from yibao.stack import Stack
from yibao.stack.bridge import CHAIN_SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

SHAPE = CdcShape(decimal_mode="precise", schemas=True)
DAY = _dt.date(2026, 11, 20)
PEOPLE = population(SEED, 500)
TOKENS = {"lab.wu": (["lab"], "static-token-lab-wu-0123456789"), "ops.he": (["ops"], "static-token-ops-he-0123456789")}
_INSUR = {"310": "ZG", "390": "JM", "340": "LX"}
#: every new state-changing transaction loses its answer (the platform did the work) on its first sending
LOST = [f"{infno}:commit_then_timeout:1" for infno in ("2501", "2502", "2503", "2504", "2505", "2506")]


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    tmp = tmp_path_factory.mktemp("counter")
    tokens = tmp / "counter-tokens.json"
    tokens.write_text(json.dumps({"users": [{"user": u, "roles": r, "token": t} for u, (r, t) in TOKENS.items()]}))
    env = {"YIBAO_COUNTER_AUTH_STATIC_TOKENS_FILE": str(tokens), "YIBAO_COUNTER_CHAIN_BACKOFF_S": "0.1",
           "YIBAO_COUNTER_CHAIN_BACKOFF_MAX_S": "1", "YIBAO_COUNTER_CHAIN_MAX_ATTEMPTS": "40",
           "YIBAO_COUNTER_CHAIN_LEASE_S": "10"}
    yield from bridge_on_stack(stack, tmp, extra_env=env, services=(*CHAIN_SERVICES, "counter"))


def url(rig: ChainRig) -> str:
    return rig.bridge.workers["counter"].url


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user][1]}"}


class Desk:
    """One patient's rows at the 医保 desk and the clinic (the example Oracle HIS)."""

    def __init__(self, index: int) -> None:
        self.person: Person = PEOPLE[index]
        self.his = HisDay(SEED, DAY, [self.person])
        self.encoder = CdcEncoder(SHAPE, start_position=7_000_000 + index * 10_000)
        self.patient_id = self.his._patient_id(self.person)
        self.card = {"CARD_TYPE": "1", "CARD_NO": self.person.certno}
        self.tag = uuid.uuid4().hex[:6]

    def messages(self) -> list[RawCdcMessage]:
        changes = self.his.ordered()
        self.his.changes.clear()
        return [RawCdcMessage(topic=t, key=k, value=v) for c in changes for t, k, v in self.encoder.encode(c)]

    def at(self, hour: int, minute: int = 0) -> _dt.datetime:
        return _dt.datetime.combine(DAY, _dt.time(hour, minute))

    def filing(self, kind: str, **fields: Any) -> str:
        filing_id = f"BA{kind}{self.tag}"
        t = self.at(8)
        self.his.emit(T.YB_FILING, "c", t, after={
            "FILING_ID": filing_id, "PATIENT_ID": self.patient_id, "FILING_TYPE": kind, "VISIT_TYPE": "O",
            **self.card, "ID_TYPE": "1", "ID_NO": self.person.certno, "PAT_NAME": self.person.psn_name,
            "INSUR_TYPE": _INSUR[self.person.insutype], "TEL": None, "ADDR": None, "BEGIN_DATE": None,
            "END_DATE": None, "MEMO": None, "REQ_TIME": t, "OPERATOR_ID": "Y001", "OPERATOR_NAME": "医保办甲",
            **fields})
        return filing_id

    def revoke(self, filing_id: str) -> str:
        cancel_id = f"CX{filing_id}"
        t = self.at(9)
        self.his.emit(T.YB_FILING_CANCEL, "c", t, after={
            "CANCEL_ID": cancel_id, "FILING_ID": filing_id, "PATIENT_ID": self.patient_id, "VISIT_TYPE": "O",
            "REASON": "信息有误，撤销重报", "REQ_TIME": t, "OPERATOR_ID": "Y001", "OPERATOR_NAME": "医保办甲"})
        return cancel_id

    def visit(self, icd: str, name: str, *, hour: int, med_type: str = "MT") -> tuple[int, str]:
        """挂号 → 诊断 → two charge lines → the cashier's settlement request; (reg id, request id)."""
        dept = next(d for d in OUTP_DEPTS if d.code == "0301")
        doctor = doctors_of(dept)[0]
        reg_id = self.his._int_id("reg", 5)
        t = self.at(hour)
        self.his.emit(T.OUTP_REGISTER, "c", t, after={
            "REG_ID": reg_id, "PATIENT_ID": self.patient_id, "REG_NO": f"MZ{DAY:%Y%m%d}{reg_id % 100000:05d}",
            **self.card, "CARD_SN": None, "ID_TYPE": "1", "ID_NO": self.person.certno,
            "PAT_NAME": self.person.psn_name, "INSUR_TYPE": _INSUR[self.person.insutype], "MED_TYPE": med_type,
            "REG_TIME": t, "DEPT_CODE": dept.code, "DEPT_NAME": dept.name, "DEPT_CATY": dept.caty,
            "DOCTOR_CODE": doctor.code, "DOCTOR_NAME": doctor.name, "REG_FEE": Decimal("0.00"), "REG_TYPE": "01",
            "REG_CHANNEL": "1", "PAY_MODE": "1", "STATUS": "1", "OPERATOR_ID": "C001", "OPERATOR_NAME": "收费员甲"})
        t += _dt.timedelta(minutes=5)
        self.his.emit(T.OUTP_DIAGNOSIS, "c", t, after={
            "DIAG_ID": self.his._int_id("diag", 7), "REG_ID": reg_id, "PATIENT_ID": self.patient_id, "DIAG_SEQ": 1,
            "DIAG_CLASS": "W", "ICD_CODE": icd, "DIAG_NAME": name, "MAIN_FLAG": "Y", "MED_TYPE": med_type,
            "CHIEF_COMPLAINT": "复诊", "DEPT_CODE": dept.code, "DOCTOR_CODE": doctor.code,
            "DOCTOR_NAME": doctor.name, "DIAG_TIME": t, "VALID_FLAG": "1"})
        total = Decimal("0.00")
        for n, item in enumerate(OUTP_ITEMS[3:5], start=1):
            fee_time = t + _dt.timedelta(minutes=5, seconds=n)
            self.his.emit(T.OUTP_FEE_DETAIL, "c", fee_time, after={
                "DETAIL_ID": self.his._int_id("fee", 7), "REG_ID": reg_id, "PATIENT_ID": self.patient_id,
                "RECIPE_NO": f"CF{reg_id}", "BATCH_NO": f"{reg_id}01", "ORDER_NO": None, "FEE_TIME": fee_time,
                "ETIP_FLAG": "N", "ITEM_CODE": item.code, "ITEM_NAME": item.name, "YB_CODE": item.yb_code,
                "AMOUNT": item.price, "QTY": Decimal(1), "PRICE": item.price, "DOSAGE": item.dosage,
                "FREQUENCY": item.frequency, "DAYS": None, "ROUTE": item.route, "BILL_DEPT_CODE": dept.code,
                "BILL_DEPT_NAME": dept.name, "BILL_DOC_CODE": doctor.code, "BILL_DOC_NAME": doctor.name,
                "EXEC_DEPT_CODE": "9001", "EXEC_DEPT_NAME": "门诊药房", "ORDER_DOC_CODE": doctor.code,
                "ORDER_DOC_NAME": doctor.name, "APPROVE_FLAG": None, "TRACE_CODES": None, "INIT_DETAIL_ID": None,
                "MEMO": None, "OPERATOR_ID": "C001", "OPERATOR_NAME": "收费员甲"})
            total += item.price
        req_id = self.his._str_id("settle", "S")
        t += _dt.timedelta(minutes=15)
        self.his.emit(T.YB_SETTLE_REQUEST, "c", t, after={
            "REQ_ID": req_id, "VISIT_ID": reg_id, "VISIT_TYPE": "O", "PATIENT_ID": self.patient_id, "REQ_TIME": t,
            "ACCT_USED": "N", "SETL_WAY": "01", "MID_SETL": "0", "INVOICE_NO": None, "TOTAL_AMT": total,
            "BATCH_NO": None, **self.card, "CARD_SN": None, "INSUR_TYPE": _INSUR[self.person.insutype],
            "HD_ADM_ID": None, "OPERATOR_ID": "C001", "OPERATOR_NAME": "收费员甲"})
        return reg_id, req_id


async def results_until(rig: ChainRig, done: Any, *, timeout: float = 90) -> list[HisResult]:
    return await rig.results_until(done, timeout=timeout)


def filings_of(rig: ChainRig, person: Person) -> list[dict[str, Any]]:
    persons = rig.bridge.admin("persons?limit=1000")
    return next(p for p in persons if p["psn_no"] == person.psn_no)["extra"].get("filings", [])


# --- queries ------------------------------------------------------------------------------------------------------


async def test_queries_are_answered_over_http_with_a_budget_and_bad_requests_name_the_field(rig: ChainRig) -> None:
    person = PEOPLE[300]
    async with httpx.AsyncClient(base_url=url(rig), timeout=30) as http:
        ok = await http.post("/counter/query", json={"infno": "1101", "input": {"data": {
            "mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno}}, "channel": "kiosk"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["output"]["baseinfo"]["psn_no"] == person.psn_no
        bad = await http.post("/counter/query", json={"infno": "5301", "input": {"data": {}},
                                                      "insuplc_admdvs": "440100"})
        assert (bad.status_code, bad.json()["field"]) == (400, "input.data.psn_no")
        place = await http.post("/counter/query", json={"infno": "5301", "input": {"data": {"psn_no": "X1"}}})
        assert (place.status_code, place.json()["field"]) == (400, "insuplc_admdvs")
        unknown = await http.post("/counter/query", json={"infno": "2207", "input": {}})
        assert (unknown.status_code, unknown.json()["field"]) == (400, "infno")
        first = await http.post("/counter/query", json={"infno": "1901", "input": {"data": {"type": "med_type"}}})
        again = await http.post("/counter/query", json={"infno": "1901", "input": {"data": {"type": "med_type"}}})
        assert first.status_code == again.status_code == 200
        assert (first.json()["cached"], again.json()["cached"]) == (False, True)
        assert again.json()["output"] == first.json()["output"]
        audit = await http.post("/counter/query", json={"infno": "3101", "input": analysis(order("R1"), order("R2"))})
        assert audit.status_code == 200, audit.text
        assert [v["rule_id"] for v in audit.json()["output"]["result"]] == ["SIM-R001"]
        rig.bridge.set_faults(["5102:latency:1:3000"])
        try:
            slow = await http.post("/counter/query", json={"infno": "5102", "timeout_s": 0.5,
                                                           "input": {"data": {"prac_psn_type": "1"}}})
        finally:
            rig.bridge.set_faults([])
        assert slow.status_code == 504 and slow.json()["status"] == "timeout"


async def test_queries_on_the_request_topic_are_answered_under_their_correlation_id(rig: ChainRig) -> None:
    person = PEOPLE[301]
    prefix, boot = rig.bridge.prefix, rig.bridge.info.kafka_bootstrap
    asks = {f"q-{uuid.uuid4().hex[:8]}": {"infno": "1101", "input": {"data": {"mdtrt_cert_type": "02",
                                                                              "mdtrt_cert_no": person.certno}}},
            f"q-{uuid.uuid4().hex[:8]}": {"infno": "5202", "input": {"data": {"mdtrt_id": "M1"}}}}
    await produce(boot, [(topic("counter_requests", prefix), rid.encode(),
                          json.dumps({"correlation_id": rid, "channel": "wechat", **body}).encode())
                         for rid, body in asks.items()])

    def complete(records: list) -> bool:
        return set(asks) <= {json.loads(r.value)["correlation_id"] for r in records}

    records = await consume(boot, [topic("counter_results", prefix)], timeout=60, until=complete)
    answers = {json.loads(r.value)["correlation_id"]: json.loads(r.value) for r in records
               if json.loads(r.value)["correlation_id"] in asks}
    ok, bad = (answers[rid] for rid in asks)
    assert ok["status"] == "ok" and ok["output"]["baseinfo"]["psn_no"] == person.psn_no
    assert bad["status"] == "invalid" and bad["field"] == "input.data.psn_no"


# --- 备案 ----------------------------------------------------------------------------------------------------------


async def test_each_filing_and_its_revocation_survive_a_lost_answer_without_duplication(rig: ChainRig) -> None:
    rig.bridge.set_faults(LOST)
    try:
        chronic, transfer, designated = Desk(310), Desk(311), Desk(312)
        ids = {
            "chronic": chronic.filing("MT", DISEASE_CODE="M01600", DISEASE_NAME="糖尿病", IDENT_DATE=chronic.at(7),
                                      IDENT_DOC_CODE="D030101", IDENT_DOC_NAME="医生甲", BEGIN_DATE=chronic.at(0)),
            "transfer": transfer.filing("ZY", DIAG_CODE="I63.900", DIAG_NAME="脑梗死", TARGET_CODE="H44010600099",
                                        TARGET_NAME="上级医院", TARGET_AREA="440100", AGREE_FLAG="Y",
                                        TRANSFER_TYPE="1", TRANSFER_DATE=transfer.at(0), TRANSFER_REASON="病情需要",
                                        TRANSFER_OPINION="同意转院"),
            "designated": designated.filing("DD", APPLY_TYPE="01", FIX_SEQ="1", TARGET_CODE="H44010600001",
                                            TARGET_NAME="yibao-bridge测试医院", BEGIN_DATE=designated.at(0)),
        }
        desks = {"chronic": chronic, "transfer": transfer, "designated": designated}
        await rig.produce([m for d in desks.values() for m in d.messages()])
        filed = await results_until(rig, lambda rs: all(
            any(r.his_request_id == i and r.kind in ("filed", "rejected", "parked") for r in rs)
            for i in ids.values()))
        for kind, filing_id in ids.items():
            answers = [r for r in filed if r.his_request_id == filing_id]
            assert [r.kind for r in answers] == ["filed"], (kind, [(r.kind, r.reason) for r in answers])
            on_platform = filings_of(rig, desks[kind].person)
            assert len(on_platform) == 1 and on_platform[0]["trt_dcla_detl_sn"] == answers[0].detail[
                "trt_dcla_detl_sn"]
        cancels = {kind: desks[kind].revoke(i) for kind, i in ids.items()}
        await rig.produce([m for d in desks.values() for m in d.messages()])
        done = await results_until(rig, lambda rs: all(
            any(r.his_request_id == c and r.kind in ("cancelled", "rejected", "parked") for r in rs)
            for c in cancels.values()))
    finally:
        rig.bridge.set_faults([])
    for kind, cancel_id in cancels.items():
        assert [r.kind for r in done if r.his_request_id == cancel_id] == ["cancelled"], kind
        assert [f["status"] for f in filings_of(rig, desks[kind].person)] == ["revoked"]
    with rig.db.connect() as conn:
        lost = conn.execute(select(chain_calls.c.infno, chain_calls.c.resolution).where(
            chain_calls.c.service == rig.bridge.prefix + "counter", chain_calls.c.status == "resolved")).all()
    assert {infno for infno, how in lost if how == "adopted"} >= {"2501", "2502", "2503", "2504", "2505", "2506"}


# --- 门诊慢特病 -------------------------------------------------------------------------------------------------------


async def test_a_registered_chronic_disease_is_settled_as_mente_and_a_cold_as_ordinary(rig: ChainRig) -> None:
    desk = Desk(320)
    filing_id = desk.filing("MT", DISEASE_CODE="M03900", DISEASE_NAME="高血压", IDENT_DATE=desk.at(7),
                            IDENT_DOC_CODE="D030101", IDENT_DOC_NAME="医生甲", BEGIN_DATE=desk.at(0))
    await rig.produce(desk.messages())
    await results_until(rig, lambda rs: any(r.his_request_id == filing_id and r.kind == "filed" for r in rs))
    htn, htn_req = desk.visit("I10.x00", "高血压", hour=10)
    cold, cold_req = desk.visit("J06.900", "急性上呼吸道感染", hour=14)
    await rig.produce(desk.messages())
    results = await results_until(rig, lambda rs: all(
        any(r.his_request_id == q and r.kind in ("settled", "rejected", "parked") for r in rs)
        for q in (htn_req, cold_req)), timeout=120)
    settled = {r.his_request_id: r for r in results if r.kind == "settled"}
    assert settled[htn_req].med_type == "14" and settled[cold_req].med_type == "11", \
        [(r.kind, r.his_request_id, r.reason) for r in results if r.his_visit_id in (str(htn), str(cold))]
    info = {r.his_visit_id: r for r in results if r.kind == "visit_info_uploaded"}
    assert info[str(htn)].detail["chronic"]["dise_codg"] == "M03900"
    assert info[str(cold)].detail["chronic"]["chronic"] is False
    ledger = [s for s in rig.bridge.admin("settlements") if s["setl_id"] in
              (settled[htn_req].setl_id, settled[cold_req].setl_id)]
    assert sorted(s["med_type"] for s in ledger) == ["11", "14"]


# --- 核酸 batch and the slip -------------------------------------------------------------------------------------------


def workbook(rows: list[dict[str, Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append([label for _, label, _ in COLUMNS])
    for row in rows:
        sheet.append([row.get(key) for key, _, _ in COLUMNS])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def row_of(person: Person) -> dict[str, Any]:
    return {"psn_name": person.psn_name, "psn_cert_type": "01", "certno": person.certno, "mdtrt_cert_type": "02",
            "test_date": "2026-11-20", "medins_list_codg": "250403024-HS", "med_list_codg": "250403024",
            "item_name": "新型冠状病毒核酸检测", "pric": 16.5, "cnt": 1}


async def test_a_nucleic_acid_batch_is_settled_once_per_person_with_bad_rows_reported(rig: ChainRig) -> None:
    people = PEOPLE[330:333]
    bad = {**row_of(PEOPLE[333]), "certno": None}
    content = workbook([row_of(p) for p in people] + [bad])
    async with httpx.AsyncClient(base_url=url(rig), timeout=60) as http:
        anonymous = await http.post("/counter/batches", content=content)
        assert anonymous.status_code == 401
        ops = await http.post("/counter/batches", content=content, headers=bearer("ops.he"))
        assert ops.status_code == 403
        imported = await http.post("/counter/batches", content=content,
                                   headers={**bearer("lab.wu"), "X-File-Name": "nat-1120.xlsx"})
        assert imported.status_code == 201, imported.text
        report = imported.json()
        assert report["accepted"] == 3 and [b["row"] for b in report["bad"]] == [5]
        assert "证件号码" in report["bad"][0]["reason"]
        batch_id = report["batch_id"]
        deadline = time.monotonic() + 120
        while True:
            progress = (await http.get(f"/counter/batches/{batch_id}", headers=bearer("lab.wu"))).json()
            if progress["finished"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert progress["counts"].get("settled") == 3, [(r["status"], r["reason"]) for r in progress["rows"]]
        assert {r["psn_name"] for r in progress["rows"]} == {p.psn_name for p in people}
        masked = (await http.get(f"/counter/batches/{batch_id}", headers=bearer("ops.he"))).json()
        assert all("psn_name" not in r for r in masked["rows"])
        again = await http.post("/counter/batches", content=content, headers=bearer("lab.wu"))
        assert again.status_code == 200 and again.json()["repeated"] and again.json()["batch_id"] == batch_id
        overlap = await http.post("/counter/batches", content=workbook([row_of(people[0]), row_of(PEOPLE[334])]),
                                  headers=bearer("lab.wu"))
        assert overlap.status_code == 201 and overlap.json()["accepted"] == 1
        assert overlap.json()["duplicates"] == [{"row": 2, "batch_id": batch_id, "batch_row": 2}]
        export = await http.get(f"/counter/batches/{batch_id}/export", headers=bearer("lab.wu"))
        assert export.status_code == 200
        sheet = load_workbook(io.BytesIO(export.content)).active
        statuses = [row[4] for row in sheet.iter_rows(min_row=3, values_only=True)]
        assert statuses == ["已结算", "已结算", "已结算", "数据有误"]
        # the slip of one of them: HTML and PDF, the platform's split
        visit = progress["rows"][0]["his_visit_id"]
        listed = (await http.get("/counter/slips", params={"his_visit_id": visit})).json()["slips"]
        assert [s["setl_id"] for s in listed] == [progress["rows"][0]["setl_id"]]
        page = await http.get(f"/counter/slips/{listed[0]['setl_id']}/html")
        assert page.status_code == 200 and "医疗保障基金结算单" in page.text and "16.50" in page.text
        assert people[0].psn_name in page.text
        pdf = await http.get(f"/counter/slips/{listed[0]['setl_id']}/pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        missing = await http.get("/counter/slips/NOPE/html")
        assert missing.status_code == 404
    ledger = rig.bridge.admin("settlements")
    for person in people:
        mine = [s for s in ledger if s["psn_no"] == person.psn_no and s["refd_setl_flag"] == "0"]
        assert len(mine) == 1, person.psn_no  # settled once, whatever was imported again
    with rig.db.connect() as conn:
        audit = conn.execute(select(counter_audit.c.actor, counter_audit.c.action, counter_audit.c.outcome)).all()
    assert ("lab.wu", "batch_import", "ok") in audit and ("ops.he", "batch_import", "denied") in audit
    assert ("-", "login_failed", "denied") in audit and ("lab.wu", "batch_export", "ok") in audit
