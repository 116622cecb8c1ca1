"""The hospital-side ledger from HisResults: what is booked, duplicates absorbed, bad results parked."""

from __future__ import annotations

from decimal import Decimal

import pytest

from unit.reconciliation.recon_fakes import entry, his_result
from yibao.core.errors import InputError
from yibao.reconciliation.commands import parse_his_result, store_his_result
from yibao.reconciliation.ledger import entry_by_setl_id, entry_from_result, record_result


def test_a_settled_result_books_a_settlement(engine) -> None:
    with engine.begin() as conn:
        assert record_result(conn, his_result(entry("S1", "80.00"))) == "processed"
        booked = entry_by_setl_id(conn, "S1")
    assert booked is not None and booked.refd_setl_flag == "0" and booked.medfee_sumamt == Decimal("80.00")


def test_a_refunded_result_books_a_negative_cancellation(engine) -> None:
    cancellation = entry("C1", "80.00", flag="1", orig="S1")
    positive = his_result(cancellation).split.model_copy(update={"medfee_sumamt": Decimal("80.00")})
    with engine.begin() as conn:
        record_result(conn, his_result(cancellation, split=positive))
        booked = entry_by_setl_id(conn, "C1")
    assert booked.refd_setl_flag == "1" and booked.medfee_sumamt == Decimal("-80.00")
    assert booked.orig_setl_id == "S1"


def test_the_same_message_twice_is_absorbed_by_the_inbox(engine) -> None:
    result = his_result(entry("S1"))
    with engine.begin() as conn:
        assert record_result(conn, result) == "processed"
        assert record_result(conn, result) == "duplicate"


def test_a_second_result_for_a_booked_setl_id_keeps_the_first(engine) -> None:
    with engine.begin() as conn:
        record_result(conn, his_result(entry("S1", "10.00")))
        assert record_result(conn, his_result(entry("S1", "99.00"), message_id="another")) == "duplicate"
        assert entry_by_setl_id(conn, "S1").medfee_sumamt == Decimal("10.00")


@pytest.mark.parametrize("kind", ["registered", "presettled", "rejected", "parked", "cancelled"])
def test_results_that_book_nothing_are_skipped(engine, kind) -> None:
    result = his_result(entry("S1"), kind=kind)
    with engine.begin() as conn:
        assert record_result(conn, result) == "skipped"
        assert entry_by_setl_id(conn, "S1") is None


@pytest.mark.parametrize("missing", ["setl_id", "split", "insutype"])
def test_a_settlement_without_what_reconciliation_needs_is_bad_input(missing) -> None:
    with pytest.raises(InputError, match=missing):
        entry_from_result(his_result(entry("S1"), **{missing: None}))


def test_a_settlement_without_any_optins_is_bad_input() -> None:
    with pytest.raises(InputError, match="clr_optins"):
        entry_from_result(his_result(entry("S1"), clr_optins=None, insuplc_admdvs=None))


def test_clr_type_and_optins_are_derived_when_left_out() -> None:
    booked = entry_from_result(his_result(entry("S1", clr_type="21"), clr_type=None, clr_optins=None,
                                          visit_kind="inpatient", insuplc_admdvs="440300"))
    assert (booked.clr_type, booked.setl_optins) == ("21", "440300")


def test_mobile_pay_results_are_kept_in_their_own_channel() -> None:
    assert entry_from_result(his_result(entry("S1"), service="mobilepay")).channel == "mobilepay"
    assert entry_from_result(his_result(entry("S1"), detail={"channel": "mobilepay-1.0"})).channel == "mobilepay-1.0"
    assert entry_from_result(his_result(entry("S1"))).channel == "national"


def test_undecodable_bytes_are_bad_input() -> None:
    with pytest.raises(InputError):
        parse_his_result(b"{not json")
    with pytest.raises(InputError):
        parse_his_result(b'{"message_id": "x"}')


def test_a_tombstone_is_skipped(engine) -> None:
    with engine.begin() as conn:
        assert store_his_result(conn, None) == "skipped"
