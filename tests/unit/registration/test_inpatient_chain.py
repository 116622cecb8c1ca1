"""The inpatient chain run by the real engine against a stand-in platform (SQLite): 1101 → 2401 → 2403 → 2402,
and the rollback order 2405 → (settlement: 2302) → 2404, each step asked of settlement first."""

from __future__ import annotations

from sqlalchemy import Engine

from unit.registration.registration_support import Events, FakePlatform, Harness, config, diagnosis
from yibao.envelope.errors import UnknownOutcome


def _inpatient() -> Events:
    return Events("I1")


async def _admitted(h: Harness, ev: Events) -> None:
    h.absorb(ev.admission())
    await h.run()


async def test_an_admission_runs_1101_then_2401_and_tells_his_and_settlement(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    await _admitted(h, _inpatient())
    assert h.platform.infnos() == ["1101", "2401"]
    assert h.result_kinds() == ["admitted"]
    assert h.results()[0]["mdtrt_id"] == "M00001"
    assert h.fact_kinds() == ["registered", "admitted"]
    assert h.facts("admitted")[0]["ipt_otp_no"] == "ZYI1"
    body = h.platform.inputs["2401"][0]
    assert body["mdtrtinfo"]["dscg_maindiag_code"] == "I63.900"  # derived from the main admission diagnosis
    assert body["mdtrtinfo"]["adm_diag_dscr"] == "脑梗死"


async def test_a_2401_done_but_unheard_is_adopted_from_5303(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2401"] = ["commit_then_lose"]
    h = Harness(sqlite_engine, platform)
    await _admitted(h, _inpatient())
    assert platform.infnos() == ["1101", "2401", "5303"]
    assert len(platform.registrations("inpatient")) == 1
    assert h.result_kinds() == ["admitted"]


async def test_an_admission_change_sends_2403_with_the_whole_admission(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.admission_changed(adm_bed="05-12", change_reason="换床"))
    await h.run()
    body = h.platform.inputs["2403"][0]
    assert body["adminfo"]["adm_bed"] == "05-12" and body["adminfo"]["mdtrt_id"] == "M00001"
    assert body["adminfo"]["adm_dept_codg"] == "0403"  # unchanged fields are sent too
    assert h.result_kinds()[-1] == "admission_changed"
    h.absorb(ev.admission_changed(chfpdr_name="医生丙"))
    await h.run()
    assert h.platform.inputs["2403"][1]["adminfo"]["adm_bed"] == "05-12"  # the earlier change is kept


async def test_a_discharge_sends_2402_and_tells_settlement_the_endtime(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    discharge = ev.discharge()
    h.absorb(discharge)
    await h.run()
    assert h.platform.infnos()[-1] == "2401"  # not yet: settlement uploads the stay's lines first
    [asked] = h.facts("discharge_requested")
    assert asked["his_request_id"] == discharge.event_id and asked["occurred_at"].startswith("2026-03-02T09:02")
    await h.run_with_settlement_ready()
    assert h.platform.infnos()[-1] == "2402"
    assert h.result_kinds()[-1] == "discharged"
    assert h.facts("discharged")[0]["endtime"].startswith(discharge.endtime.strftime("%Y-%m-%dT%H:%M"))
    body = h.platform.inputs["2402"][0]
    assert body["dscginfo"]["insutype"] == "310" and body["diseinfo"][0]["diag_code"] == "I63.900"


async def test_a_2402_done_but_unheard_is_adopted_from_5201(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2402"] = ["commit_then_lose"]
    h = Harness(sqlite_engine, platform)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    assert platform.infnos()[-2:] == ["2402", "5201"]
    assert h.result_kinds()[-1] == "discharged"


async def test_an_admission_change_after_discharge_is_out_of_order(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    h.absorb(ev.admission_changed(adm_bed="01-01"))
    await h.run()
    assert "2403" not in h.platform.infnos()
    assert h.results()[-1]["reason_code"] == "out_of_order"


async def test_an_admission_change_dated_before_the_discharge_but_arriving_after_it_reopens_the_stay(
        sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    discharge = ev.discharge(minutes=30)
    h.absorb(discharge)
    await h.run_with_settlement_ready()
    late = ev.admission_changed(adm_bed="02-02", minutes=20)  # another CDC table: overtaken by the discharge
    h.absorb(late)
    await h.run()
    assert h.facts("unwind_requested")[-1]["unwind"] == "discharge"  # settlement agrees first (no final settlement)
    assert h.platform.infnos()[-1] == "2402"
    h.settlement("unwound", late.event_id, visit="I1", visit_kind="inpatient")
    await h.run()
    assert h.platform.infnos()[-2:] == ["2405", "2403"]
    assert h.fact_kinds()[-3:] == ["discharge_cancelled", "admission_changed", "discharge_requested"]
    await h.run_with_settlement_ready()
    assert h.platform.infnos()[-3:] == ["2405", "2403", "2402"]
    assert h.platform.inputs["2403"][-1]["adminfo"]["adm_bed"] == "02-02"
    assert h.platform.visits["M00001"]["status"] == "discharged"
    assert [r["kind"] for r in h.results()][-2:] == ["admission_changed", "discharged"]
    assert "rejected" not in h.result_kinds()


async def test_a_late_admission_change_is_refused_with_settlements_reason_when_the_discharge_cannot_be_cancelled(
        sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge(minutes=30))
    await h.run_with_settlement_ready()
    late = ev.admission_changed(adm_bed="02-02", minutes=20)
    h.absorb(late)
    await h.run()
    h.settlement("unwind_refused", late.event_id, visit="I1", visit_kind="inpatient",
                 reason="the final settlement S9 is active: refund it (2305) before cancelling the discharge")
    await h.run()
    assert "2405" not in h.platform.infnos() and "2403" not in h.platform.infnos()
    rejected = h.results("rejected")[-1]
    assert rejected["reason_code"] == "out_of_order" and "S9" in rejected["reason"]


async def test_requests_arriving_out_of_order_are_served_in_his_order_behind_the_head(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    first = ev.admission_changed(adm_bed="01-01", minutes=10)  # being served: nothing goes ahead of it
    discharge = ev.discharge(minutes=30)
    earlier = ev.admission_changed(adm_bed="02-02", minutes=20)  # happened before the discharge, arrived after
    h.absorb(first, discharge, earlier)
    await h.run_with_settlement_ready()
    assert h.platform.infnos()[-3:] == ["2403", "2403", "2402"]
    assert [b["adminfo"]["adm_bed"] for b in h.platform.inputs["2403"]] == ["01-01", "02-02"]


async def test_cancelling_the_admission_while_discharged_is_refused(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    h.absorb(ev.cancellation("admission", "A1"))
    await h.run()
    rejected = h.results("rejected")[0]
    assert rejected["reason_code"] == "out_of_order" and "2405" in rejected["reason"]
    assert "unwind_requested" not in h.fact_kinds()


async def test_cancelling_a_discharge_that_did_not_happen_is_refused(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.cancellation("discharge", "D1"))
    await h.run()
    assert h.results("rejected")[0]["reason_code"] == "out_of_order"


async def test_the_inpatient_rollback_runs_2405_then_2404_each_after_settlement(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    h.absorb(ev.cancellation("discharge", "D1"))
    await h.run()
    assert h.facts("unwind_requested")[-1]["unwind"] == "discharge"
    h.settlement("unwound", "D1", visit="I1", visit_kind="inpatient")
    await h.run()
    assert h.platform.infnos()[-1] == "2405"
    assert h.results()[-1]["kind"] == "cancelled" and h.results()[-1]["target"] == "discharge"
    assert h.fact_kinds()[-2:] == ["discharge_cancelled", "request_closed"]  # the stay in the ward, then closed
    h.absorb(ev.cancellation("admission", "A1"))
    await h.run()
    assert h.facts("unwind_requested")[-1]["unwind"] == "admission"
    h.settlement("unwound", "A1", visit="I1", visit_kind="inpatient")
    await h.run()
    assert h.platform.infnos()[-1] == "2404"
    assert h.results()[-1]["target"] == "admission" and h.fact_kinds()[-1] == "admission_cancelled"
    assert h.platform.registrations("inpatient") == []


async def test_settlement_refusing_a_discharge_cancellation_is_passed_on(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge(), ev.cancellation("discharge", "D1"))
    await h.run_with_settlement_ready()
    h.settlement("unwind_refused", "D1", visit="I1", visit_kind="inpatient",
                 reason="a final settlement is active: refund it first (2305)")
    await h.run()
    assert "2405" not in h.platform.infnos()
    assert "2305" in h.results()[-1]["reason"]


async def test_a_2405_lost_and_not_done_is_sent_again(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2405"] = [UnknownOutcome("2405", None, "reset")]
    h = Harness(sqlite_engine, platform)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge(), ev.cancellation("discharge", "D1"))
    await h.run_with_settlement_ready()
    h.settlement("unwound", "D1", visit="I1", visit_kind="inpatient")
    await h.run()
    assert platform.infnos()[-3:] == ["2405", "5201", "2405"]
    assert h.results()[-1]["kind"] == "cancelled"


async def test_an_admission_without_any_diagnosis_uses_its_disease_code(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    h.absorb(_inpatient().admission(diagnoses=[]))
    await h.run()
    assert h.result_kinds() == ["admitted"]
    assert h.platform.inputs["2401"][0]["diseinfo"][0]["diag_code"] == "I63.900"


async def test_discharge_diagnoses_replace_the_admission_ones_in_2402(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge(diagnoses=[diagnosis(1, "I63.900", "脑梗死"), diagnosis(2, "I10.x00", "高血压", main=False)]))
    await h.run_with_settlement_ready()
    assert [d["diag_code"] for d in h.platform.inputs["2402"][0]["diseinfo"]] == ["I63.900", "I10.x00"]


async def test_without_settlements_answer_2402_goes_after_the_deadline_and_says_why(sqlite_engine: Engine) -> None:
    import datetime as _dt

    h = Harness(sqlite_engine, cfg=config(discharge_wait=_dt.timedelta(seconds=0)))
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run()
    assert h.platform.infnos()[-1] == "2402"
    discharged = h.results("discharged")[0]
    assert "did not confirm within 0 s" in discharged["detail"]["settlement_note"]


async def test_a_refused_2402_tells_settlement_the_discharge_is_closed_with_the_reason(sqlite_engine: Engine) -> None:
    from yibao.envelope.errors import BusinessRejection

    platform = FakePlatform()
    platform.script["2402"] = [BusinessRejection("2402", "dscginfo.endtime: 出院时间早于入院时间")]
    h = Harness(sqlite_engine, platform)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    assert h.results()[-1]["kind"] == "rejected" and "出院时间" in h.results()[-1]["reason"]
    [closed] = h.facts("request_closed")
    assert closed["reason"].startswith("2402 refused") and closed["his_request_id"] == h.facts(
        "discharge_requested")[0]["his_request_id"]


async def test_settlement_is_told_a_his_discharge_is_on_the_his_events_and_a_reopening_is_not(
        sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    h.settlement("reopen_requested", "S1", visit="I1", visit_kind="inpatient", reason="late lines")
    await h.run()
    assert [f["on_his_events"] for f in h.facts("discharge_requested")] == [True, False]


async def test_settlement_reopens_a_discharged_stay_for_late_lines_2405_then_2402_again(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    h.settlement("reopen_requested", "S1", visit="I1", visit_kind="inpatient",
                 reason="3 charge lines arrived after the discharge (2402)")
    await h.run()
    assert h.platform.infnos()[-1] == "2405"
    assert h.fact_kinds()[-2:] == ["discharge_cancelled", "discharge_requested"]
    assert h.facts("discharge_requested")[-1]["his_request_id"] == "S1"
    await h.run_with_settlement_ready()
    assert h.platform.infnos()[-2:] == ["2405", "2402"]
    assert h.platform.visits["M00001"]["status"] == "discharged"
    again = h.results("discharged")[-1]
    assert again["detail"]["reopened_for_settlement"] == "S1" and "his_request_id" not in again
    assert h.fact_kinds()[-1] == "discharged"


async def test_a_refused_reopen_is_reported_to_settlement_with_the_platforms_reason(sqlite_engine: Engine) -> None:
    from yibao.envelope.errors import BusinessRejection

    platform = FakePlatform()
    platform.script["2405"] = [BusinessRejection("2405", "已结算，不能撤销出院")]
    h = Harness(sqlite_engine, platform)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    h.settlement("reopen_requested", "S1", visit="I1", visit_kind="inpatient")
    await h.run()
    [failed] = h.facts("reopen_failed")
    assert failed["his_request_id"] == "S1" and "已结算" in failed["reason"]


# --- the discharge settlement sees is the one in force (issue 11) ---------------------------------------------------

async def test_a_reopen_of_a_stay_hiss_cancellation_already_took_out_of_discharge_is_answered_not_needed(
        sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    h.absorb(ev.cancellation("discharge", "C1"))
    await h.run()
    h.settlement("unwound", "C1", visit="I1", visit_kind="inpatient")
    await h.run()
    assert h.platform.infnos()[-1] == "2405"
    h.settlement("reopen_requested", "S1", visit="I1", visit_kind="inpatient")  # asked before C1's 2405 was heard
    await h.run()
    assert h.platform.infnos().count("2405") == 1, "nothing to reopen: no second 2405"
    [answer] = h.facts("reopen_not_needed")
    assert answer["his_request_id"] == "S1" and not h.facts("reopen_failed")


async def test_a_reopen_asked_again_after_the_first_ended_is_served_again_with_messages_of_its_own(
        sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = _inpatient()
    await _admitted(h, ev)
    h.absorb(ev.discharge())
    await h.run_with_settlement_ready()
    for ask in (0, 1):
        h.settlement("reopen_requested", "S1", visit="I1", visit_kind="inpatient", ask=ask)
        await h.run()
        await h.run_with_settlement_ready()
    assert h.platform.infnos()[-4:] == ["2405", "2402", "2405", "2402"]
    for kind in ("discharge_cancelled", "discharge_requested", "discharged"):
        ids = [f["message_id"] for f in h.facts(kind) if f.get("his_request_id") == "S1"]
        assert len(ids) == len(set(ids)) == 2, (kind, ids)


def test_a_2405_that_took_effect_is_told_to_settlement_whatever_became_of_its_request() -> None:
    from yibao.chains.model import Effects, Reply
    from yibao.registration.absorb import apply_event, apply_fact
    from yibao.registration.state import Person, RegistrationState
    from yibao.registration.steps.discharge import reopen_call
    from yibao.core.results import SettlementFact
    from unit.registration.registration_support import T0

    ev = _inpatient()
    state = RegistrationState(kind="inpatient")
    for event in (ev.admission(), ev.discharge()):
        apply_event(state, event, T0)
    state.person = Person(psn_no="P1", insutype="310", insuplc_admdvs="440106")
    state.mdtrt_id, state.status, state.discharged = "M1", "registered", True
    state.requests[0].phase = "done"
    apply_fact(state, SettlementFact(message_id="m", his_visit_id="I1", visit_kind="inpatient",
                                     kind="reopen_requested", his_request_id="S1"), T0)
    call = reopen_call(config(), state, state.request("S1", "reopen"))  # type: ignore[arg-type]
    state.request("S1", "reopen").phase = "rejected"  # type: ignore[union-attr]  # moved on meanwhile
    fx = Effects("registration", "I1", "inpatient", T0)
    call.on_ok(state, Reply({}, "msg"), fx)
    assert not state.discharged
    assert [e.message.kind for e in fx.emissions] == ["discharge_cancelled"]
