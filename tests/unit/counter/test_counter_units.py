"""The counter's pure parts, one rule per test: a query's checks name the field, the reference cache expires, a
workbook's bad row is reported with its number and the template matches the importer, the slip prints the split,
the 备案 chain's decisions."""

from __future__ import annotations

import datetime as _dt
import io
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from yibao.counter import slips
from yibao.counter.batch import COLUMNS, TEMPLATE, NatRow, parse_workbook
from yibao.counter.chain import FilingChain
from yibao.counter.config import CounterConfig
from yibao.counter.errors import BatchFileError
from yibao.counter.models import CounterRequest
from yibao.counter.queries import QueryService
from yibao.counter.reference import CachedReference
from yibao.counter.state import FilingState, Person
from yibao.counter.steps.filing import filing_input, found_filing
from yibao.envelope.catalog import Catalog
from yibao.hisevents.models import EventSource, FilingRequested

CATALOG = Catalog.load(None)


def service() -> QueryService:
    return QueryService(lambda: None, CATALOG, CachedReference(_Source(), {}))


class _Source:
    def __init__(self) -> None:
        self.calls = 0

    async def answer(self, infno: str, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        self.calls += 1
        return {"list": [{"n": self.calls}]}


def request(**kw: Any) -> CounterRequest:
    return CounterRequest(**{"correlation_id": "c1", "infno": "5301", "input": {"data": {"psn_no": "P1"}},
                             "insuplc_admdvs": "440100", **kw})


def test_a_query_the_counter_does_not_serve_names_infno() -> None:
    answer = service().check(request(infno="2207"))
    assert answer is not None and (answer.status, answer.field) == ("invalid", "infno")


def test_a_query_missing_a_required_field_names_it() -> None:
    answer = service().check(request(input={"data": {}}))
    assert answer is not None and answer.field == "input.data.psn_no"


def test_a_psn_no_needs_the_persons_insuplc() -> None:
    answer = service().check(request(insuplc_admdvs=None))
    assert answer is not None and answer.field == "insuplc_admdvs"


def test_an_expired_request_is_answered_expired() -> None:
    answer = service().check(request(expires_at=_dt.datetime(2020, 1, 1)))
    assert answer is not None and answer.status == "expired"


async def test_cached_answers_expire() -> None:
    now = [0.0]
    source = _Source()
    cache = CachedReference(source, {"1901": 10.0}, clock=lambda: now[0])
    first = await cache.answer("1901", {"data": {"type": "x"}})
    assert await cache.answer("1901", {"data": {"type": "x"}}) == first and source.calls == 1
    now[0] = 11.0
    await cache.answer("1901", {"data": {"type": "x"}})
    assert source.calls == 2


def _book(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header or [label for _, label, _ in COLUMNS])
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


GOOD = ["张三", "01", "440101199001011234", "02", None, "310", "2026-03-02", "HS1", "250403024", "核酸", 16.5, 1]


def test_a_bad_row_is_reported_with_its_number_and_the_rest_parsed() -> None:
    bad = list(GOOD)
    bad[10] = "16.555"
    parsed = parse_workbook(_book([GOOD, bad, GOOD[:2] + [None] + GOOD[3:]]), max_rows=10)
    assert isinstance(parsed[0][1], NatRow) and parsed[0][1].total == Decimal("16.50")
    assert parsed[1][0] == 3 and "单价 × 数量" in str(parsed[1][1])
    assert parsed[2][0] == 4 and "证件号码" in str(parsed[2][1])


def test_a_file_without_the_templates_columns_is_refused_naming_them() -> None:
    with pytest.raises(BatchFileError, match="证件号码"):
        parse_workbook(_book([], header=["姓名"]), max_rows=10)
    with pytest.raises(BatchFileError):
        parse_workbook(b"not a workbook", max_rows=10)


def test_the_same_person_date_and_item_is_one_row_key() -> None:
    a = NatRow(psn_name="甲", certno="440101199001011234", test_date="2026-03-02", medins_list_codg="H",
               med_list_codg="250403024", pric="16.5")
    assert a.row_key == a.model_copy(update={"psn_name": "乙", "medins_list_codg": "X"}).row_key


def test_the_shipped_template_has_the_importers_columns() -> None:
    header = next(load_workbook(TEMPLATE).active.iter_rows(max_row=1, values_only=True))
    assert list(header) == [label for _, label, _ in COLUMNS]


SLIP = {"setl_id": "S1", "status": "refunded", "his_visit_id": "V1",
        "header": {"psn_name": "张三", "number": "MZ1", "dept_name": "内科", "kind": "门诊"},
        "result": {"psn_no": "P1", "mdtrt_id": "M1", "med_type": "14", "insutype": "310",
                   "setl_time": "2026-03-02T10:00:00+08:00",
                   "split": {"medfee_sumamt": "100.00", "fund_pay_sumamt": "70.00", "psn_part_amt": "30.00",
                             "acct_pay": "10.00", "psn_cash_pay": "20.00"}}}


def test_the_slip_prints_the_split_and_says_refunded() -> None:
    page = slips.render_html(SLIP, title="医疗保障基金结算单", hospital="测试医院")
    assert "100.00" in page and "70.00" in page and "已退费" in page and "门诊慢特病" in page
    assert slips.render_pdf(SLIP, title="医疗保障基金结算单", hospital="测试医院").startswith(b"%PDF")


def _filing(kind: str = "chronic", **kw: Any) -> FilingRequested:
    base = {"event_id": "ev-00000001", "his_visit_id": "BA1", "his_patient_id": "P1",
            "occurred_at": _dt.datetime(2026, 3, 2, 8), "source": EventSource(topic="t", partition=0, offset=1,
                                                                                table="HIS.YB_FILING"),
            "his_request_id": "BA1", "filing": kind, "mdtrt_cert_type": "02", "mdtrt_cert_no": "440101199001011234"}
    fields = {"chronic": {"opsp_dise_code": "M03900", "opsp_dise_name": "高血压", "hosp_ide_date": "2026-03-01",
                          "diag_dr_codg": "D1", "diag_dr_name": "医生", "begndate": "2026-03-01"}}
    return FilingRequested(**{**base, **fields.get(kind, {}), **kw})


def test_a_filing_names_the_fields_its_kind_needs() -> None:
    with pytest.raises(Exception, match="transfer filing needs"):
        _filing("transfer")


def test_a_chronic_filing_goes_up_as_2503_with_the_persons_insurance() -> None:
    person = Person(psn_no="P1", insutype="310", insuplc_admdvs="440100")
    infno, body = filing_input(CounterConfig(fixmedins_name="测试医院"), _filing(), person)
    assert infno == "2503" and body["data"]["insu_optins"] == "440100" and body["data"]["opsp_dise_code"] == "M03900"
    CATALOG.validate_input("2503", body)


def test_a_lost_2503_is_adopted_from_5301_by_disease_and_begin_date() -> None:
    found = found_filing(_filing())
    rows = {"feedetail": [{"opsp_dise_code": "M03900", "begndate": "2026-03-01", "trt_dcla_detl_sn": "T9"}]}
    assert found(rows, "m1") == {"result": {"trt_dcla_detl_sn": "T9"}}
    assert found({"feedetail": []}, "m1") is None


def test_the_chain_asks_1101_then_files_then_waits() -> None:
    chain = FilingChain(CounterConfig())
    state = FilingState(filing=_filing().model_dump(mode="json"), received_at=_dt.datetime(2026, 3, 2, 8))
    now = _dt.datetime(2026, 3, 2, 8, 1)
    assert chain.next_action(state, now).infno == "1101"  # type: ignore[union-attr]
    state.person = Person(psn_no="P1", insutype="310", insuplc_admdvs="440100")
    assert chain.next_action(state, now).infno == "2503"  # type: ignore[union-attr]
    state.status, state.serial = "filed", "T1"
    assert type(chain.next_action(state, now)).__name__ == "Idle"
