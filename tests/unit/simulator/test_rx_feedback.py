"""The prescription centre calling the hospital back: after a 7101 is accepted, 7102 (the pharmacy's review, approved
or rejected by a configurable rule) and, for an approved prescription, 7103 (the purchase) — off unless a hospital
URL is configured; a hospital that does not answer is asked again with the same msgid, an answer ends it."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import httpx

from yibao.core import clock
from yibao.envelope.catalog import Catalog
from yibao.fakedata.uploads import generate_uploads
from yibao.simulator import wire
from yibao.simulator.rx_feedback import RxFeedback, purchase_input, review_input
from yibao.simulator.server import Simulator
from yibao.simulator.settings import DEFAULT_FIXMEDINS_CODE, SimulatorSettings
from yibao.simulator.uploads import uploads_of, valid_codes

CATALOG = Catalog.load(None)
URL = "http://hospital.test/national/inbound"
_serial = itertools.count(1)


def simulator(**kw: Any) -> Simulator:
    return Simulator(SimulatorSettings(**{"port": 0, "admin_port": 0, "population_size": 10, "require_sign_in": False,
                                          "rx_review_delay_s": 0, "rx_purchase_delay_s": 0,
                                          "rx_feedback_retry_s": 0.01, **kw}))


def prescription(sim: Simulator) -> dict[str, Any]:
    week = generate_uploads(3, clock.today() - dt.timedelta(days=3), days=1, codes=valid_codes(sim.ledger))
    return next(i.record for i in week.items if i.kind == "7101")


def upload_7101(sim: Simulator, record: dict[str, Any]) -> Any:
    now = clock.now()
    env = {"infno": "7101", "msgid": f"{DEFAULT_FIXMEDINS_CODE}{now:%Y%m%d%H%M%S}{next(_serial) % 10000:04d}",
           "mdtrtarea_admvs": "440100", "insuplc_admdvs": "440100", "recer_sys_code": "YBJG", "infver": "V1.0",
           "opter_type": "1", "opter": "001", "opter_name": "测试", "inf_time": clock.format_datetime(now),
           "fixmedins_code": DEFAULT_FIXMEDINS_CODE, "fixmedins_name": "测试医院", "input": record}
    outcome = sim.national.process(wire.loads(wire.dumps(env)))
    assert outcome.ok, outcome.response
    return outcome


def hospital(answers: list[Any], posts: list[dict[str, Any]]) -> httpx.AsyncClient:
    """A hospital answering each post with the next of ``answers`` (a status, or a JSON body with 200)."""
    replies = iter(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        posts.append({"headers": dict(request.headers), "envelope": wire.loads(request.content)})
        answer = next(replies, {"infcode": 0, "err_msg": ""})
        if isinstance(answer, int):
            return httpx.Response(answer, text="unavailable")
        return httpx.Response(200, content=wire.dumps_bytes(answer))

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


# --- the rule -----------------------------------------------------------------------------------------------------

def test_every_prescription_is_approved_by_default() -> None:
    feedback = RxFeedback(SimulatorSettings(), simulator().national)
    assert all(feedback.approves(f"RX{n}") for n in range(50))


def test_a_prescription_matching_the_reject_pattern_is_rejected() -> None:
    feedback = RxFeedback(SimulatorSettings(rx_reject_pattern=r"^RXBAD"), simulator().national)
    assert not feedback.approves("RXBAD001") and feedback.approves("RXGOOD01")


def test_the_reject_ratio_rejects_a_seeded_share_the_same_on_every_run() -> None:
    settings, national = SimulatorSettings(rx_reject_ratio=0.3), simulator().national
    first = [RxFeedback(settings, national).approves(f"RX{n:04d}") for n in range(400)]
    again = [RxFeedback(settings, national).approves(f"RX{n:04d}") for n in range(400)]
    assert first == again and 0.2 < first.count(False) / 400 < 0.4


# --- what is posted ------------------------------------------------------------------------------------------------

def test_the_review_and_the_purchase_pass_the_catalogs_field_lists() -> None:
    sim = simulator()
    settings = sim.settings
    for approved in (True, False):
        CATALOG.validate_input("7102", review_input(settings, "HX2024010100000001", approved, clock.now()),
                               unknown_fields="reject")
    CATALOG.validate_input("7103", purchase_input(settings, "HX2024010100000001", prescription(sim), clock.now()),
                           unknown_fields="reject")


def test_the_purchases_money_adds_up_exactly() -> None:
    rx = {"rxdrugdetail": [{"drug_pric": Decimal("3.3333"), "drug_cnt": Decimal(3)},
                           {"drug_pric": Decimal("12.50"), "drug_cnt": Decimal(2)}]}
    bought = purchase_input(SimulatorSettings(), "HX1", rx, clock.now())
    data, lines = bought["data"], bought["seltdelts"]
    assert [x["sumamt"] for x in lines] == [Decimal("10.00"), Decimal("25.00")]
    assert data["fund_pay_sumamt"] + data["psn_part_amt"] == Decimal("35.00")
    assert data["acct_pay"] + data["psn_cash_pay"] == data["psn_part_amt"]
    assert all(isinstance(v, Decimal) for k, v in data.items() if k != "hi_rxno" and k != "setl_time")


# --- when ------------------------------------------------------------------------------------------------------------

def test_no_feedback_is_queued_without_a_hospital_url() -> None:
    sim = simulator()
    upload_7101(sim, prescription(sim))
    assert uploads_of(sim.ledger).rx_accepted == []


async def test_an_approved_prescription_gets_its_review_then_its_purchase() -> None:
    sim = simulator(rx_feedback_url=URL, rx_feedback_token="t0ken")
    upload_7101(sim, prescription(sim))
    posts: list[dict[str, Any]] = []
    sim.rx_feedback._client = hospital([], posts)
    sim.rx_feedback.schedule_accepted()
    await sim.rx_feedback.drain()
    assert [p["envelope"]["infno"] for p in posts] == ["7102", "7103"]
    review, bought = (p["envelope"] for p in posts)
    assert review["input"]["data"]["rx_chk_stas_codg"] == sim.settings.rx_approved_code
    assert review["input"]["data"]["hi_rxno"] == bought["input"]["data"]["hi_rxno"]
    assert review["fixmedins_code"] == DEFAULT_FIXMEDINS_CODE and len(review["msgid"]) == 30
    assert posts[0]["headers"]["x-yibao-inbound-token"] == "t0ken"
    await sim.rx_feedback.close()


async def test_a_rejected_prescription_gets_its_review_and_no_purchase() -> None:
    sim = simulator(rx_feedback_url=URL, rx_reject_pattern=".")
    upload_7101(sim, prescription(sim))
    posts: list[dict[str, Any]] = []
    sim.rx_feedback._client = hospital([], posts)
    sim.rx_feedback.schedule_accepted()
    await sim.rx_feedback.drain()
    assert [p["envelope"]["infno"] for p in posts] == ["7102"]
    assert posts[0]["envelope"]["input"]["data"]["rx_chk_stas_codg"] == sim.settings.rx_rejected_code
    await sim.rx_feedback.close()


async def test_a_hospital_that_does_not_answer_is_asked_again_with_the_same_msgid() -> None:
    sim = simulator(rx_feedback_url=URL)
    posts: list[dict[str, Any]] = []
    sim.rx_feedback._client = hospital([503, 502], posts)
    answer = await sim.rx_feedback.deliver("7102", DEFAULT_FIXMEDINS_CODE, "HX1",
                                           review_input(sim.settings, "HX1", True, clock.now()))
    assert answer is not None and answer["infcode"] == 0
    assert len(posts) == 3 and len({p["envelope"]["msgid"] for p in posts}) == 1
    await sim.rx_feedback.close()


async def test_a_refusal_is_an_answer_and_is_not_sent_again() -> None:
    sim = simulator(rx_feedback_url=URL)
    posts: list[dict[str, Any]] = []
    sim.rx_feedback._client = hospital([{"infcode": -1, "err_msg": "[7102] input.data.hi_rxno: 医保处方编号不存在"}], posts)
    answer = await sim.rx_feedback.deliver("7102", DEFAULT_FIXMEDINS_CODE, "HX1",
                                           review_input(sim.settings, "HX1", True, clock.now()))
    assert answer is not None and answer["infcode"] == -1 and len(posts) == 1
    [kept] = uploads_of(sim.ledger).rx_feedback
    assert kept["err_msg"].startswith("[7102]")
    await sim.rx_feedback.close()


async def test_a_hospital_that_never_answers_is_given_up_after_the_attempts() -> None:
    sim = simulator(rx_feedback_url=URL, rx_feedback_max_attempts=3)
    posts: list[dict[str, Any]] = []
    sim.rx_feedback._client = hospital([503, 503, 503], posts)
    answer = await sim.rx_feedback.deliver("7102", DEFAULT_FIXMEDINS_CODE, "HX1",
                                           review_input(sim.settings, "HX1", True, clock.now()))
    assert answer is None and len(posts) == 3
    await sim.rx_feedback.close()
