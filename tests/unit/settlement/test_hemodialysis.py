"""血透: an inpatient account's pre-settlement sheet settled at an outpatient visit, the result backfilled to
the account; the outpatient side keeps nothing of its own."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import update

from yibao.core import clock
from yibao.core.db.schema import chain_visits
from yibao.settlement.hemodialysis import sheet_of
from unit.settlement import his_events as ev
from unit.settlement.harness import Harness, Patient


def _account(h: Harness, key: str = "ZY0001", *amounts: str) -> Patient:
    account = Patient(None, key, "inpatient")
    for n, amount in enumerate(amounts, start=1):
        h.line(account, f"HD{n}", amount)
    return account


def test_the_request_names_the_inpatient_account_in_sheet_of_visit_id() -> None:
    request = ev.settle("MZ1", "outpatient", "S1", "10.00", sheet_of="ZY0001")
    assert sheet_of(request) == "ZY0001"
    assert sheet_of(ev.settle("MZ1", "outpatient", "S1", "10.00")) is None


def test_the_deprecated_request_id_convention_is_still_understood() -> None:
    assert sheet_of(ev.settle("MZ1", "outpatient", "hd:ZY0001:3", "10.00")) == "ZY0001"
    assert sheet_of("hd:ZY0001:3") == "ZY0001"
    assert sheet_of("hd:ZY:0001:3") == "ZY:0001"
    assert sheet_of("S123") is None and sheet_of("hd:ZY0001") is None


async def test_a_sheet_is_settled_at_outpatient_and_backfilled_to_the_inpatient_account(h: Harness) -> None:
    account = _account(h, "ZY0001", "300.00", "120.00")
    h.fact(account, "registered", self_pay=True)  # the account itself is never admitted with 医保
    p = await h.outpatient()
    h.settle(p, "HD-ZY0001-1", "420.00", sheet_of="ZY0001")
    await h.drain()
    assert h.client.infnos()[-3:] == ["2204", "2206", "2207"]
    [settled] = h.results(account.key, "settled")
    assert (settled.visit_kind, settled.mdtrt_id, settled.clr_type) == ("inpatient", p.mdtrt_id, "11")
    assert settled.split is not None and settled.split.medfee_sumamt == Decimal("420.00")
    assert settled.detail == {"hemodialysis": {"outpatient_visit_id": p.key, "inpatient_visit_id": "ZY0001",
                                               "request_id": "HD-ZY0001-1"}}
    assert ("ZY0001", "ZY0001", "settled") in h.result_keys(), "keyed by the inpatient account"
    assert h.results(p, "settled") == [], "one settled result per settlement, where it is cleared"
    assert h.lines(account) == {"HD1": "withdrawn", "HD2": "withdrawn"}
    assert h.lines(p) == {"HD1": "settled", "HD2": "settled"}
    assert len(h.facts(p, "settled")) == 1, "registration still guards the outpatient visit's 退号"


async def test_refunding_a_sheet_gives_its_lines_back_to_the_account(h: Harness) -> None:
    account = _account(h, "ZY0002", "300.00")
    p = await h.outpatient()
    h.settle(p, "HD-ZY0002-1", "300.00", sheet_of="ZY0002")
    await h.drain()
    h.refund(p, "R1", of="HD-ZY0002-1")
    await h.drain()
    [refunded] = h.results(account.key, "refunded")
    assert refunded.split is not None and refunded.split.medfee_sumamt == Decimal("-300.00")
    assert h.lines(account) == {"HD1": "pending"}, "ready for the next sheet"
    assert h.lines(p) == {"HD1": "withdrawn"}
    p2 = await h.outpatient()
    h.settle(p2, "hd:ZY0002:2", "300.00")  # the deprecated convention still works
    await h.drain()
    assert len(h.results(account.key, "settled")) == 2


async def test_sheet_lines_still_arriving_are_claimed_when_the_request_looks_again(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(sheet_poll_s=5)
    account = _account(h, "ZY0003", "100.00")
    p = await h.outpatient()
    late = h.line(account, "HD2", "50.00", send=False)  # on the sheet, still on its way
    h.settle(p, "HD-ZY0003-1", "150.00", sheet_of="ZY0003")
    await h.drain()
    assert h.results(account.key, "settled") == []
    h.his(late)
    with h.db.begin() as conn:  # the poll interval has passed
        conn.execute(update(chain_visits).where(chain_visits.c.visit_key == p.key)
                     .values(next_attempt_at=clock.now()))
    await h.drain()
    assert len(h.results(account.key, "settled")) == 1


async def test_an_account_admitted_with_insurance_is_not_settled_as_a_sheet(h: Harness) -> None:
    account = await h.inpatient(key="ZY0004")
    h.line(account, "L1", "80.00")
    p = await h.outpatient()
    h.settle(p, "HD-ZY0004-1", "80.00", sheet_of="ZY0004")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "invalid_request" and "2303/2304" in (r.reason or "")
    assert h.lines(account) == {"L1": "uploaded"}


async def test_unwinding_the_outpatient_visit_gives_unsettled_sheet_lines_back(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(lines_wait_s=0.0, prerequisite_wait_s=0.0)  # the cancellation stops waiting for a settlement
    account = _account(h, "ZY0005", "100.00")
    p = await h.outpatient()
    # wrong total: the sheet is claimed and uploaded, then rejected
    h.settle(p, "HD-ZY0005-1", "999.00", sheet_of="ZY0005")
    await h.drain()
    assert h.results(p, "rejected")[0].reason_code == "lines_missing"
    assert h.lines(p) == {"HD1": "uploaded"}
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")
    await h.drain()
    assert h.lines(account) == {"HD1": "pending"} and h.lines(p) == {"HD1": "withdrawn"}
    assert len(h.facts(p, "unwound")) == 1
