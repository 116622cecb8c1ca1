"""A charge line whose 2301 the platform refused because the stay is discharged (issue 11): registration asked
settlement first (``discharge_requested``), settlement did not confirm within ``discharge_wait`` because the 2301
was still on its way, and registration's 2402 got to the platform first. The line is not refused: it waits,
pending, for the stay's reopening (2405 → 2301 → 2402 again, the ``reopen_requested`` flow of late lines) and the
final settlement follows — whether registration's ``discharged`` reached settlement before the refusal or after it.
A 中途结算 whose 2303 the same 2402 overtook waits for registration's ``discharged`` likewise, then has the stay
reopened for it.

Registration's side is played by the harness (the platform's side on the in-process simulator, whose 2301 and 2303
refusals after a 2402 are worded as the catalog's ``stay_discharged`` says)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from yibao.chains.model import Wait
from yibao.core import clock
from yibao.envelope.catalog import Catalog

from unit.settlement.harness import Harness, Patient


async def _admitted_with_a_line_up(h: Harness) -> Patient:
    p = await h.inpatient()
    h.line(p, "L1", "100.00")
    await h.drain()
    assert h.platform_details(p) == {"L1": "uploaded"}
    return p


def _uploads(h: Harness, p: Patient) -> list[str]:
    return [status for infno, status, _ in h.journal(p) if infno == "2301"]


async def _reopened_for(h: Harness, p: Patient, request_id: str) -> None:
    """Registration's reopening: 2405, discharge_requested, 2402 naming the settlement request."""
    await h.cancel_discharge(p, his_request_id=request_id)
    await h.drain()
    h.fact(p, "discharge_requested", his_request_id=request_id)
    await h.drain()
    assert [f.his_request_id for f in h.facts(p, "ready_for_discharge")][-1] == request_id
    await h.discharge(p, his_request_id=request_id)
    await h.drain()


def _settled_once(h: Harness, p: Patient, request_id: str, total: str) -> None:
    [r] = h.results(p, "settled")
    assert r.his_request_id == request_id and r.split is not None and r.split.medfee_sumamt == Decimal(total)
    assert not h.results(p, "rejected"), "no line was ever refused, and HIS was never told so"
    assert set(h.lines(p).values()) == {"settled"}


async def test_a_2301_refused_because_registration_discharged_without_confirmation_reopens_the_stay(
        h: Harness) -> None:
    p = await _admitted_with_a_line_up(h)
    h.line(p, "L2", "30.00")
    h.fact(p, "discharge_requested", his_request_id="D1")

    async def registration_discharges_anyway() -> None:  # its discharge_wait passed while L2's 2301 was on its way
        await h.discharge(p, his_request_id="D1")
        h.fact(p, "request_closed", his_request_id="D1")

    h.client.meanwhile("2301", registration_discharges_anyway)
    await h.drain()
    assert _uploads(h, p) == ["ok", "rejected"], "L2's 2301 got to the platform after the 2402"
    st = h.state(p)
    assert h.lines(p)["L2"] == "pending" and not st.refused and "L2" in st.discharge_refused
    assert not h.results(p, "rejected"), "the line is not reported refused"
    h.settle(p, "S1", "130.00")  # the cashier's final settlement
    await h.drain()
    [asked] = h.facts(p, "reopen_requested")
    assert asked.his_request_id == "S1"
    assert "1 charge lines were refused (2301) because the stay was discharged (2402)" in (asked.reason or "")
    assert "2303" not in h.client.infnos()
    await _reopened_for(h, p, "S1")
    assert _uploads(h, p) == ["ok", "rejected", "ok"], "L2 went up once, after the 2405"
    _settled_once(h, p, "S1", "130.00")


async def test_a_2301_refused_before_the_discharge_reached_settlement_waits_for_it_then_reopens_the_stay(
        h: Harness) -> None:
    p = await _admitted_with_a_line_up(h)
    h.line(p, "L2", "30.00")
    h.fact(p, "discharge_requested", his_request_id="D1")
    # registration's 2402 gets to the platform first; its ``discharged`` is still on its way to settlement
    h.client.meanwhile("2301", lambda: h.discharge(p, fact=False))
    await h.drain()
    assert _uploads(h, p) == ["ok", "rejected"]
    assert h.lines(p)["L2"] == "pending" and not h.state(p).refused and not h.results(p, "rejected")
    decided = h.decide(p)
    assert isinstance(decided, Wait) and "registration's discharge" in decided.reason, decided
    # more lines and the cashier's settlement meanwhile: nothing is sent to a platform that would refuse it
    h.line(p, "L3", "20.00")
    h.settle(p, "S1", "150.00")
    await h.drain()
    assert _uploads(h, p) == ["ok", "rejected"], "no 2301 goes up while the platform holds the stay discharged"
    assert not h.facts(p, "reopen_requested") and not h.results(p, "rejected")
    h.fact(p, "discharged", endtime=clock.now(), his_request_id="D1")  # it arrives
    await h.drain()
    [asked] = h.facts(p, "reopen_requested")
    assert asked.his_request_id == "S1" and "refused (2301)" in (asked.reason or "")
    await _reopened_for(h, p, "S1")
    assert _uploads(h, p) == ["ok", "rejected", "ok"], "L2 and L3 went up together, once"
    assert h.platform_details(p) == {"L1": "settled", "L2": "settled", "L3": "settled"}
    _settled_once(h, p, "S1", "150.00")


async def test_a_2301_refused_for_a_discharged_stay_goes_up_if_the_discharge_is_cancelled_instead(
        h: Harness) -> None:
    p = await _admitted_with_a_line_up(h)
    h.line(p, "L2", "30.00")
    h.fact(p, "discharge_requested", his_request_id="D1")
    h.client.meanwhile("2301", lambda: h.discharge(p, fact=False))
    await h.drain()
    # HIS's 取消出院 (2405) got there before registration's discharged was read: the stay is in the ward
    await h.cancel_discharge(p, his_request_id="C1")
    await h.drain()
    assert _uploads(h, p) == ["ok", "rejected", "ok"] and h.lines(p)["L2"] == "uploaded"
    assert not h.results(p, "rejected")


async def test_a_2301_refusal_for_a_discharged_stay_stands_when_no_discharge_follows(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)  # the wait for registration's discharged is over at once
    p = await _admitted_with_a_line_up(h)
    h.line(p, "L2", "30.00")
    h.client.meanwhile("2301", lambda: h.discharge(p, fact=False))
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "details_rejected" and "no discharge (2402) of the stay followed" in (r.reason or "")
    assert h.state(p).refused.keys() == {"L2"} and h.state(p).platform_discharged_at is None


@pytest.mark.parametrize("province", [None, "fujian", "guangdong", "zhejiang"])
def test_the_catalog_tells_a_stay_discharged_already_from_a_stay_not_discharged_yet(province: str | None) -> None:
    catalog = Catalog.load(province)
    after = "[2301] order: fee details cannot be uploaded after discharge (2405 cancels the discharge)"  # simulator
    before = "[2303] order: discharge (2402) before the final settlement, or set mid_setl_flag=1"  # simulator
    assert catalog.says("stay_discharged", after) and not catalog.says("not_discharged", after)
    mid = "[2303] data.mid_setl_flag: 中途结算 only while admitted (not after discharge)"  # simulator
    assert catalog.says("stay_discharged", mid) and not catalog.says("not_discharged", mid)
    assert catalog.says("not_discharged", before) and not catalog.says("stay_discharged", before)
    assert catalog.says("stay_discharged", "患者已出院，不能上传费用明细")
    for other in ("患者未出院", "请先办理出院", "已撤销入院"):
        assert not catalog.says("stay_discharged", other), other


# --- a 中途结算 the discharge overtook on the platform -----------------------------------------------------------------


async def test_a_mid_settlement_refused_because_registrations_2402_got_there_first_waits_for_it_then_reopens_the_stay(
        h: Harness) -> None:
    p = await _admitted_with_a_line_up(h)
    h.fact(p, "discharge_requested", his_request_id="D1")
    # HIS asked the 中途结算 in the ward; registration's 2402 (its discharge_wait over) reaches the platform before
    # the 2303, and its ``discharged`` is still on its way to settlement
    h.client.meanwhile("2303", lambda: h.discharge(p, fact=False))
    h.settle(p, "M1", "100.00", mid="1")
    await h.drain()
    assert [s for infno, s, _ in h.journal(p) if infno == "2303"] == ["rejected"]
    assert not h.results(p, "rejected"), "HIS is not told the 中途结算 failed"
    decided = h.decide(p)
    assert isinstance(decided, Wait) and "registration's discharge" in decided.reason, decided
    h.fact(p, "discharged", endtime=clock.now(), his_request_id="D1")  # it arrives
    await h.drain()
    [asked] = h.facts(p, "reopen_requested")
    assert asked.his_request_id == "M1" and "asked before the discharge" in (asked.reason or "")
    await h.cancel_discharge(p, his_request_id="M1")  # registration: 2405
    h.fact(p, "discharge_requested", his_request_id="M1")  # and 2402 again once the 中途结算 is made
    await h.drain()
    [r] = h.results(p, "settled")
    assert (r.his_request_id, r.mid_setl_flag) == ("M1", "1") and not h.results(p, "rejected")


async def test_a_mid_settlement_refused_for_a_discharged_stay_is_rejected_when_no_discharge_follows(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)  # the wait for registration's discharged is over at once
    p = await _admitted_with_a_line_up(h)
    h.client.meanwhile("2303", lambda: h.discharge(p, fact=False))
    h.settle(p, "M1", "100.00", mid="1")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "out_of_order" and "registration reported no discharge" in (r.reason or "")


async def test_a_mid_settlement_refused_for_a_discharge_settlement_already_knows_of_reopens_the_stay(
        h: Harness) -> None:
    p = await _admitted_with_a_line_up(h)
    h.fact(p, "discharge_requested", his_request_id="D1")
    h.client.meanwhile("2303", lambda: h.discharge(p, his_request_id="D1"))  # 2402 and its discharged, together
    h.settle(p, "M1", "100.00", mid="1")
    await h.drain()
    [asked] = h.facts(p, "reopen_requested")
    assert asked.his_request_id == "M1"
    await h.cancel_discharge(p, his_request_id="M1")
    h.fact(p, "discharge_requested", his_request_id="M1")
    await h.drain()
    [r] = h.results(p, "settled")
    assert (r.his_request_id, r.mid_setl_flag) == ("M1", "1") and not h.results(p, "rejected")
