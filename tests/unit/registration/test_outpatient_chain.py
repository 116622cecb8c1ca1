"""The outpatient chain run by the real engine against a stand-in platform (SQLite): 1101 → (2001) → 2201 →
2203, self-pay, refusals, unknown outcomes, 退号 with settlement's consent, and the 医保→自费 switch."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine

from unit.registration.registration_support import ADMDVS, PSN, Events, FakePlatform, Harness, config, diagnosis
from yibao.envelope.errors import BusinessRejection, TransportError, UnknownOutcome


async def test_a_registration_runs_1101_then_2201_and_tells_his_and_settlement(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    h.absorb(Events().registered())
    await h.run()
    assert h.platform.infnos() == ["1101", "2201"]
    [result] = h.results()
    assert result["kind"] == "registered" and result["mdtrt_id"] == "M00001"
    assert (result["psn_no"], result["insutype"], result["insuplc_admdvs"]) == (PSN, "310", ADMDVS)
    [fact] = h.facts()
    assert fact["kind"] == "registered" and fact["mdtrt_id"] == "M00001" and fact["ipt_otp_no"] == "MZO1"
    assert fact["self_pay"] is False and fact["mdtrt_cert_type"] == "02"
    assert h.visit_status() == "idle"


async def test_the_registered_result_carries_the_consultation_fee_split(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    h.absorb(Events().registered(reg_fee=Decimal("10.00"), reg_type="01"))
    await h.run()
    fee = h.results("registered")[0]["detail"]["consultation_fee"]
    assert fee == {"reg_fee": "10.00", "pooled": "7.00", "self_paid": "3.00", "rule": "ordinary-employee",
                   "ratio": "0.7"}


async def test_treatment_check_runs_2001_between_1101_and_2201_when_configured(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine, cfg=config(treatment_check=True))
    h.absorb(Events().registered())
    await h.run()
    assert h.platform.infnos() == ["1101", "2001", "2201"]


async def test_a_benefit_not_enjoyed_refuses_the_registration_when_blocking(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.trt_enjymnt_flag = "0"
    h = Harness(sqlite_engine, platform, cfg=config(treatment_check=True))
    h.absorb(Events().registered())
    await h.run()
    assert platform.infnos() == ["1101", "2001"]
    [result] = h.results()
    assert result["kind"] == "rejected" and result["reason_code"] == "treatment_not_enjoyed"
    assert h.fact_kinds() == ["registration_failed"]


async def test_a_self_pay_registration_makes_no_platform_call(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    h.absorb(Events().registered(settle_choice="self_pay"))
    await h.run()
    assert h.platform.calls == []
    [result] = h.results()
    assert result["kind"] == "self_pay" and result["detail"]["consultation_fee"]["pooled"] == "0.00"
    [fact] = h.facts()
    assert fact["kind"] == "registered" and fact["self_pay"] is True and "psn_no" not in fact


async def test_a_person_the_platform_does_not_know_is_rejected_with_its_err_msg(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    h.absorb(Events().registered(mdtrt_cert_no="UNKNOWN-CERT"))
    await h.run()
    [result] = h.results()
    assert result["kind"] == "rejected" and result["step_infno"] == "1101"
    assert "未查询到参保信息" in result["reason"]
    assert h.fact_kinds() == ["registration_failed"]


async def test_a_refused_2201_is_rejected_and_never_sent_again(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2201"] = [BusinessRejection("2201", "科室编码不存在")]
    h = Harness(sqlite_engine, platform)
    h.absorb(Events().registered())
    await h.run()
    assert platform.infnos() == ["1101", "2201"]
    assert h.results()[0]["reason"] == "科室编码不存在" and h.results()[0]["step_infno"] == "2201"
    assert h.fact_kinds() == ["registration_failed"]


async def test_an_input_the_catalog_refuses_is_rejected_naming_the_field(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    h.absorb(Events().registered(caty=None))
    await h.run()
    [result] = h.results()
    assert result["kind"] == "rejected" and result["reason_code"] == "invalid_input"
    assert "data.caty" in result["reason"] and "required" in result["reason"]


async def test_a_2201_done_but_unheard_is_adopted_from_5201_not_sent_again(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2201"] = ["commit_then_lose"]
    h = Harness(sqlite_engine, platform)
    h.absorb(Events().registered())
    await h.run()
    assert platform.infnos() == ["1101", "2201", "5201"]
    assert len(platform.registrations()) == 1
    assert h.results("registered")[0]["mdtrt_id"] == "M00001"
    assert ("2201", "resolved", "adopted") in h.journal()


async def test_a_2201_lost_before_the_platform_acted_is_sent_again_after_5201(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2201"] = [UnknownOutcome("2201", None, "connection reset")]
    h = Harness(sqlite_engine, platform)
    h.absorb(Events().registered())
    await h.run()
    assert platform.infnos() == ["1101", "2201", "5201", "2201"]
    assert len(platform.registrations()) == 1
    assert ("2201", "resolved", "absent") in h.journal()
    assert h.result_kinds() == ["registered"]


async def test_a_transport_failure_backs_off_and_the_step_is_sent_again(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2201"] = [TransportError("2201", "connect refused")]
    h = Harness(sqlite_engine, platform)
    h.absorb(Events().registered())
    await h.run()
    assert platform.infnos() == ["1101", "2201", "2201"]
    assert h.result_kinds() == ["registered"]


async def test_exhausted_retries_park_the_visit_and_tell_his_and_settlement(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["1101"] = [TransportError("1101", "connect refused") for _ in range(3)]
    h = Harness(sqlite_engine, platform, max_attempts=3)
    h.absorb(Events().registered())
    await h.run()
    assert h.visit_status() == "parked"
    [result] = h.results()
    assert result["kind"] == "parked" and result["reason_code"] == "exhausted"
    assert h.fact_kinds() == ["registration_failed"]


async def test_duplicate_events_change_nothing(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    event = Events().registered()
    assert h.absorb(event, event) == [True, False]
    await h.run()
    assert h.platform.infnos() == ["1101", "2201"]
    assert h.result_kinds() == ["registered"]


async def test_visit_info_is_uploaded_once_registered_with_merged_diagnoses(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.visit_info(diagnosis(1), med_type="11", dise_codg="J20.900"))  # before its registration
    h.absorb(ev.registered(minutes=0))
    await h.run()
    assert h.platform.infnos() == ["1101", "2201", "2203"]
    [upload] = h.platform.inputs["2203"]
    assert upload["mdtrtinfo"]["mdtrt_id"] == "M00001" and len(upload["diseinfo"]) == 1
    assert h.result_kinds() == ["registered", "visit_info_uploaded"]
    assert h.fact_kinds() == ["registered", "visit_info_uploaded"]
    assert h.facts("visit_info_uploaded")[0]["med_type"] == "11"


async def test_changed_diagnoses_are_sent_again_and_unchanged_ones_are_not(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered(), ev.visit_info(diagnosis(1)))
    await h.run()
    h.absorb(ev.visit_info(diagnosis(1)))  # the same diagnosis again: nothing new
    await h.run()
    assert h.platform.infnos().count("2203") == 1
    h.absorb(ev.visit_info(diagnosis(2, "I10.x00", "高血压", main=False)))
    await h.run()
    assert h.platform.infnos().count("2203") == 2
    assert len(h.platform.inputs["2203"][-1]["diseinfo"]) == 2
    assert h.result_kinds() == ["registered", "visit_info_uploaded", "visit_info_uploaded"]


async def test_visit_info_without_a_diagnosis_waits(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered(), ev.visit_info(med_type="11"))
    await h.run()
    assert "2203" not in h.platform.infnos()
    assert h.visit_status() == "waiting"


async def test_a_cancellation_asks_settlement_then_sends_2202(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered())
    await h.run()
    h.absorb(ev.cancellation(request_id="C1"))
    await h.run()
    assert h.facts("unwind_requested")[0]["unwind"] == "registration"
    assert h.facts("unwind_requested")[0]["his_request_id"] == "C1"
    assert "2202" not in h.platform.infnos() and h.visit_status() == "waiting"
    h.settlement("unwound", "C1")
    await h.run()
    assert h.platform.infnos()[-1] == "2202" and h.platform.registrations() == []
    cancelled = h.results("cancelled")[0]
    assert cancelled["target"] == "registration" and cancelled["his_request_id"] == "C1"
    assert h.fact_kinds()[-1] == "registration_cancelled"


async def test_the_unwind_request_carries_the_his_cancellations_own_time_and_id(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered())
    await h.run()
    cancellation = ev.cancellation(request_id="C7", minutes=90)
    h.absorb(cancellation)
    await h.run()
    [asked] = h.facts("unwind_requested")
    assert asked["his_request_id"] == "C7"
    assert asked["occurred_at"] == cancellation.occurred_at.isoformat()  # HIS's time, not the moment we asked


async def test_a_diagnosis_that_came_before_the_cancellation_is_uploaded_before_settlement_is_asked(
        sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered())
    await h.run()
    h.absorb(ev.visit_info(diagnosis()), ev.cancellation(request_id="C1"))
    await h.run()
    assert h.platform.infnos()[-1] == "2203"
    assert h.fact_kinds()[-2:] == ["visit_info_uploaded", "unwind_requested"]


async def test_settlement_hears_when_a_cancellation_is_finished_however_it_ended(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered())
    await h.run()
    h.absorb(ev.cancellation(request_id="C1"))
    await h.run()
    h.settlement("unwound", "C1")
    await h.run()
    h.absorb(ev.cancellation(request_id="C2"))  # the visit is cancelled already: rejected
    await h.run()
    closed = {f["his_request_id"]: f.get("reason") for f in h.facts("request_closed")}
    assert closed["C1"] is None and closed["C2"].startswith("rejected [cancelled]")


async def test_a_cancellation_settlement_refuses_is_rejected_as_out_of_order(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered(), ev.cancellation(request_id="C1"))
    await h.run()
    h.settlement("unwind_refused", "C1", reason="an active settlement must be refunded first (2208)")
    await h.run()
    assert "2202" not in h.platform.infnos()
    rejected = h.results("rejected")[0]
    assert rejected["reason_code"] == "out_of_order" and "2208" in rejected["reason"]
    assert len(h.platform.registrations()) == 1


async def test_a_repeated_cancellation_request_is_absorbed_once(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered(), ev.cancellation(request_id="C1"), ev.cancellation(request_id="C1"))
    await h.run()
    assert len(h.facts("unwind_requested")) == 1


async def test_a_cancellation_of_a_refused_registration_needs_no_platform_call(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered(mdtrt_cert_no="UNKNOWN-CERT"), ev.cancellation(request_id="C1"))
    await h.run()
    assert h.platform.infnos() == ["1101"]
    assert h.result_kinds() == ["rejected", "cancelled"]


async def test_a_requests_waits_for_the_registration_until_the_orphan_timeout(sqlite_engine: Engine) -> None:
    import datetime as _dt

    h = Harness(sqlite_engine, cfg=config(orphan_timeout=_dt.timedelta(seconds=0)))
    h.absorb(Events().cancellation(request_id="C9"))
    await h.run()
    [result] = h.results()
    assert result["kind"] == "rejected" and result["reason_code"] == "no_registration"


async def test_settlement_is_told_which_unwinds_serve_a_his_event_it_reads_too(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    cancelled, switched = Events("O1"), Events("O2")
    h.absorb(cancelled.registered())
    first = switched.registered()
    h.absorb(first)
    await h.run()
    h.absorb(cancelled.cancellation(request_id="C1"))  # 退号: a HIS cancellation, on the HIS events
    h.absorb(first.model_copy(update={"event_id": "ev-switch-0001", "settle_choice": "self_pay"}))  # 医保 → 自费
    await h.run()
    assert sorted((f["his_request_id"], f["on_his_events"]) for f in h.facts("unwind_requested")) == [
        ("C1", True), ("ev-switch-0001", False)]


async def test_insurance_may_become_self_pay_the_visit_is_cancelled_on_the_platform(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    first = ev.registered()
    h.absorb(first)
    await h.run()
    h.absorb(first.model_copy(update={"event_id": "ev-switch-0001", "settle_choice": "self_pay"}))
    await h.run()
    switch = h.facts("unwind_requested")[0]
    h.settlement("unwound", switch["his_request_id"])
    await h.run()
    assert h.platform.infnos() == ["1101", "2201", "2202"]
    assert h.result_kinds() == ["registered", "self_pay"]
    assert h.fact_kinds() == ["registered", "unwind_requested", "registration_cancelled", "registered"]
    assert h.facts()[-1]["self_pay"] is True
    assert h.state().status == "self_pay"


async def test_self_pay_never_becomes_insurance(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    first = Events().registered(settle_choice="self_pay")
    h.absorb(first)
    h.absorb(first.model_copy(update={"event_id": "ev-switch-0002", "settle_choice": "insurance"}))
    await h.run()
    assert h.platform.calls == []
    assert h.result_kinds() == ["self_pay", "rejected"]
    assert h.results("rejected")[0]["reason_code"] == "identity_change_refused"


async def test_a_corrected_registration_after_a_refusal_is_tried_again(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    first = Events().registered(mdtrt_cert_no="UNKNOWN-CERT")
    h.absorb(first)
    await h.run()
    from unit.registration.registration_support import CERT

    h.absorb(first.model_copy(update={"event_id": "ev-fix-00000001", "mdtrt_cert_no": CERT}))
    await h.run()
    assert h.platform.infnos() == ["1101", "1101", "2201"]
    assert h.result_kinds() == ["rejected", "registered"]


async def test_a_benefit_not_enjoyed_is_only_reported_when_not_blocking(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.trt_enjymnt_flag = "0"
    h = Harness(sqlite_engine, platform, cfg=config(treatment_check=True, treatment_check_blocks=False))
    h.absorb(Events().registered())
    await h.run()
    [result] = h.results()
    assert result["kind"] == "registered"
    assert result["detail"]["treatment"][0]["trt_enjymnt_flag"] == "0"
