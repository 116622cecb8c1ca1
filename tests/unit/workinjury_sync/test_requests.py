"""HIS's requests at the boundary: a message that is not a valid request is parked with the field named (the rest
flow); valid ones land in the right case."""

from __future__ import annotations

import json

import pytest

from unit.workinjury_sync.harness import Harness
from yibao.core.errors import DecodeError
from yibao.workinjury_sync.absorb import make_router
from yibao.workinjury_sync.models import case_key, parse_request

ROUTE = make_router("H44010600001")


def _fee(**over: object) -> dict:
    return {"type": "fee_lines", "event_id": "e1", "occurred_at": "2026-11-02T10:00:00+08:00", "stay_id": "S1",
            "lines": [{"fee_sn": "1", "fee_time": "2026-11-02T10:00:00+08:00", "item_code": "X", "item_name": "n",
                       "price": "1.00", "cnt": "2", "amount": "2.00", "pool_amt": "2.00", "self_amt": "0.00"}],
            **over}


def test_a_message_that_is_not_json_is_refused_as_bad_input() -> None:
    with pytest.raises(DecodeError, match="not a work-injury request"):
        ROUTE("workinjury_requests", b"{not json")


def test_an_unknown_request_type_is_refused_naming_the_field() -> None:
    with pytest.raises(DecodeError, match="type"):
        ROUTE("workinjury_requests", json.dumps({**_fee(), "type": "teleport"}).encode())


def test_a_missing_field_is_named() -> None:
    bad = _fee()
    del bad["lines"][0]["amount"]
    with pytest.raises(DecodeError, match=r"lines\.0\.amount"):
        ROUTE("workinjury_requests", json.dumps(bad).encode())


def test_a_float_amount_is_refused() -> None:
    bad = _fee()
    bad["lines"][0]["price"] = 1.5
    with pytest.raises(Exception, match=r"price"):
        parse_request(bad)


def test_a_json_number_amount_is_read_exactly() -> None:
    raw = json.dumps(_fee()).replace('"price": "1.00"', '"price": 1.00')
    request = parse_request(raw)
    assert str(request.lines[0].price) == "1.00"


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(DecodeError, match="surprise"):
        ROUTE("workinjury_requests", json.dumps({**_fee(), "surprise": 1}).encode())


@pytest.mark.parametrize(("request_", "key"), [
    (_fee(), "stay:S1"),
    ({"type": "filing_audited", "event_id": "a", "occurred_at": "2026-11-02T10:00:00+08:00", "apply_no": "SQ1",
      "audit_result": "1", "auditor": "x", "audit_time": "2026-11-02T10:00:00+08:00"}, "application:SQ1"),
    ({"type": "revocation", "event_id": "r", "occurred_at": "2026-11-02T10:00:00+08:00", "setl_no": "FJ1",
      "target": "settlement", "reason": "x"}, "device:FJ1"),
])
def test_each_request_lands_in_its_case(request_: dict, key: str) -> None:
    assert case_key(parse_request(json.dumps(request_)), "H44010600001")[0] == key


async def test_a_request_for_its_case_is_recorded_once_whatever_the_redeliveries(h: Harness) -> None:
    request = h.month.fee_lines(h.month.patients[0], h.month.patients[0].lines[:2], h.now())
    assert h.his(request) is True
    assert h.his(request) is False
