"""A day of mobile-pay visits through real processes (the simulator, registration and mobile pay on the real Kafka
and PostgreSQL): paid, confirmed then paid, refunded, revoked when HIS reverses a fee, abandoned, withdrawn, and
1.0 orders beside 2.0 — every HIS result matches the platform's ledger, nothing is paid twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from e2e.mobilepay.mobile_rig import MobileRig, rig_on_stack
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MobileRig]:
    yield from rig_on_stack(stack, tmp_path_factory.mktemp("mobile-day"),
                            extra_env={"YIBAO_MOBILEPAY_ORDER_TTL_S": "4"})


async def test_a_day_of_mobile_pay_visits(rig: MobileRig) -> None:
    paid, confirmed, refunded, partial, reversed_, abandoned, withdrawn, legacy = await rig.visits(
        ("30.00", "12.50"), ("18.00",), ("45.00",), ("80.00", "20.00"), ("10.00", "6.00"), ("9.00",), ("7.00",),
        ("22.00",))
    for v in (paid, confirmed, refunded, partial, reversed_, abandoned, withdrawn, legacy):
        await rig.pending(v)

    # paid in one step (a kiosk-like channel), and the same channel order sent twice: one platform order
    first = await rig.order(paid, "K-1", who="kiosk")
    again = await rig.order(paid, "K-1", who="kiosk")
    assert (first.status_code, again.status_code) == (201, 200), first.text
    assert first.json()["order"]["order_id"] == again.json()["order"]["order_id"]
    # uploaded, then the patient confirms
    c = (await rig.order(confirmed, "A-2", pay_now=False)).json()["order"]
    await rig.until(c["order_id"], "awaiting_payment")
    assert (await rig.api("POST", f"/mobilepay/orders/{c['order_id']}/pay", {"acct_used_flag": "1"})).status_code == 202
    # paid, then refunded all, and another paid then refunded cash then insurance
    r = (await rig.order(refunded, "A-3")).json()["order"]
    p = (await rig.order(partial, "A-4")).json()["order"]
    # HIS reverses a fee of an uploaded order: revoked, and the rest paid by a new order
    x = (await rig.order(reversed_, "A-5", pay_now=False)).json()["order"]
    await rig.until(x["order_id"], "awaiting_payment")
    await rig.his(rig.reversal(reversed_, "R2", "L2"))
    # abandoned: never confirmed (order_ttl_s 4) → revoked; withdrawn by the channel → revoked
    a = (await rig.order(abandoned, "A-6", pay_now=False)).json()["order"]
    w = (await rig.order(withdrawn, "A-7", pay_now=False)).json()["order"]
    await rig.until(w["order_id"], "awaiting_payment")
    assert (await rig.api("POST", f"/mobilepay/orders/{w['order_id']}/cancel", {})).status_code == 202
    # a 1.0 channel beside the 2.0 ones
    legacy_order = (await rig.order(legacy, "L-8", who="legacy")).json()["order"]
    assert legacy_order["version"] == "1.0"

    for order_id, who in ((first.json()["order"]["order_id"], "kiosk"), (c["order_id"], "app"),
                          (r["order_id"], "app"), (p["order_id"], "app"), (legacy_order["order_id"], "legacy")):
        await rig.until(order_id, "paid", who=who)
    await rig.until(x["order_id"], "cancelled")
    await rig.until(a["order_id"], "cancelled", timeout=60)
    await rig.until(w["order_id"], "cancelled")

    rest = (await rig.order(reversed_, "A-5b")).json()["order"]
    assert rest["lines"] == ["L1"] and rest["total"] == "10.00"
    await rig.until(rest["order_id"], "paid")

    assert (await rig.api("POST", f"/mobilepay/orders/{r['order_id']}/refunds",
                          {"refund_request_id": "RF-3", "refd_type": "ALL"})).status_code == 202
    assert (await rig.api("POST", f"/mobilepay/orders/{p['order_id']}/refunds",
                          {"refund_request_id": "RF-4c", "refd_type": "CASH"})).status_code == 202
    await rig.until(p["order_id"], "paid", check=lambda o: o["refunds"] and o["refunds"][0]["status"] == "succeeded")
    assert (await rig.api("POST", f"/mobilepay/orders/{p['order_id']}/refunds",
                          {"refund_request_id": "RF-4h", "refd_type": "HI"}, who="window")).status_code == 202
    await rig.until(r["order_id"], "paid", check=lambda o: o["refunds"][0]["status"] == "succeeded")
    await rig.until(p["order_id"], "paid", check=lambda o: [x["status"] for x in o["refunds"]] == ["succeeded"] * 2)

    results = await rig.results(until=lambda rs: sum(x.kind == "settled" for x in rs) >= 6
                                and sum(x.kind == "refunded" for x in rs) >= 3)
    problems = rig.audit(results)
    assert not problems, "\n".join(problems) + rig.explain()
    channels = {(x.detail or {}).get("channel") for x in results if x.kind == "settled"}
    assert channels == {"mobilepay-2.0", "mobilepay-1.0"}
    platform = rig.orders()
    statuses = sorted(o["status"] for o in platform.values())
    assert statuses.count("4") == 4 and statuses.count("9") == 2 and statuses.count("7") == 3, statuses
    await asyncio.sleep(0)


async def test_wechat_channel_orders_pay_their_cash_part_in_wechat(rig: MobileRig) -> None:
    mixed, cash_only = await rig.visits(("80.00", "45.00"), ("33.00",))
    for v in (mixed, cash_only):
        await rig.pending(v, who="wechat")
    r1 = await rig.order(mixed, "WX-1", who="wechat")
    r2 = await rig.order(cash_only, "WX-2", who="wechat", pay_type="self_pay", pay_auth_no=None)
    assert r1.status_code in (200, 201, 202) and r2.status_code in (200, 201, 202), (r1.text, r2.text, rig.explain())
    m, c = r1.json()["order"], r2.json()["order"]
    m = await rig.until(m["order_id"], "paid", who="wechat")
    c = await rig.until(c["order_id"], "paid", who="wechat")
    assert m["wechat"]["mix_pay_type"] in ("CASH_AND_INSURANCE", "INSURANCE_ONLY") and m["wechat"]["status"] == "paid"
    assert c["wechat"]["mix_pay_type"] == "CASH_ONLY" and c["pay_ord_id"] is None
    refund = await rig.api("POST", f"/mobilepay/orders/{m['order_id']}/refunds",
                           {"refund_request_id": "WX-R1", "refd_type": "ALL"}, who="wechat")
    assert refund.status_code == 202, refund.text
    await rig.until(m["order_id"], "paid", who="wechat", check=lambda o: o["refunds"][0]["status"] == "succeeded")
    wechat = rig.bridge.admin("wechat")
    assert {o["out_trade_no"] for o in wechat["orders"]} >= {m["wechat"]["out_trade_no"], c["wechat"]["out_trade_no"]}
    assert all(n["acknowledged"] for n in wechat["notifications"] if n["out_trade_no"] in (
        m["wechat"]["out_trade_no"], c["wechat"]["out_trade_no"]))
    if m["wechat"]["mix_pay_type"] == "CASH_AND_INSURANCE":
        assert any(r["out_trade_no"] == m["wechat"]["out_trade_no"] for r in wechat["refunds"])
    results = await rig.results(until=lambda rs: any(r.his_visit_id == mixed.key and r.kind == "refunded"
                                                     for r in rs))
    problems = rig.audit(results)
    assert not problems, "\n".join(problems) + rig.explain()


async def test_patient_identity_is_checked_against_1101_and_the_admdvs_dictionary(rig: MobileRig) -> None:
    from yibao.mobilepay.identity import load_rules

    rules = load_rules()
    person = rig.new_visit().person
    fitting = rules.suggest(person.insuplc_admdvs)
    wrong = "out_of_province" if fitting != "out_of_province" else "local"
    ok = await rig.api("POST", "/mobilepay/identity", {"his_patient_id": "PAT-ID-1", "settle_type": fitting,
                                                        "mdtrt_cert_no": person.certno}, who="window")
    assert ok.status_code == 200 and ok.json()["verified"] is True, ok.text
    assert ok.json()["insuplc_admdvs"] == person.insuplc_admdvs and ok.json()["insuplc_name"]
    refused = await rig.api("POST", "/mobilepay/identity", {"his_patient_id": "PAT-ID-1", "settle_type": wrong,
                                                             "mdtrt_cert_no": person.certno}, who="window")
    assert refused.status_code == 200 and refused.json()["verified"] is False
    assert refused.json()["suggested"] == fitting and person.certno not in refused.text
    unknown = await rig.api("POST", "/mobilepay/identity", {"his_patient_id": "PAT-ID-2", "settle_type": "local",
                                                             "mdtrt_cert_no": "110101190001010000"}, who="window")
    assert unknown.status_code == 200 and unknown.json()["reason_code"] == "not_insured", unknown.text
    bad = await rig.api("POST", "/mobilepay/identity", {"his_patient_id": "PAT-ID-1", "settle_type": "local"},
                        who="window")
    assert bad.status_code == 400 and "mdtrt_cert_no" in bad.text
    tree = await rig.api("GET", "/mobilepay/admdvs", params={"parent": "440000"}, who="window")
    assert tree.status_code == 200 and {"440100", "449900"} <= {i["code"] for i in tree.json()["items"]}
    assert (await rig.api("GET", "/mobilepay/admdvs", params={"parent": "44"}, who="window")).status_code == 400
    denied = await rig.api("POST", "/mobilepay/identity", {"his_patient_id": "PAT-ID-1", "settle_type": "self_pay"},
                           who="kiosk")
    assert denied.status_code == 403


async def test_local_insurance_designated_or_not_is_decided_by_5302_through_the_simulator(rig: MobileRig) -> None:
    """本地医保 定点/未定点: the platform's 定点 records (5302, the simulator's counter side) decide; a patient who
    chose the other one is refused, naming the choice."""
    from yibao.core import clock
    from yibao.envelope.client import NationalClient
    from yibao.envelope.settings import PlatformSettings

    local = []
    while len(local) < 2:  # two patients insured here (本地医保)
        person = rig.new_visit().person
        if person.insuplc_admdvs[:4] == "4401":
            local.append(person)
    designated, other = local
    hospital = PlatformSettings().fixmedins_code  # the worker's (the rig leaves the default)
    counter = NationalClient(PlatformSettings(base_url=rig.bridge.sim_url, retry_backoff_s=0.05), engine=rig.db,
                             service="test-counter")
    try:
        await counter.call("2505", {"data": {  # the counter files this hospital as the first patient's 定点
            "psn_no": designated.psn_no, "biz_appy_type": "01", "fix_srt_no": "1", "fixmedins_code": hospital,
            "fixmedins_name": "测试医院", "begndate": clock.format_date(clock.now().date())}},
            insuplc_admdvs=designated.insuplc_admdvs)
    finally:
        await counter.aclose()

    async def check(person, settle_type: str) -> dict:  # type: ignore[no-untyped-def]
        answer = await rig.api("POST", "/mobilepay/identity", {"his_patient_id": "PAT-FIX", "settle_type": settle_type,
                                                                "mdtrt_cert_no": person.certno}, who="window")
        assert answer.status_code == 200, answer.text
        assert person.certno not in answer.text and person.psn_no not in answer.text
        return answer.json()

    assert (await check(designated, "local_designated"))["verified"] is True
    wrong = await check(designated, "local_undesignated")
    assert wrong["verified"] is False and wrong["reason_code"] == "designation_differs", wrong
    assert "广州医保（未定点）" in wrong["reason"] and wrong["suggested"] == "local_designated"
    assert (await check(other, "local_undesignated"))["verified"] is True
    refused = await check(other, "local_designated")
    assert refused["reason_code"] == "designation_differs" and "广州医保（定点）" in refused["reason"]
    assert refused["suggested"] == "local_undesignated"
    decided = await check(other, "local")
    assert decided["verified"] is True and decided["designation"] == "undesignated"
