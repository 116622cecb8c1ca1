"""血透 through the whole bridge (real processes, real Kafka and PostgreSQL, the simulator), seed 000 §6.3: an
inpatient pre-settlement sheet sent to outpatient pending settlement, settled there through 医保, and the result
backfilled to the inpatient account for clearing and invoice; the outpatient side keeps no business data of its own.

The HIS rows are those of the example Oracle HIS (``example-oracle-his.yaml``), built with the fake HIS's own
helpers (:class:`yibao.fakedata.his.HisDay`, its tables and catalogue) and encoded by the fake connector
(:class:`yibao.fakedata.cdc.CdcEncoder`) in the shape the other chain days use:

* the 血透 account — a *self-pay* admission (PAY_MODE 2: never admitted with 医保, so no 2401) in 肾内科, whose
  charge lines (HIS.INP_FEE_DETAIL) are the pre-settlement sheet;
* the outpatient visit of the same person — a 医保 registration (门诊慢特病) with its diagnosis, and nothing of
  its own to charge;
* the cashier's request on the outpatient visit (HIS.YB_SETTLE_REQUEST) naming the account in HD_ADM_ID, with the
  sheet's total.

The settled (and refunded) answer is *backfilled*: HIS gets it keyed by, and naming, the inpatient account
(:mod:`yibao.settlement.hemodialysis`); the audit (:class:`yibao.stack.audit.Answers`) matches it to the request
HIS made on the outpatient visit through the answer's ``detail.hemodialysis``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from e2e.chains.chain_day import SEED, ChainRig, Day, bridge_on_stack
from yibao.core.db.schema import chain_visits, fee_lines, parked_work
from yibao.core.results import HisResult
from yibao.fakedata import his_tables as T
from yibao.fakedata.cdc import CdcEncoder, CdcShape, RawCdcMessage
from yibao.fakedata.his import HisDay
from yibao.fakedata.his_catalog import INP_DAILY_ITEMS, INP_DEPTS, INP_EXTRA_ITEMS, OUTP_DEPTS, Item, doctors_of
from yibao.fakedata.people import Person, population
from yibao.stack import Stack
from yibao.stack.audit import FINAL_KINDS, his_requests

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

#: the shape of ChainRig.day's messages (Oracle connector, JsonConverter with schemas, precise decimals)
SHAPE = CdcShape(decimal_mode="precise", schemas=True)
#: people 0–479 are the generated days' (ChainRig.day hands out groups of 40); the 血透 patients come after them
HD_PEOPLE = range(480, 500)
_INSUR = {"310": "ZG", "390": "JM", "340": "LX"}
_NEPHROLOGY = next(d for d in INP_DEPTS if d.code == "0304")  # 肾内科病区
_CLINIC = next(d for d in OUTP_DEPTS if d.code == "0301")  # 内科门诊
_HAEMODIALYSIS = next(i for i in INP_EXTRA_ITEMS if i.code == "311000006")  # 血液透析
_SALINE = next(i for i in INP_EXTRA_ITEMS if i.code == "Y02002")
_GIVING_SET = next(i for i in INP_EXTRA_ITEMS if i.code == "C00031")
_CHECKUP = next(i for i in INP_DAILY_ITEMS if i.code == "110300001")  # 住院诊查费


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("hemodialysis"))


# --- the HIS rows ------------------------------------------------------------------------------------------------


@dataclass
class Sheet:
    """A 血透 account and its pending lines as HIS wrote them."""

    adm_id: int
    sns: list[str]
    total: Decimal


@dataclass
class HdPatient:
    """One 血透 patient's rows in the example Oracle HIS, made with the fake HIS's helpers (ids carry the day)."""

    index: int
    day: _dt.date
    person: Person = field(init=False)
    his: HisDay = field(init=False)
    encoder: CdcEncoder = field(init=False)

    def __post_init__(self) -> None:
        self.person = population(SEED, 500)[self.index]
        self.his = HisDay(SEED, self.day, [self.person])
        self.encoder = CdcEncoder(SHAPE, start_position=5_000_000 + self.index * 10_000)
        self.patient_id = self.his._patient_id(self.person)
        self.card = {"CARD_TYPE": "1", "CARD_NO": self.person.certno, "CARD_SN": None}

    def _at(self, hour: int, minute: int = 0) -> _dt.datetime:
        return _dt.datetime.combine(self.day, _dt.time(hour, minute))

    def messages(self) -> list[RawCdcMessage]:
        """The rows emitted since the last call, as the connector puts them on Kafka (commit order)."""
        changes = self.his.ordered()
        self.his.changes.clear()
        return [RawCdcMessage(topic=t, key=k, value=v) for c in changes for t, k, v in self.encoder.encode(c)]

    def account(self, *items: Item) -> Sheet:
        """住院登记 as a self-pay account (PAY_MODE 2: never admitted with 医保), then its charge lines."""
        doctor = doctors_of(_NEPHROLOGY)[0]
        adm_id = self.his._int_id("adm", 4, lead="9")
        t = self._at(7, 30)
        self.his.emit(T.INP_ADMISSION, "c", t, after={
            "ADM_ID": adm_id, "PATIENT_ID": self.patient_id, "INPATIENT_NO": f"ZY{self.day:%y%m%d}{adm_id % 10000:04d}",
            "MEDREC_NO": f"BA{self.patient_id[1:]}", **self.card, "ID_TYPE": "1", "ID_NO": self.person.certno,
            "PAT_NAME": self.person.psn_name, "INSUR_TYPE": _INSUR[self.person.insutype], "MED_TYPE": "PT",
            "ADM_TIME": t, "ADM_DEPT_CODE": _NEPHROLOGY.code, "ADM_DEPT_NAME": _NEPHROLOGY.name, "BED_NO": "04-HD",
            "ATTEND_DOC_CODE": doctor.code, "ATTEND_DOC_NAME": doctor.name, "ADM_DIAG_CODE": "N18.500",
            "ADM_DIAG_NAME": "慢性肾脏病5期", "ADM_DIAG_DESC": "维持性血液透析", "CONTACT_NAME": None,
            "CONTACT_TEL": self.person.phone, "PAY_MODE": "2", "STATUS": "1", "UPDATE_TIME": t,
            "OPERATOR_ID": "A001", "OPERATOR_NAME": "住院处甲",
        })
        sns: list[str] = []
        total = Decimal("0.00")
        for n, item in enumerate(items):
            ft = t + _dt.timedelta(minutes=30 + n)
            qty = Decimal(1)
            line = {
                "DETAIL_ID": self.his._int_id("ipfee", 7), "ADM_ID": adm_id, "PATIENT_ID": self.patient_id,
                "ORDER_NO": f"YZ{adm_id}{n:03d}", "MED_TYPE": "PT", "FEE_TIME": ft, "TCM_USAGE": None,
                "DSCG_DRUG_FLAG": "N", "MATN_FLAG": "N", "ITEM_CODE": item.code, "ITEM_NAME": item.name,
                "YB_CODE": item.yb_code, "AMOUNT": item.price * qty, "QTY": qty, "PRICE": item.price,
                "DOSAGE": item.dosage, "FREQUENCY": item.frequency, "DAYS": Decimal(1) if item.drug else None,
                "ROUTE": item.route, "BILL_DEPT_CODE": _NEPHROLOGY.code, "BILL_DEPT_NAME": _NEPHROLOGY.name,
                "BILL_DOC_CODE": doctor.code, "BILL_DOC_NAME": doctor.name, "EXEC_DEPT_CODE": _NEPHROLOGY.code,
                "EXEC_DEPT_NAME": _NEPHROLOGY.name, "ORDER_DOC_CODE": doctor.code, "ORDER_DOC_NAME": doctor.name,
                "APPROVE_FLAG": None, "TRACE_CODES": self.his._trace_codes(item, qty), "INIT_DETAIL_ID": None,
                "MEMO": None, "OPERATOR_ID": "N001", "OPERATOR_NAME": "护士站",
            }
            self.his.emit(T.INP_FEE_DETAIL, "c", ft, after=line)
            sns.append(str(line["DETAIL_ID"]))
            total += line["AMOUNT"]
        return Sheet(adm_id, sns, total)

    def outpatient(self, *, hour: int) -> int:
        """门诊挂号 with 医保 (门诊慢特病) and its diagnosis; nothing charged on the visit itself."""
        doctor = doctors_of(_CLINIC)[0]
        reg_id = self.his._int_id("reg", 5)
        t = self._at(hour)
        self.his.emit(T.OUTP_REGISTER, "c", t, after={
            "REG_ID": reg_id, "PATIENT_ID": self.patient_id, "REG_NO": f"MZ{self.day:%Y%m%d}{reg_id % 100000:05d}",
            **self.card, "ID_TYPE": "1", "ID_NO": self.person.certno, "PAT_NAME": self.person.psn_name,
            "INSUR_TYPE": _INSUR[self.person.insutype], "MED_TYPE": "MT", "REG_TIME": t,
            "DEPT_CODE": _CLINIC.code, "DEPT_NAME": _CLINIC.name, "DEPT_CATY": _CLINIC.caty,
            "DOCTOR_CODE": doctor.code, "DOCTOR_NAME": doctor.name, "REG_FEE": Decimal("0.00"), "REG_TYPE": "01",
            "REG_CHANNEL": "1", "PAY_MODE": "1", "STATUS": "1", "OPERATOR_ID": "C001", "OPERATOR_NAME": "收费员甲",
        })
        t += _dt.timedelta(minutes=5)
        self.his.emit(T.OUTP_DIAGNOSIS, "c", t, after={
            "DIAG_ID": self.his._int_id("diag", 7), "REG_ID": reg_id, "PATIENT_ID": self.patient_id, "DIAG_SEQ": 1,
            "DIAG_CLASS": "W", "ICD_CODE": "N18.500", "DIAG_NAME": "慢性肾脏病5期", "MAIN_FLAG": "Y",
            "MED_TYPE": "MT", "CHIEF_COMPLAINT": "维持性血液透析", "DEPT_CODE": _CLINIC.code,
            "DOCTOR_CODE": doctor.code, "DOCTOR_NAME": doctor.name, "DIAG_TIME": t, "VALID_FLAG": "1",
        })
        return reg_id

    def settle(self, reg_id: int, sheet: Sheet, *, hour: int) -> str:
        """The cashier sends the account's sheet to the outpatient visit pending settlement (HD_ADM_ID)."""
        req_id = self.his._str_id("settle", "S")
        t = self._at(hour, 15)
        self.his.emit(T.YB_SETTLE_REQUEST, "c", t, after={
            "REQ_ID": req_id, "VISIT_ID": reg_id, "VISIT_TYPE": "O", "PATIENT_ID": self.patient_id, "REQ_TIME": t,
            "ACCT_USED": "N", "SETL_WAY": "01", "MID_SETL": "0", "INVOICE_NO": self.his._str_id("inv", "I"),
            "TOTAL_AMT": sheet.total, "BATCH_NO": None, **self.card, "INSUR_TYPE": _INSUR[self.person.insutype],
            "HD_ADM_ID": sheet.adm_id, "OPERATOR_ID": "C001", "OPERATOR_NAME": "收费员甲",
        })
        return req_id

    def refund(self, reg_id: int, settle_req_id: str, *, hour: int) -> str:
        req_id = self.his._str_id("refund", "R")
        t = self._at(hour, 45)
        self.his.emit(T.YB_REFUND_REQUEST, "c", t, after={
            "REQ_ID": req_id, "VISIT_ID": reg_id, "VISIT_TYPE": "O", "PATIENT_ID": self.patient_id, "REQ_TIME": t,
            "SETTLE_REQ_ID": settle_req_id, "SETL_ID": None, "REASON": "透析单有误，撤销结算",
            "OPERATOR_ID": "C001", "OPERATOR_NAME": "收费员甲",
        })
        return req_id


def hd_day(rig: ChainRig, messages: list[RawCdcMessage], earlier: Day | None = None) -> Day:
    """The HIS requests of ``messages`` (plus those of ``earlier``). A sheet's settlement and refund are asked on
    the outpatient visit and answered on the account (the backfill): the audit matches them by the answer's
    ``detail.hemodialysis``."""
    requests = his_requests(rig.ingestor, messages)
    if earlier is not None:
        for kind, keys in earlier.requests.items():
            requests[kind] |= keys
        messages = earlier.messages + messages
    return Day(messages, requests)


# --- what the bridge and the platform hold -----------------------------------------------------------------------


def lines_of(rig: ChainRig, *visits: int) -> dict[str, dict[str, str]]:
    """visit → feedetl_sn → status in the settlement service's fee_lines."""
    keys = [str(v) for v in visits]
    with rig.db.connect() as conn:
        rows = conn.execute(select(fee_lines.c.visit_key, fee_lines.c.feedetl_sn, fee_lines.c.status)
                            .where(fee_lines.c.visit_key.in_(keys))).all()
    out: dict[str, dict[str, str]] = {k: {} for k in keys}
    for visit, sn, status in rows:
        out[visit][sn] = status
    return out


async def lines_until(rig: ChainRig, statuses: dict[int, str], sns: list[str], *,
                      timeout: float = 30) -> dict[str, dict[str, str]]:
    """:func:`lines_of` once each visit's ``sns`` have the status wanted (or at the timeout: the test's asserts say
    what differs). The 2205 that releases a refunded sheet follows the refunded answer."""
    deadline = time.monotonic() + timeout
    while True:
        lines = lines_of(rig, *statuses)
        if all(lines[str(v)] == dict.fromkeys(sns, status) for v, status in statuses.items()) \
                or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.2)


def parked(rig: ChainRig, *visits: int) -> list[tuple[str, ...]]:
    """What the services set aside for a person: parked chains of ``visits`` and any parked work at all."""
    keys = [str(v) for v in visits]
    with rig.db.connect() as conn:
        chains = conn.execute(select(chain_visits.c.service, chain_visits.c.visit_key, chain_visits.c.last_error)
                              .where(chain_visits.c.visit_key.in_(keys), chain_visits.c.status == "parked")).all()
        work = conn.execute(select(parked_work.c.service, parked_work.c.reason_code, parked_work.c.reason)).all()
    return [tuple(map(str, r)) for r in [*chains, *work]]


def of_request(answers: list[HisResult], request: str) -> list[HisResult]:
    return [r for r in answers if r.his_request_id == request]


def registered(answers: list[HisResult], reg_id: int) -> HisResult:
    [r] = [r for r in answers if r.his_visit_id == str(reg_id) and r.kind == "registered"]
    return r


def ledger_of(rig: ChainRig, mdtrt_id: str) -> list[dict[str, Any]]:
    return [s for s in rig.bridge.admin("settlements") if s.get("mdtrt_id") == mdtrt_id]


def assert_backfilled_settlement(rig: ChainRig, answers: list[HisResult], *, request: str, reg_id: int,
                                 sheet: Sheet) -> HisResult:
    """The one settled answer of ``request``: backfilled to the account, agreeing with the platform's ledger."""
    outpatient = registered(answers, reg_id)
    assert outpatient.mdtrt_id, "the outpatient visit is registered with 医保 (2201)"
    [settled] = [r for r in of_request(answers, request) if r.kind in FINAL_KINDS]
    assert settled.kind == "settled", (settled.kind, settled.reason_code, settled.reason)
    # backfilled: keyed by and naming the inpatient account, the outpatient 医保 visit's numbers in it
    assert (settled.his_visit_id, settled.visit_kind) == (str(sheet.adm_id), "inpatient")
    assert settled.step_infno == "2207" and settled.mdtrt_id == outpatient.mdtrt_id
    assert settled.psn_no == outpatient.psn_no and settled.refd_setl_flag == "0"
    assert settled.detail == {"hemodialysis": {"outpatient_visit_id": str(reg_id),
                                               "inpatient_visit_id": str(sheet.adm_id), "request_id": request}}
    assert settled.setl_id and settled.clr_type and settled.split is not None
    split = settled.split
    assert split.medfee_sumamt == sheet.total
    assert split.fund_pay_sumamt + split.psn_part_amt + (split.hosp_part_amt or 0) == sheet.total
    assert split.acct_pay + split.psn_cash_pay == split.psn_part_amt
    # the platform: one settlement of the outpatient 医保 visit (2207), of exactly the sheet's lines (2204)
    [entry] = [s for s in ledger_of(rig, outpatient.mdtrt_id) if s["refd_setl_flag"] == "0"
               and s["setl_id"] == settled.setl_id]
    assert entry["infno"] == "2207" and Decimal(str(entry["amounts"]["medfee_sumamt"])) == sheet.total
    assert sorted(entry["detail_sns"]) == sorted(sheet.sns)
    visit = rig.bridge.admin(f"visits/{outpatient.mdtrt_id}")
    assert visit["kind"] == "outpatient"
    settled_details = {sn for sn, d in visit["details"].items() if d["setl_id"] == settled.setl_id}
    assert settled_details == set(sheet.sns), "the sheet's lines went up with 2204 under the outpatient mdtrt_id"
    return settled


# --- the tests ---------------------------------------------------------------------------------------------------


async def test_a_sheet_is_settled_at_outpatient_through_yibao_and_backfilled_to_the_inpatient_account(
        rig: ChainRig) -> None:
    p = HdPatient(HD_PEOPLE[0], _dt.date(2026, 12, 1))
    sheet = p.account(_HAEMODIALYSIS, _SALINE, _GIVING_SET, _CHECKUP)
    reg_id = p.outpatient(hour=14)
    request = p.settle(reg_id, sheet, hour=14)
    day = hd_day(rig, p.messages())
    assert day.requests["settlement"] == {(str(reg_id), request)}
    assert day.requests["admission"] == {(str(sheet.adm_id), None)}
    assert day.requests["registration"] == {(str(reg_id), None)}

    answers = await rig.run(day)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    results = answers.results
    assert [r.kind for r in results if r.his_visit_id == str(sheet.adm_id) and r.his_request_id is None] \
        == ["self_pay"], "the account is a self-pay admission: never admitted with 医保"

    settled = assert_backfilled_settlement(rig, results, request=request, reg_id=reg_id, sheet=sheet)
    # one answer per settlement, where it is cleared: no final answer on the outpatient visit; the cashier there
    # sees only the pre-settlement (2206) split of the sheet
    on_outpatient = [r for r in results if r.his_visit_id == str(reg_id) and r.service == "settlement"]
    assert [(r.kind, r.his_request_id) for r in on_outpatient] == [("presettled", request)]
    assert on_outpatient[0].split is not None and on_outpatient[0].split.medfee_sumamt == sheet.total
    # exactly one settlement of the outpatient 医保 visit on the platform; nothing of the account there
    outpatient = registered(results, reg_id)
    assert len([s for s in ledger_of(rig, outpatient.mdtrt_id) if s["refd_setl_flag"] == "0"]) == 1
    assert [c for c in rig.calls("settlement", "2204") if c[0] == str(reg_id)], "2204 on the outpatient visit"
    assert not [c for c in rig.calls("settlement", "2204") + rig.calls("settlement", "2301")
                if c[0] == str(sheet.adm_id)], "nothing goes up for the account itself"
    # the bridge: the account's lines were claimed by the outpatient visit, whose copies are settled
    lines = lines_of(rig, sheet.adm_id, reg_id)
    assert lines[str(sheet.adm_id)] == dict.fromkeys(sheet.sns, "withdrawn")
    assert lines[str(reg_id)] == dict.fromkeys(sheet.sns, "settled")
    assert not parked(rig, sheet.adm_id, reg_id)


async def test_refunding_a_sheet_gives_its_lines_back_to_the_account_for_the_next_sheet(rig: ChainRig) -> None:
    p = HdPatient(HD_PEOPLE[1], _dt.date(2026, 12, 2))
    sheet = p.account(_HAEMODIALYSIS, _GIVING_SET)
    reg_id = p.outpatient(hour=14)
    request = p.settle(reg_id, sheet, hour=14)
    day = hd_day(rig, p.messages())
    answers = await rig.run(day)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    settled = assert_backfilled_settlement(rig, answers.results, request=request, reg_id=reg_id, sheet=sheet)
    outpatient = registered(answers.results, reg_id)

    # 退费 at the outpatient desk (2208, then 2205 of the settled batch): backfilled to the account too
    refund = p.refund(reg_id, request, hour=15)
    new = p.messages()
    day = hd_day(rig, new, earlier=day)
    assert {key[1] for key in day.requests["refund"]} == {refund}
    answers = await rig.run(day, new)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    [refunded] = [r for r in of_request(answers.results, refund) if r.kind in FINAL_KINDS]
    assert refunded.kind == "refunded", (refunded.kind, refunded.reason_code, refunded.reason)
    assert (refunded.his_visit_id, refunded.visit_kind) == (str(sheet.adm_id), "inpatient")
    assert refunded.step_infno == "2208" and refunded.refd_setl_flag == "1"
    assert refunded.orig_setl_id == settled.setl_id and refunded.mdtrt_id == outpatient.mdtrt_id
    assert refunded.split is not None and refunded.split.medfee_sumamt == -sheet.total
    assert refunded.detail == {"hemodialysis": {"outpatient_visit_id": str(reg_id),
                                                "inpatient_visit_id": str(sheet.adm_id), "request_id": refund}}
    assert not [r for r in answers.results if r.his_visit_id == str(reg_id) and r.his_request_id == refund]
    ledger = {s["setl_id"]: s for s in ledger_of(rig, outpatient.mdtrt_id)}
    assert ledger[settled.setl_id]["status"] == "cancelled"
    assert ledger[refunded.setl_id]["refd_setl_flag"] == "1"
    assert ledger[refunded.setl_id]["orig_setl_id"] == settled.setl_id
    # the lines are the account's again, pending, ready for the next sheet; the outpatient copies are withdrawn
    # (2205 took them off the platform)
    lines = await lines_until(rig, {sheet.adm_id: "pending", reg_id: "withdrawn"}, sheet.sns)
    assert lines[str(sheet.adm_id)] == dict.fromkeys(sheet.sns, "pending"), lines
    assert lines[str(reg_id)] == dict.fromkeys(sheet.sns, "withdrawn"), lines
    assert [c for c in rig.calls("settlement", "2205") if c[0] == str(reg_id)], "2205 withdrew the sheet's batch"
    details = rig.bridge.admin(f"visits/{outpatient.mdtrt_id}")["details"]
    assert {sn: d["status"] for sn, d in details.items()} == dict.fromkeys(sheet.sns, "revoked")

    # the same sheet settled again at the next outpatient visit
    reg2 = p.outpatient(hour=16)
    request2 = p.settle(reg2, sheet, hour=16)
    new = p.messages()
    day = hd_day(rig, new, earlier=day)
    answers = await rig.run(day, new)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    again = assert_backfilled_settlement(rig, answers.results, request=request2, reg_id=reg2, sheet=sheet)
    assert again.setl_id != settled.setl_id
    assert [r.his_request_id for r in answers.results if r.his_visit_id == str(sheet.adm_id)
            and r.kind == "settled"] == [request, request2], "two sheets settled, each answered once"
    lines = lines_of(rig, sheet.adm_id, reg_id, reg2)
    assert lines[str(sheet.adm_id)] == dict.fromkeys(sheet.sns, "withdrawn")
    assert lines[str(reg_id)] == dict.fromkeys(sheet.sns, "withdrawn")
    assert lines[str(reg2)] == dict.fromkeys(sheet.sns, "settled")
    assert not parked(rig, sheet.adm_id, reg_id, reg2)
