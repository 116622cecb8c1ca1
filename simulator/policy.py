"""The settlement policy: a configurable, deterministic stand-in for a region's benefit rules.

Real benefit rules are long; the simulator needs rules that are simple, documented and deterministic, so a
test can predict every cent. For each fee item a class is derived from ``med_list_codg`` (甲 fully covered,
乙 covered after a share paid first by the patient, 丙 not covered); per (insutype, med_type) a rule gives the
deductible (起付线), the pooled-fund ratio and a cap per settlement. The personal account (acct_used_flag=1)
pays the patient's part up to the balance. Every amount is Decimal, rounded half-up to cents, and the split
always satisfies::

    medfee_sumamt = fund_pay_sumamt + psn_part_amt,   psn_part_amt = acct_pay + psn_cash_pay
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, Field

from yibao.core.money import ZERO, money

__all__ = [
    "ItemClass",
    "BenefitRule",
    "SettlementPolicy",
    "ItemSplit",
    "Split",
    "classify",
    "split_item",
    "settle",
    "DEFAULT_POLICY",
]


class ItemClass:
    """chrgitm_lv as the platform answers it: 01 甲类, 02 乙类, 03 丙类 (自费)."""

    A = "01"
    B = "02"
    C = "03"


class BenefitRule(BaseModel):
    deductible: Decimal = Field(Decimal("0"), ge=0, description="起付线 per settlement")
    pool_ratio: Decimal = Field(Decimal("0.5"), ge=0, le=1, description="share of the eligible amount the fund pays")
    cap: Decimal = Field(Decimal("10000"), ge=0, description="fund payment cap per settlement")


class SettlementPolicy(BaseModel):
    """Rules keyed "insutype/med_type", then "insutype/*", then the default rule."""

    rules: dict[str, BenefitRule] = Field(default_factory=dict)
    default: BenefitRule = Field(default_factory=BenefitRule)
    #: 乙类 items: the share the patient pays first (先行自付比例)
    b_selfpay_prop: Decimal = Field(Decimal("0.1"), ge=0, le=1)
    #: how many of ten hash buckets are 甲 / 乙 (the rest 丙)
    a_buckets: int = Field(6, ge=0, le=10)
    b_buckets: int = Field(3, ge=0, le=10)
    #: explicit classes for given med_list_codg (override the hash)
    item_classes: dict[str, str] = Field(default_factory=dict)
    #: fund_pay_type of the pooled fund per insutype (setldetail)
    fund_pay_types: dict[str, str] = Field(default_factory=lambda: {"310": "310100", "390": "390100"})

    def rule(self, insutype: str, med_type: str) -> BenefitRule:
        return self.rules.get(f"{insutype}/{med_type}") or self.rules.get(f"{insutype}/*") or self.default


DEFAULT_POLICY = SettlementPolicy(
    rules={
        # 职工 (310): outpatient without deductible, inpatient with one
        "310/11": BenefitRule(deductible=Decimal("0"), pool_ratio=Decimal("0.5"), cap=Decimal("300")),
        "310/21": BenefitRule(deductible=Decimal("800"), pool_ratio=Decimal("0.85"), cap=Decimal("500000")),
        "310/*": BenefitRule(deductible=Decimal("200"), pool_ratio=Decimal("0.6"), cap=Decimal("5000")),
        # 居民 (390)
        "390/11": BenefitRule(deductible=Decimal("0"), pool_ratio=Decimal("0.4"), cap=Decimal("150")),
        "390/21": BenefitRule(deductible=Decimal("600"), pool_ratio=Decimal("0.7"), cap=Decimal("300000")),
        "390/*": BenefitRule(deductible=Decimal("300"), pool_ratio=Decimal("0.5"), cap=Decimal("3000")),
    }
)


def classify(med_list_codg: str, policy: SettlementPolicy = DEFAULT_POLICY) -> str:
    """甲/乙/丙 of an item: explicit override, else a stable hash bucket of the code (same on every run)."""
    if med_list_codg in policy.item_classes:
        return policy.item_classes[med_list_codg]
    bucket = hashlib.sha256(med_list_codg.encode("utf-8")).digest()[0] % 10
    if bucket < policy.a_buckets:
        return ItemClass.A
    if bucket < policy.a_buckets + policy.b_buckets:
        return ItemClass.B
    return ItemClass.C


@dataclass(frozen=True)
class ItemSplit:
    """One fee item's split (the 2204/2301 result line)."""

    amount: Decimal
    item_class: str
    selfpay_prop: Decimal
    fulamt_ownpay_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    overlmt_amt: Decimal = ZERO


def split_item(med_list_codg: str, amount: Decimal, policy: SettlementPolicy = DEFAULT_POLICY) -> ItemSplit:
    amount = money(amount)
    cls = classify(med_list_codg, policy)
    if cls == ItemClass.A:
        return ItemSplit(amount, cls, Decimal("0"), ZERO, ZERO, amount)
    if cls == ItemClass.B:
        pre = money(amount * policy.b_selfpay_prop)
        return ItemSplit(amount, cls, policy.b_selfpay_prop, ZERO, pre, amount - pre)
    return ItemSplit(amount, cls, Decimal("1"), amount, ZERO, ZERO)


@dataclass(frozen=True)
class Split:
    """A settlement's amounts (field names as in setlinfo)."""

    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_selfpay: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    pool_prop_selfpay: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    balc: Decimal
    cap: Decimal

    def amounts(self) -> dict[str, Decimal]:
        return {k: v for k, v in self.__dict__.items() if k != "cap"}


def settle(
    items: Iterable[tuple[str, Decimal]],
    *,
    insutype: str,
    med_type: str,
    acct_used: bool,
    balance: Decimal,
    policy: SettlementPolicy = DEFAULT_POLICY,
) -> Split:
    """Split the given (med_list_codg, amount) items. Pure: nothing is committed."""
    rule = policy.rule(insutype, med_type)
    parts = [split_item(code, amt, policy) for code, amt in items]
    medfee = sum((p.amount for p in parts), ZERO)
    fulamt = sum((p.fulamt_ownpay_amt for p in parts), ZERO)
    pre = sum((p.preselfpay_amt for p in parts), ZERO)
    inscp = sum((p.inscp_scp_amt for p in parts), ZERO)
    overlmt = sum((p.overlmt_amt for p in parts), ZERO)
    dedc = min(money(rule.deductible), inscp)
    base = inscp - dedc
    hifp = min(money(base * rule.pool_ratio), money(rule.cap))
    pool_selfpay = base - hifp
    fund = hifp
    psn_part = medfee - fund
    acct = min(max(money(balance), ZERO), psn_part) if acct_used else ZERO
    cash = psn_part - acct
    return Split(
        medfee_sumamt=money(medfee),
        fulamt_ownpay_amt=money(fulamt),
        overlmt_selfpay=money(overlmt),
        preselfpay_amt=money(pre),
        inscp_scp_amt=money(inscp),
        act_pay_dedc=money(dedc),
        hifp_pay=money(hifp),
        pool_prop_selfpay=money(pool_selfpay),
        fund_pay_sumamt=money(fund),
        psn_part_amt=money(psn_part),
        acct_pay=money(acct),
        psn_cash_pay=money(cash),
        balc=money(money(balance) - acct),
        cap=money(rule.cap),
    )
