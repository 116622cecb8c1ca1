"""2601 冲正 undoes exactly what the original message did, or says nothing was done."""

from __future__ import annotations

from yibao.simulator.reversal import ALREADY_REVERSED, NOT_DONE, NOT_FOUND, NOT_REVERSIBLE

from .conftest import Hospital


def reverse(hosp: Hospital, omsgid: str, oinfno: str, psn: str = "P0001"):
    return hosp.call("2601", {"data": {"psn_no": psn, "omsgid": omsgid, "oinfno": oinfno}})


def test_2601_of_a_settlement_erases_it_and_restores_the_balance(hosp: Hospital, platform) -> None:
    before = platform.ledger.persons["P0001"].balance
    mdtrt_id, setl_id = hosp.outpatient_settled()
    msgid = hosp.last_msgid
    out = reverse(hosp, msgid, "2207")
    assert out.ok, out.response["err_msg"]
    assert platform.ledger.settlements[setl_id].status == "reversed"
    assert platform.ledger.persons["P0001"].balance == before
    assert all(d.status == "uploaded" for d in platform.ledger.visits[mdtrt_id].details.values())
    assert platform.ledger.reversals[-1]["omsgid"] == msgid
    # the details can be settled again
    hosp.ok("2207", hosp.settle_data(mdtrt_id, "100.00"))


def test_2601_of_a_cancellation_restores_the_settlement(hosp: Hospital, platform) -> None:
    mdtrt_id, setl_id = hosp.outpatient_settled()
    after_settle = platform.ledger.persons["P0001"].balance
    hosp.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    assert reverse(hosp, hosp.last_msgid, "2208").ok
    assert platform.ledger.settlements[setl_id].status == "active"
    assert platform.ledger.persons["P0001"].balance == after_settle


def test_2601_of_an_unknown_msgid_says_nothing_was_done(hosp: Hospital) -> None:
    out = reverse(hosp, hosp.msgid(), "2207")
    assert not out.ok and NOT_FOUND in out.response["err_msg"]


def test_2601_of_a_refused_message_says_nothing_was_done(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    hosp.visit_info(mdtrt_id)
    hosp.refused("2207", hosp.settle_data(mdtrt_id, "1.00"))
    out = reverse(hosp, hosp.last_msgid, "2207")
    assert NOT_DONE in out.response["err_msg"]


def test_2601_of_a_non_reversible_transaction_is_refused(hosp: Hospital) -> None:
    hosp.register()
    assert NOT_REVERSIBLE in reverse(hosp, hosp.last_msgid, "2201").response["err_msg"]


def test_2601_twice_is_refused(hosp: Hospital) -> None:
    hosp.outpatient_settled()
    msgid = hosp.last_msgid
    assert reverse(hosp, msgid, "2207").ok
    assert ALREADY_REVERSED in reverse(hosp, msgid, "2207").response["err_msg"]


def test_2601_oinfno_must_match(hosp: Hospital) -> None:
    hosp.outpatient_settled()
    assert "oinfno" in reverse(hosp, hosp.last_msgid, "2304").response["err_msg"]


def test_2601_of_a_settlement_cancelled_since_is_refused(hosp: Hospital) -> None:
    mdtrt_id, setl_id = hosp.outpatient_settled()
    settle_msgid = hosp.last_msgid
    hosp.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    assert "cancelled since" in reverse(hosp, settle_msgid, "2207").response["err_msg"]
