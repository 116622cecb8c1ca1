"""The mobile-pay catalog is data read by the national catalog's loader, and every call the chain makes is one it
can resolve: 6301 for what changes the platform, nothing reversible (mobile pay has no 2601)."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

import pytest

from yibao.core import clock
from yibao.envelope.catalog.loader import load_base
from yibao.envelope.mobilepay.catalog import DATA_DIR, INFNOS, load_catalog
from yibao.envelope.mobilepay.models import check_input
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.state import Line, MobilePayState, Order, Patient, Refund
from yibao.mobilepay.steps import pay, refund, revoke, upload

NOW = clock.now()


def test_the_mobile_pay_catalog_is_read_by_the_national_loader() -> None:
    from yibao.envelope.mobilepay.wechat import WECHAT_INFNOS

    data = load_base(DATA_DIR)
    assert set(data.transactions) == set(INFNOS) | set(WECHAT_INFNOS)
    catalog = load_catalog()
    assert {i: catalog.transaction(i).resolution for i in (*INFNOS, *WECHAT_INFNOS)} == {
        "6201": "retry", "6202": "query", "6203": "query", "6301": "retry", "6401": "query",
        "8801": "retry", "8802": "query", "8803": "retry", "8804": "query", "8805": "retry", "8806": "retry"}
    assert not any(catalog.transaction(i).reversible for i in catalog.infnos)
    assert {catalog.transaction(i).lost_answer.query for i in ("6202", "6203", "6401")} == {"6301"}
    assert (catalog.transaction("8802").lost_answer.query, catalog.transaction("8804").lost_answer.query) == (
        "8803", "8805")


@pytest.mark.parametrize("name, text", [
    ("repeat_upload", "medOrgOrd: already uploaded (repeat upload)"),
    ("not_payable", "payOrdId: the order is 已结算, not payable"),
    ("not_revocable", "payOrdId: the order is 已结算; only an unpaid upload can be revoked"),
    ("not_found", "payOrdId: no such order"),
])
def test_the_platforms_wording_is_data(name: str, text: str) -> None:
    assert load_catalog().says(name, text)


def _state() -> tuple[MobilePayState, Order]:
    st = MobilePayState(patient=Patient(his_patient_id="P1", psn_no="PSN1", insutype="310", insuplc_admdvs="440100",
                                        registered=True, med_type="11", certno="440101199001011234",
                                        psn_name="张三", begntime=NOW))
    st.lines["L1"] = Line(feedetl_sn="L1", seq=1, amount=Decimal("12.30"), cnt=Decimal("1"), pric=Decimal("12.30"),
                          med_list_codg="XA01", medins_list_codg="HXA01", fee_ocur_time=NOW, status="ordered",
                          order_id="MP1")
    order = Order(id="MP1", channel="app", channel_order_id="C1", his_patient_id="P1", message_id="m",
                  sns=["L1"], total=Decimal("12.30"), pay_auth_no="AUTH", created_at=NOW, updated_at=NOW,
                  phase="new", pay_ord_id="ORD1", pay_token="PT1", pay_requested=True)
    order.refunds.append(Refund(id="MR1", request_id="R1", channel="app", message_id="r", refd_type="ALL",
                                cash=Decimal("2.30"), acct=Decimal("0"), fund=Decimal("10.00"), asked_at=NOW,
                                phase="requested"))
    st.orders.append(order)
    return st, order


def _calls():  # type: ignore[no-untyped-def]
    cfg = ChainConfig()
    st, order = _state()
    return [upload.upload_call(cfg, st, order, repeat_upload=lambda t: False),
            pay.pay_call(cfg, st, order, not_payable=lambda t: False),
            pay.confirm_call(cfg, st, order, not_found=lambda t: False),
            revoke.revoke_call(cfg, st, order, not_revocable=lambda t: False),
            refund.refund_call(cfg, st, order, order.refunds[0])]


@pytest.mark.parametrize("call", _calls(), ids=lambda c: c.infno)
def test_every_call_passes_its_model_and_is_one_the_catalog_resolves(call) -> None:  # type: ignore[no-untyped-def]
    catalog = load_catalog()
    data = dict(call.input["data"])
    if call.infno == "6202":
        data["orgBizSer"] = "MP-MSGID"
    check_input(call.infno, data)
    spec = catalog.transaction(call.infno)
    if spec.resolution == "query":
        assert call.lookup is not None and call.lookup.infno == spec.lost_answer.query
        check_input(call.lookup.infno, call.lookup.input["data"])
    assert len(call.name) <= 64


def test_the_6202_lookup_adopts_only_a_payment() -> None:
    cfg = ChainConfig()
    st, order = _state()
    found = pay.pay_call(cfg, st, order, not_payable=lambda t: False).lookup.found
    assert found({"payOrdId": "ORD1", "ordStas": "1"}, "M") is None
    assert found({"payOrdId": "ORD1", "ordStas": "4", "feeSumamt": "12.30"}, "M") is not None
    assert found({"payOrdId": "ORD1", "ordStas": "2"}, "M") is not None


def test_the_6203_lookup_adopts_our_refund_only() -> None:
    cfg = ChainConfig()
    st, order = _state()
    found = refund.refund_call(cfg, st, order, order.refunds[0]).lookup.found
    assert found({"payOrdId": "ORD1", "ordStas": "4", "refdList": []}, "M") is None
    assert found({"payOrdId": "ORD1", "ordStas": "4", "refdList": [{"appRefdSn": "OTHER", "refStatus": "SUCC"}]},
                 "M") is None
    assert found({"payOrdId": "ORD1", "ordStas": "9", "refdList": [{"appRefdSn": "MR1", "refStatus": "SUCC",
                                                                     "hiDocSn": "S9"}]}, "M")["hiDocSn"] == "S9"


def test_the_6401_lookup_treats_a_payment_as_found() -> None:
    cfg = ChainConfig()
    st, order = _state()
    found = revoke.revoke_call(cfg, st, order, not_revocable=lambda t: False).lookup.found
    assert found({"payOrdId": "ORD1", "ordStas": "1"}, "M") is None
    assert found({"payOrdId": "ORD1", "ordStas": "7"}, "M") is not None
    assert found({"payOrdId": "ORD1", "ordStas": "4"}, "M") is not None


def test_the_upload_carries_the_visit_and_its_lines() -> None:
    cfg = ChainConfig(org_codg="H44010600001")
    st, order = _state()
    data = upload.upload_data(cfg, st, order)
    assert data["medOrgOrd"] == "MP1-1" and data["medfeeSumamt"] == Decimal("12.30")
    assert [d["feedetlSn"] for d in data["feedetailList"]] == ["L1"] and data["insuCode"] == "440100"
    _ = _dt
