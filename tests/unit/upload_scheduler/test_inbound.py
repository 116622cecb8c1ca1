"""What the platform posts back about uploaded prescriptions (7102 处方审核结果, 7103 处方购药结果) on POST
/national/inbound: the caller is believed first (token, source address), the envelope and its input are checked
against the catalog's field list, a repeated msgid is the same event, an unknown hi_rxno is refused — and what is
accepted is kept with the 7101 record, shown by GET /uploads/records and told to HIS, without the pharmacists'
names or certnos anywhere but the sealed row. On SQLite, with a 7101 really uploaded to the in-process simulator."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import func, select, update

from yibao.core.db.schema import outbox, rx_feedback, upload_records
from yibao.envelope.catalog import Catalog
from yibao.envelope.national import jsontext
from yibao.simulator.rx_feedback import purchase_input, review_input
from yibao.simulator.settings import SimulatorSettings
from yibao.upload_scheduler import http
from yibao.upload_scheduler.inbound import RECEIVED_INFNOS, Gate, Inbound, Receiver, Refusal, read_envelope
from yibao.upload_scheduler.settings import UploadSchedulerSettings

from unit.upload_scheduler.harness import Harness, sample

CODE = "H44010600001"
TOKEN = "inbound-secret-for-tests"
HEADERS = {"X-Yibao-Inbound-Token": TOKEN}
CATALOG = Catalog.load(None)
SIM = SimulatorSettings()
_serial = iter(range(1, 10**6))


def envelope(infno: str, payload: dict[str, Any], *, msgid: str | None = None, code: str = CODE) -> bytes:
    msgid = msgid or f"440100202401011200{next(_serial):012d}"
    return jsontext.dumps_bytes({"infno": infno, "msgid": msgid, "mdtrtarea_admvs": "440100", "fixmedins_code": code,
                                 "inf_time": "2024-01-01 12:00:00", "input": payload})


def review(hi_rxno: str, *, approved: bool = True) -> dict[str, Any]:
    return review_input(SIM, hi_rxno, approved, _now())


def purchase(hi_rxno: str) -> dict[str, Any]:
    rx = {"rxdrugdetail": [{"med_list_codg": "X1", "drug_genname": "阿莫西林", "drug_dosform": "胶囊",
                            "drug_spec": "0.25g", "drug_cnt": Decimal(12), "drug_cnt_unit": "粒",
                            "drug_pric": Decimal("0.8333")}]}
    return purchase_input(SIM, hi_rxno, rx, _now())


def _now() -> Any:
    from yibao.core import clock

    return clock.now()


async def uploaded_rx(h: Harness, sim: Any) -> tuple[str, str, str]:
    """(hosp_rxno, hi_rxno, his_visit_id) of a 7101 the platform accepted."""
    item = next(i for i in sample(sim).items if i.kind == "7101")
    h.item(item)
    await h.run()
    rxno = item.record["data"]["hosp_rxno"]
    rec = h.record("7101", rxno)
    assert rec.status == "accepted" and rec.platform_key == rec.receipt["hi_rxno"]
    return rxno, rec.platform_key, rec.his_visit_id


def receiver(h: Harness, gate: Gate | None = None, db: Any = None) -> Receiver:
    return Receiver(db or h._run_db, CATALOG, gate or Gate(token=TOKEN), fixmedins_code=CODE, topic_prefix="t.")


async def post(r: Receiver, body: bytes, headers: dict[str, str] | None = None, peer: str = "127.0.0.1") -> Any:
    async def read() -> bytes:
        return body

    return await r.post(HEADERS if headers is None else headers, peer, read)


def told_his(h: Harness) -> list[dict[str, Any]]:
    with h.db.connect() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "t.yibao.his.results.v1")
                            .order_by(outbox.c.id)).all()
    return [json.loads(r.payload) for r in rows]


def kept(h: Harness) -> int:
    with h.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(rx_feedback)).scalar_one())


def counted(infno: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("yibao_upload_inbound_total", {"infno": infno, "outcome": outcome}) or 0.0


# --- who may post ------------------------------------------------------------------------------------------------

def test_a_post_without_the_token_is_unauthenticated() -> None:
    refusal = Gate(token=TOKEN).check({}, "127.0.0.1")
    assert refusal is not None and refusal.status == 401 and refusal.outcome == "unauthenticated"
    assert "X-Yibao-Inbound-Token" in refusal.err_msg and TOKEN not in refusal.err_msg


def test_a_post_with_a_wrong_token_is_unauthenticated() -> None:
    refusal = Gate(token=TOKEN).check({"X-Yibao-Inbound-Token": TOKEN + "x"}, "127.0.0.1")
    assert refusal is not None and refusal.status == 401 and "does not verify" in refusal.err_msg


def test_a_post_from_an_address_not_on_the_allow_list_is_forbidden() -> None:
    settings = UploadSchedulerSettings(inbound_allowed_sources=["10.8.0.0/16"])
    refusal = Gate.from_settings(settings).check({}, "192.168.1.9")
    assert refusal is not None and refusal.status == 403 and refusal.outcome == "forbidden"


def test_an_allowed_address_and_the_token_let_the_caller_in() -> None:
    gate = Gate.from_settings(UploadSchedulerSettings(inbound_token=SecretStr(TOKEN),
                                                      inbound_allowed_sources=["10.8.0.0/16", "127.0.0.1"]))
    assert gate.check(HEADERS, "10.8.3.4") is None
    assert gate.check(HEADERS, "::ffff:127.0.0.1") is None  # an IPv4 peer seen on a dual-stack socket
    assert gate.check({}, "10.8.3.4") is not None  # both checks apply when both are configured


def test_inbound_not_configured_refuses_every_post() -> None:
    refusal = Gate.from_settings(UploadSchedulerSettings()).check(HEADERS, "127.0.0.1")
    assert refusal is not None and refusal.status == 403 and "not configured" in refusal.err_msg


def test_an_allow_list_entry_that_is_no_address_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="inbound_allowed_sources"):
        UploadSchedulerSettings(inbound_allowed_sources=["the platform"])


def test_the_token_is_never_in_the_gates_repr() -> None:
    assert TOKEN not in repr(Gate(token=TOKEN))


# --- the envelope --------------------------------------------------------------------------------------------------

def test_only_the_transactions_the_hospital_receives_are_taken() -> None:
    assert RECEIVED_INFNOS == ("7102", "7103")
    found = read_envelope(envelope("7101", review("HX1")), catalog=CATALOG, fixmedins_code=CODE)
    assert isinstance(found, Refusal) and found.field == "infno" and "envelope.infno" in found.err_msg


def test_an_envelope_without_a_msgid_is_refused_naming_it() -> None:
    body = jsontext.dumps_bytes({"infno": "7102", "fixmedins_code": CODE, "input": review("HX1")})
    found = read_envelope(body, catalog=CATALOG, fixmedins_code=CODE)
    assert isinstance(found, Refusal) and found.err_msg.startswith("[7102] envelope.msgid")


def test_an_envelope_for_another_institution_is_refused() -> None:
    found = read_envelope(envelope("7102", review("HX1"), code="H44999900001"), catalog=CATALOG, fixmedins_code=CODE)
    assert isinstance(found, Refusal) and "envelope.fixmedins_code" in found.err_msg


def test_a_body_that_is_not_json_is_refused_with_the_platforms_error_shape() -> None:
    found = read_envelope(b"<xml/>", catalog=CATALOG, fixmedins_code=CODE)
    assert isinstance(found, Refusal) and found.status == 200 and "not valid JSON" in found.err_msg


@pytest.mark.parametrize(("infno", "change", "field"), [
    ("7102", lambda p: p["data"].pop("rx_chk_time"), "input.data.rx_chk_time: required"),
    ("7102", lambda p: p["data"].update(hi_rxno="H" * 31), "input.data.hi_rxno: max_length 30"),
    ("7102", lambda p: p["data"].update(phar_name=""), "input.data.phar_name: required"),
    ("7103", lambda p: p["data"].update(acct_pay=Decimal("1.005")), "input.data.acct_pay: scale"),
    ("7103", lambda p: p["seltdelts"][0].pop("prdr_name"), "input.seltdelts[0].prdr_name: required"),
])
def test_an_input_breaking_the_catalogs_field_list_is_refused_naming_the_field(
        infno: str, change: Any, field: str) -> None:
    payload = review("HX1") if infno == "7102" else purchase("HX1")
    change(payload)
    found = read_envelope(envelope(infno, payload), catalog=CATALOG, fixmedins_code=CODE)
    assert isinstance(found, Refusal) and found.outcome == "invalid", found
    assert found.err_msg.startswith(f"[{infno}] {field}"), found.err_msg


def test_a_valid_purchase_is_read_with_exact_decimal_money() -> None:
    found = read_envelope(envelope("7103", purchase("HX1")), catalog=CATALOG, fixmedins_code=CODE)
    assert isinstance(found, Inbound)
    amounts = {k: found.data[k] for k in ("fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay")}
    assert all(isinstance(v, Decimal) for v in amounts.values())
    assert amounts["fund_pay_sumamt"] + amounts["psn_part_amt"] == Decimal("10.00")  # 12 × 0.8333 = 9.9996 → 10.00


# --- what it does ----------------------------------------------------------------------------------------------------

async def test_a_review_is_kept_with_its_7101_record_and_told_to_his(h: Harness, sim: Any) -> None:
    rxno, hi_rxno, visit = await uploaded_rx(h, sim)
    reply = await post(receiver(h), envelope("7102", review(hi_rxno, approved=False)))
    assert reply.status == 200 and reply.body["infcode"] == 0 and reply.body["err_msg"] == ""
    with h.db.connect() as conn:
        status, body = http.records_response(conn, {"kind": "7101", "key": rxno})
    assert status == 200
    seen = body["records"][0]["feedback"]["review"]
    assert seen["rx_chk_stas_codg"] == SIM.rx_rejected_code and seen["hi_rxno"] == hi_rxno
    [result] = told_his(h)
    assert result["kind"] == "rx_reviewed" and result["his_visit_id"] == visit and result["step_infno"] == "7102"
    assert result["detail"]["hosp_rxno"] == rxno and result["reason"].startswith("审核不通过")


async def test_a_purchase_is_kept_with_exact_money_and_told_to_his(h: Harness, sim: Any) -> None:
    rxno, hi_rxno, _ = await uploaded_rx(h, sim)
    payload = purchase(hi_rxno)
    reply = await post(receiver(h), envelope("7103", payload))
    assert reply.body["infcode"] == 0
    with h.db.connect() as conn:
        row = conn.execute(select(rx_feedback)).one()
        _, one = http.record_response(conn, "7101", rxno)
    assert row.fund_pay_sumamt == payload["data"]["fund_pay_sumamt"] and row.lines == 1
    assert isinstance(row.psn_cash_pay, Decimal) and row.psn_cash_pay == payload["data"]["psn_cash_pay"]
    [bought] = one["feedback"]["purchases"]
    assert bought["fund_pay_sumamt"] == str(payload["data"]["fund_pay_sumamt"])
    [result] = told_his(h)
    assert result["kind"] == "rx_purchased" and result["detail"]["psn_part_amt"] == str(payload["data"]["psn_part_amt"])
    assert result["detail"]["lines"][0]["sumamt"] == "10.00"


async def test_a_repeated_msgid_is_the_same_event_answered_the_same(h: Harness, sim: Any) -> None:
    _, hi_rxno, _ = await uploaded_rx(h, sim)
    body = envelope("7102", review(hi_rxno), msgid="440100202401011200000000000042")
    r = receiver(h)
    first, before = await post(r, body), counted("7102", "duplicate")
    again = await post(r, body)
    assert again.body == first.body and again.outcome == "duplicate"
    assert counted("7102", "duplicate") == before + 1
    assert kept(h) == 1 and len(told_his(h)) == 1


async def test_an_unknown_hi_rxno_is_refused_counted_and_nothing_is_kept(h: Harness, sim: Any) -> None:
    await uploaded_rx(h, sim)
    before = counted("7102", "unknown_rx")
    reply = await post(receiver(h), envelope("7102", review("HX2099010199999999")))
    assert reply.status == 200 and reply.body["infcode"] == -1
    assert reply.body["err_msg"].startswith("[7102] input.data.hi_rxno: 医保处方编号不存在")
    assert counted("7102", "unknown_rx") == before + 1
    assert kept(h) == 0 and told_his(h) == []


async def test_a_forged_post_changes_nothing_and_is_counted(h: Harness, sim: Any) -> None:
    _, hi_rxno, _ = await uploaded_rx(h, sim)
    before = counted("-", "unauthenticated")
    reply = await post(receiver(h), envelope("7102", review(hi_rxno)), headers={"X-Yibao-Inbound-Token": "guess"})
    assert reply.status == 401 and reply.body["infcode"] == -1 and kept(h) == 0
    assert counted("-", "unauthenticated") == before + 1


async def test_pharmacists_names_and_certnos_never_reach_logs_his_or_the_record_view(
        h: Harness, sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    rxno, hi_rxno, _ = await uploaded_rx(h, sim)
    payload = review(hi_rxno)
    secrets = [payload["data"][k] for k in ("phar_name", "phar_certno", "rchk_phar_name", "rchk_phar_certno")]
    with caplog.at_level(logging.DEBUG):
        await post(receiver(h), envelope("7102", payload))
        await post(receiver(h), envelope("7102", {**payload, "data": {**payload["data"], "rx_chk_time": "x"}}))
    with h.db.connect() as conn:
        view = json.dumps(http.record_response(conn, "7101", rxno)[1], ensure_ascii=False)
    his = json.dumps(told_his(h), ensure_ascii=False)
    logs = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    for text in secrets:
        assert text not in view and text not in his and text not in logs


async def test_a_database_outage_is_answered_503_for_the_platform_to_send_again(h: Harness, sim: Any) -> None:
    async def down(fn: Any) -> Any:
        raise OSError("connection refused")

    reply = await post(receiver(h, db=down), envelope("7102", review("HX1")))
    assert reply.status == 503 and reply.body["infcode"] == -1 and reply.outcome == "unavailable"


async def test_an_unknown_hi_rxno_while_a_7101_answer_is_being_recorded_is_asked_for_again(
        h: Harness, sim: Any) -> None:
    rxno, _, _ = await uploaded_rx(h, sim)
    with h.db.begin() as conn:  # another prescription sent, its answer (and hi_rxno) not recorded yet
        conn.execute(update(upload_records).where(upload_records.c.record_key == rxno).values(status="sent"))
    reply = await post(receiver(h), envelope("7102", review("HX2099010199999998")))
    assert reply.status == 503 and reply.outcome == "not_yet" and reply.body["infcode"] == -1
    assert "send it again" in reply.body["err_msg"] and kept(h) == 0
