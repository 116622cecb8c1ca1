"""Settlement arithmetic: deterministic policy, consistent non-negative splits, Decimal cents."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.simulator.policy import DEFAULT_POLICY, BenefitRule, ItemClass, SettlementPolicy, classify, settle

from .conftest import Hospital

CENT = Decimal("0.01")


def test_item_class_is_derived_deterministically_from_the_code() -> None:
    assert [classify(f"X{i}") for i in range(50)] == [classify(f"X{i}") for i in range(50)]
    assert {classify(f"X{i}") for i in range(200)} == {ItemClass.A, ItemClass.B, ItemClass.C}


def test_a_worked_example_of_the_default_outpatient_rule() -> None:
    policy = SettlementPolicy(rules={"310/11": BenefitRule(deductible=Decimal("10"), pool_ratio=Decimal("0.5"),
                                                           cap=Decimal("1000"))},
                              item_classes={"A": ItemClass.A, "B": ItemClass.B, "C": ItemClass.C})
    s = settle([("A", Decimal("100")), ("B", Decimal("50")), ("C", Decimal("20"))], insutype="310", med_type="11",
               acct_used=True, balance=Decimal("30"), policy=policy)
    assert s.medfee_sumamt == Decimal("170.00")
    assert (s.fulamt_ownpay_amt, s.preselfpay_amt, s.inscp_scp_amt) == (Decimal("20.00"), Decimal("5.00"), Decimal("145.00"))
    assert s.act_pay_dedc == Decimal("10.00")
    assert s.fund_pay_sumamt == Decimal("67.50")
    assert s.psn_part_amt == Decimal("102.50")
    assert (s.acct_pay, s.psn_cash_pay, s.balc) == (Decimal("30.00"), Decimal("72.50"), Decimal("0.00"))


def test_the_cap_limits_the_fund_payment() -> None:
    policy = SettlementPolicy(default=BenefitRule(deductible=Decimal("0"), pool_ratio=Decimal("1"), cap=Decimal("50")),
                              item_classes={"A": ItemClass.A})
    s = settle([("A", Decimal("500"))], insutype="999", med_type="99", acct_used=False, balance=Decimal("0"), policy=policy)
    assert s.fund_pay_sumamt == Decimal("50.00") and s.psn_cash_pay == Decimal("450.00")


def test_account_is_used_only_with_acct_used_flag(hosp: Hospital) -> None:
    for flag, expect_acct in (("0", False), ("1", True)):
        mdtrt_id = hosp.register()
        hosp.visit_info(mdtrt_id)
        hosp.upload(mdtrt_id, [hosp.fee(mdtrt_id, "F1", "100.00", code="C-ONLY")])
        info = hosp.ok("2207", hosp.settle_data(mdtrt_id, "100.00", acct=flag))["setlinfo"]
        assert (info["acct_pay"] > 0) is expect_acct


def test_account_pays_at_most_the_balance(hosp: Hospital, platform) -> None:
    mdtrt_id = hosp.register("P0003")  # balance 50.00
    hosp.visit_info(mdtrt_id, "P0003")
    hosp.upload(mdtrt_id, [hosp.fee(mdtrt_id, "F1", "500.00", psn="P0003")])
    info = hosp.ok("2207", hosp.settle_data(mdtrt_id, "500.00", "P0003"))["setlinfo"]
    assert info["acct_pay"] <= Decimal("50.00")
    assert platform.ledger.persons["P0003"].balance == Decimal("50.00") - info["acct_pay"] == info["balc"]


def test_setlinfo_amounts_are_consistent_decimals(hosp: Hospital) -> None:
    _, _ = hosp.outpatient_settled(("12.34", "56.78", "0.01"))
    info = hosp.ok("5203", {"data": {"psn_no": "P0001", "mdtrt_id": hosp.platform.ledger.settlements[
        next(iter(hosp.platform.ledger.settlements))].mdtrt_id, "setl_id": ""}})["setlinfo"]
    for key in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay"):
        assert isinstance(info[key], Decimal) and info[key] == info[key].quantize(CENT)
    assert info["medfee_sumamt"] == info["fund_pay_sumamt"] + info["psn_part_amt"]
    assert info["psn_part_amt"] == info["acct_pay"] + info["psn_cash_pay"]


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
codes = st.text(alphabet="ABCXYZ0123456789", min_size=1, max_size=8)
rules = st.builds(BenefitRule,
                  deductible=st.decimals(min_value=0, max_value=2000, places=2),
                  pool_ratio=st.decimals(min_value=0, max_value=1, places=4),
                  cap=st.decimals(min_value=0, max_value=100000, places=2))


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.tuples(codes, amounts), min_size=1, max_size=30), rule=rules,
       b_prop=st.decimals(min_value=0, max_value=1, places=2), balance=st.decimals(min_value=0, max_value=10000, places=2),
       acct=st.booleans())
def test_split_is_consistent_and_non_negative_for_any_details_and_policy(items, rule, b_prop, balance, acct) -> None:
    policy = SettlementPolicy(default=rule, b_selfpay_prop=b_prop)
    s = settle(items, insutype="310", med_type="11", acct_used=acct, balance=balance, policy=policy)
    assert s.medfee_sumamt == sum(a for _, a in items)
    assert s.medfee_sumamt == s.fund_pay_sumamt + s.psn_part_amt
    assert s.psn_part_amt == s.acct_pay + s.psn_cash_pay
    assert s.medfee_sumamt == s.fulamt_ownpay_amt + s.preselfpay_amt + s.inscp_scp_amt + s.overlmt_selfpay
    for value in s.amounts().values():
        assert value >= 0 and value == value.quantize(CENT)
    assert s.fund_pay_sumamt <= rule.cap and s.acct_pay <= balance
    assert s.balc == balance - s.acct_pay
    if not acct:
        assert s.acct_pay == 0


def test_default_policy_is_valid() -> None:
    assert DEFAULT_POLICY.rule("310", "21").deductible == Decimal("800")
