"""A visit's charge lines (kept in memory, written back by the store) and what each incoming message does to a visit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from yibao.core.errors import InputError
from yibao.core.results import HisResult, VisitFact
from yibao.settlement.absorb import absorb_his_event, absorb_visit_fact, route
from yibao.settlement.lines import FeeLines, LineBook
from yibao.settlement.store import SettlementStore, load_lines
from unit.settlement.harness import Harness, Patient


def _p(kind: str = "outpatient") -> Patient:
    return Patient(None, "V1", kind)


def test_a_known_line_is_replaced_only_while_pending(h: Harness) -> None:
    p = _p()
    first = h.line(p, "F1", "10.00", send=False)
    changed = h.line(p, "F1", "12.00", send=False)
    lines = FeeLines("V1")
    assert lines.store(first) == "added"
    assert lines.store(first) == "unchanged"
    assert lines.store(changed, frozen=["F1"]) == "kept", "part of a batch being uploaded"
    assert lines.store(changed) == "updated"
    lines.set_status(["F1"], "uploaded")
    assert lines.store(first) == "kept", "the HIS corrects an uploaded line with a reversal"
    [line] = lines.all()
    assert line.amount == Decimal("12.00") and line.seq == 1


def test_the_store_writes_what_changed_and_reads_it_back(sqlite_engine: Engine, h: Harness) -> None:
    p = _p()
    lines = FeeLines("V1")
    lines.store(h.line(p, "F1", "10.00", send=False))
    lines.store(h.line(p, "F2", "20.00", send=False))
    with sqlite_engine.begin() as conn:
        SettlementStore._write_lines(conn, "V1", lines)
    assert not lines.added and not lines.changed
    lines.set_status(["F2"], "uploaded", upload_msgid="M1")
    assert lines.changed == {"F2"}
    with sqlite_engine.begin() as conn:
        SettlementStore._write_lines(conn, "V1", lines)
        stored = {x.feedetl_sn: (x.status, x.upload_msgid) for x in load_lines(conn, "V1")}
    assert stored == {"F1": ("pending", None), "F2": ("uploaded", "M1")}


def _book(*events: object, uploaded: tuple[str, ...] = ()) -> LineBook:
    lines = FeeLines("V1")
    for e in events:
        lines.store(e)  # type: ignore[arg-type]
    lines.set_status(uploaded, "uploaded")
    return LineBook(lines.all())


def test_reversals_are_netted_into_originals_that_are_not_on_the_platform(h: Harness) -> None:
    p = _p()
    o = h.line(p, "F1", "30.00", cnt="3", send=False)
    unknown = h.line(p, "F9", "5.00", send=False)
    book = _book(o, h.reversal(p, "R1", o, cnt="1", send=False),
                 h.reversal(p, "R9", unknown, send=False))  # R9's original has not arrived yet
    assert [(r.feedetl_sn, o.feedetl_sn if o else None) for r, o in book.nettable()] == [("R1", "F1")]
    book.merged["R1"] = "F1"
    assert book.net(book.by_sn["F1"]) == (Decimal("2.0000"), Decimal("20.00"))
    assert [x.feedetl_sn for x in book.uploadable("outpatient")] == ["F1"]


def test_an_inpatient_reversal_of_an_uploaded_line_is_uploadable_an_outpatient_one_is_not(h: Harness) -> None:
    for kind in ("inpatient", "outpatient"):
        p = Patient(None, f"V-{kind}", kind)
        o = h.line(p, "F1", "30.00", send=False)
        book = _book(o, h.reversal(p, "R1", o, cnt="1", send=False), uploaded=("F1",))
        assert [x.feedetl_sn for x in book.uploadable(kind)] == (["R1"] if kind == "inpatient" else [])
        assert [x.feedetl_sn for x in book.reversals_of_uploaded()] == ["R1"]


def test_events_registration_owns_are_skipped(h: Harness) -> None:
    from yibao.hisevents.models import AdmissionChanged

    event = AdmissionChanged(**h._base(_p("inpatient")), adm_bed="03-01")
    assert absorb_his_event(event.to_json()) is None


def test_discharges_and_cancellations_keep_their_place_in_his_order_until_registration_asks(make_h) -> None:  # type: ignore[no-untyped-def]
    from yibao.hisevents.models import Cancellation, Discharge

    h = make_h(order_window_s=600.0)  # what absorbing records, before the chain answers anything
    p = _p("inpatient")
    discharge = Discharge(**h._base(p), endtime=h._base(p)["occurred_at"], dscg_way="1")
    cancel = Cancellation(**h._base(p), target="discharge", his_request_id="C1")
    h.his(discharge)
    h.his(cancel)
    h.his(cancel.model_copy(update={"event_id": "another-event-of-the-same-row"}))
    requests = h.state(p).requests
    assert [(r.kind, r.id, r.phase) for r in requests] == [("discharge", discharge.event_id, "expected"),
                                                          ("unwind", "C1", "expected")]
    h.fact(p, "discharge_requested", his_request_id=discharge.event_id)
    h.fact(p, "request_closed", his_request_id="C1", reason="rejected [out_of_order]: not discharged")
    assert [(r.kind, r.phase) for r in h.state(p).requests] == [("discharge", "waiting"), ("unwind", "closed")]


def test_a_request_registration_finished_before_its_his_event_arrived_holds_no_place(h: Harness) -> None:
    from yibao.hisevents.models import Cancellation

    p = _p("outpatient")
    h.fact(p, "request_closed", his_request_id="C9", reason="rejected [cancelled]: the visit was cancelled")
    h.his(Cancellation(**h._base(p), target="registration", his_request_id="C9"))  # the his_events topic lagged
    assert h.state(p).requests == []


def test_unreadable_input_is_an_input_error_naming_the_problem() -> None:
    with pytest.raises(InputError):
        absorb_his_event(b"{not json")
    with pytest.raises(InputError) as caught:
        absorb_visit_fact(b'{"message_id": "m1", "his_visit_id": "V1", "visit_kind": "outpatient", "kind": "nope"}')
    assert "kind" in str(caught.value)
    assert route("settlement_facts", b"{}") is None


def test_inbox_keys_keep_his_events_and_visit_facts_apart(h: Harness) -> None:
    line = h.line(_p(), "F1", "10.00", send=False)
    fact = VisitFact(message_id=line.event_id, his_visit_id="V1", visit_kind="outpatient", kind="visit_info_uploaded")
    assert absorb_his_event(line.to_json()).message_id != absorb_visit_fact(fact.to_json()).message_id


async def test_visit_facts_set_what_the_chain_decides_from(h: Harness) -> None:
    p = await h.inpatient()
    st = h.state(p)
    assert st.registered and st.person.mdtrt_id == p.mdtrt_id and st.person.insuplc_admdvs
    await h.discharge(p)
    assert h.state(p).discharged
    await h.cancel_discharge(p)
    assert not h.state(p).discharged
    h.fact(p, "admission_cancelled")
    assert h.state(p).cancelled == "取消入院"


async def test_no_personal_data_in_what_his_gets_back(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    await h.drain()
    for result in h.results(p):
        assert isinstance(result, HisResult)
        assert p.person.certno not in result.to_json().decode()
    [request] = h.state(p).requests
    assert request.presettle and not {"psn_name", "certno"} & set(request.presettle), "kept: amounts, not the person"


def test_a_state_written_by_an_older_version_still_loads() -> None:
    from yibao.settlement.state import SettlementState

    old = SettlementState(kind="outpatient").model_dump(mode="json")
    old["person"]["card_sn"] = None  # a field an earlier version kept
    old["retired_field"] = 1
    assert SettlementState.model_validate(old).kind == "outpatient"
