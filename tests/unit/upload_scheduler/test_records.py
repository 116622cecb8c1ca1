"""A record's life as the pure merge and the lane's book see it: a fix is a new revision (sent again, as soon as
possible), the same content again changes nothing, a withdrawal only takes back what has not gone, an answer for
an older revision sends the newer one; and the messages that cannot be read are refused with what is wrong."""

from __future__ import annotations

import datetime as _dt
import json

import pytest

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.upload_scheduler.absorb import absorb_his_result, absorb_source
from yibao.upload_scheduler.config import UploadConfig, load_lanes
from yibao.upload_scheduler.errors import RecordKeyError, UnknownLaneError
from yibao.upload_scheduler.records import Intent, RecordBook, key_of, merge

LANES = load_lanes()
CONFIG = UploadConfig(lanes=LANES)
T0 = _dt.datetime(2025, 3, 4, 10, 0, tzinfo=clock.SHANGHAI)


def intent(what: str = "source", payload: dict | None = None, *, key: str = "K1", now: _dt.datetime = T0,
           due: _dt.datetime | None = None) -> Intent:
    return Intent(what=what, lane="national:3503", key=key, target="national", kind="3503",  # type: ignore[arg-type]
                  occurred_at=T0, due_at=due or T0, deadline_at=T0 + _dt.timedelta(days=1), now=now,
                  payload=payload if what == "source" else None, source_id="S1")


def test_a_new_record_is_pending_and_an_expected_one_awaits_its_content() -> None:
    rec = merge(None, intent(payload={"a": 1}))
    assert rec is not None and rec.status == "pending" and rec.revision == 1 and rec.has_content
    owed = merge(None, intent("expect"))
    assert owed is not None and not owed.has_content and "awaiting" in (owed.reason or "")
    assert merge(None, intent("withdraw")) is None


def test_the_content_of_an_expected_record_is_its_first_revision_and_the_same_content_again_changes_nothing() -> None:
    owed = merge(None, intent("expect"))
    filled = merge(owed, intent(payload={"a": 1}))
    assert filled is not None and filled.revision == 1 and filled.status == "pending"
    assert merge(filled, intent(payload={"a": 1})) is None


def test_a_fix_of_a_rejected_record_is_a_new_revision_due_at_once() -> None:
    later = T0 + _dt.timedelta(hours=3)
    rec = merge(None, intent(payload={"a": 1}, due=T0 + _dt.timedelta(days=1)))
    assert rec is not None
    rec.status, rec.sent_revision, rec.reason = "rejected", 1, "金额不符"
    fixed = merge(rec, intent(payload={"a": 2}, now=later))
    assert fixed is not None and fixed.status == "pending" and fixed.revision == 2 and fixed.due_at == later
    assert fixed.reason is None


def test_a_record_in_flight_keeps_its_status_and_its_answer_sends_the_newer_revision() -> None:
    book = RecordBook("national:3503", [merge(None, intent(payload={"a": 1}))])  # type: ignore[list-item]
    revisions = book.freeze(["K1"], 1, T0)
    book.offer(intent(payload={"a": 2}, now=T0 + _dt.timedelta(seconds=1)))
    rec = book.get("K1")
    assert rec is not None and rec.status == "sent" and rec.revision == 2
    after = book.accept("K1", revisions["K1"], "M1", None, T0 + _dt.timedelta(seconds=2))
    assert after is not None and after.status == "pending" and after.accepted_revision == 1
    assert after.needs_change


def test_a_refusal_of_an_older_revision_sends_the_newer_one() -> None:
    book = RecordBook("national:3503", [merge(None, intent(payload={"a": 1}))])  # type: ignore[list-item]
    book.freeze(["K1"], 1, T0)
    book.offer(intent(payload={"a": 2}))
    rec = book.reject("K1", 1, "金额不符", "M1", T0)
    assert rec is not None and rec.status == "pending" and "previous revision refused" in (rec.reason or "")


def test_a_withdrawal_takes_back_only_what_has_not_gone() -> None:
    rec = merge(None, intent(payload={"a": 1}))
    assert rec is not None
    gone = merge(rec, intent("withdraw"))
    assert gone is not None and gone.status == "withdrawn"
    rec.status = "accepted"
    assert merge(rec, intent("withdraw")) is None
    rec.status = "sent"
    assert merge(rec, intent("withdraw")) is None


def test_a_settlement_expected_again_after_a_refund_reopens_its_list() -> None:
    owed = merge(None, intent("expect"))
    assert owed is not None
    gone = merge(owed, intent("withdraw"))
    assert gone is not None and gone.status == "withdrawn"
    back = merge(gone, intent("expect"))
    assert back is not None and back.status == "pending"


def test_the_business_key_is_read_from_the_lane_paths() -> None:
    assert key_of(LANES["4402"], {"medcas_drord_detl_id": "ZY1-1"}) == "ZY1-1"
    assert key_of(LANES["4302"], {"oprninfo": {"mdtrt_sn": "M1", "oprn_oprt_sn": 2}}) == "M1|2"
    assert key_of(LANES["4201"], {"feedetail": [{"mdtrt_sn": "M9"}]}) == "M9"
    assert key_of(LANES["7104"], {}, "RX1") == "RX1"
    with pytest.raises(RecordKeyError, match=r"record\.purcinfo\.fixmedins_bchno is required"):
        key_of(LANES["3503"], {"purcinfo": {"fixmedins_bchno": "  "}})
    with pytest.raises(RecordKeyError, match="record_key is required"):
        key_of(LANES["7104"], {"data": {}})


def _source(**fields: object) -> bytes:
    msg = {"source_id": "S1", "kind": "3503", "occurred_at": "2025-03-04 10:00:00",
           "record": {"purcinfo": {"fixmedins_bchno": "B1"}}, **fields}
    return json.dumps(msg, ensure_ascii=False).encode()


@pytest.mark.parametrize(("value", "error", "message"), [
    (b"{not json", InputError, "not a JSON UploadSource"),
    (b"[1]", InputError, "JSON object"),
    (_source(kind="9999"), UnknownLaneError, "kind '9999': no lane uploads it"),
    (_source(record={"purcinfo": {}}), RecordKeyError, "purcinfo.fixmedins_bchno is required"),
    (_source(record={}), InputError, "record is empty"),
    (_source(insuplc_admdvs="44"), InputError, "insuplc_admdvs"),
    (_source(colour="red"), InputError, "colour"),
])
def test_a_source_that_cannot_be_read_is_refused_with_what_is_wrong(value: bytes, error: type, message: str) -> None:
    with pytest.raises(error) as exc:
        absorb_source(CONFIG, value)
    assert message in str(exc.value)


def test_a_bad_source_names_the_field_never_its_value() -> None:
    with pytest.raises(InputError) as exc:
        absorb_source(CONFIG, _source(his_visit_id="x" * 200, record={"purcinfo": {"fixmedins_bchno": "B1"},
                                                                      "certno": "440106199001011234"}))
    assert "his_visit_id" in str(exc.value) and "440106199001011234" not in str(exc.value)


def test_settlement_results_open_and_withdraw_the_inpatient_list_only() -> None:
    from decimal import Decimal

    from yibao.core.results import HisResult, SettlementSplit

    split = SettlementSplit(medfee_sumamt=Decimal("1"), fund_pay_sumamt=Decimal("0"), psn_part_amt=Decimal("1"),
                            acct_pay=Decimal("0"), psn_cash_pay=Decimal("1"))
    base = dict(message_id="m1", his_visit_id="V1", service="settlement", setl_time=T0, split=split)
    settled = HisResult(visit_kind="inpatient", kind="settled", setl_id="S9", **base)  # type: ignore[arg-type]
    absorbed = absorb_his_result(CONFIG, settled.to_json())
    assert absorbed is not None and absorbed.visit_key == "national:4101" and absorbed.message_id == "his:m1"
    outpatient = HisResult(visit_kind="outpatient", kind="settled", setl_id="S9", **base)  # type: ignore[arg-type]
    assert absorb_his_result(CONFIG, outpatient.to_json()) is None
    with pytest.raises(InputError, match="not a HisResult"):
        absorb_his_result(CONFIG, b'{"kind": 1}')
