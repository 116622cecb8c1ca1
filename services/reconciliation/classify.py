"""Sorting the rows of a 3202 result into the four difference classes, with the hospital's side attached.

The class comes from the row's stmt_rslt through the configured code table (settings ``row_codes``; the
national codes: 1 platform-only, 2 HIS-only, 3 amount mismatch, 4 status mismatch). The hospital's side of each
difference (its amounts, channel, HIS visit) is looked up in the ledger by setl_id, a batch at a time, so the
ledger is never loaded whole.

* ``platform_only`` — the platform holds an entry HIS does not: the classic 单边账 after a timeout.
* ``his_only`` — HIS holds an entry the platform does not (never booked, or reversed by 2601).
* ``amount_mismatch`` — both hold it, medfee_sumamt, fund_pay_sumamt or acct_pay differ.
* ``status_mismatch`` — the refd_setl_flag differs, or the platform cancelled a settlement whose cancellation
  HIS never recorded (reported on the settlement's row).

A row whose class contradicts the ledger (a "platform-only" setl_id the ledger holds in another key or period)
keeps the platform's class and says so in its memo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from .result_file import ResultRow
from .statement import EntryLike

__all__ = ["Difference", "classify", "LocalLookup", "DIFFERENCE_LABELS"]

#: how each class is called in reports (English, 中文)
DIFFERENCE_LABELS: dict[str, tuple[str, str]] = {
    "platform_only": ("Platform only (单边账)", "平台有医院无"),
    "his_only": ("HIS only", "医院有平台无"),
    "amount_mismatch": ("Amount mismatch", "金额不一致"),
    "status_mismatch": ("Status mismatch", "状态不一致"),
    # the mobile-pay reconciliation's own classes (yibao.reconciliation.mobile)
    "mp_paid_not_in_his": ("Mobile: paid on the platform, not in HIS (单边账)", "移动支付 平台已付 医院无"),
    "mp_in_his_not_paid": ("Mobile: paid in HIS, not on the platform (单边账)", "移动支付 医院有 平台未付"),
    "mp_amount_mismatch": ("Mobile: amounts differ", "移动支付 金额不一致"),
    "mp_refund_not_in_his": ("Mobile: refunded on the platform, not in HIS", "移动支付 平台已退 医院无"),
    "mp_refund_not_on_platform": ("Mobile: refunded in HIS, not on the platform", "移动支付 医院已退 平台无"),
    "mp_refund_only_in_his": ("Mobile: refunded by hand in HIS, still paid on the platform",
                              "移动支付 医院手工退费 平台仍已付"),
    "mp_cash_refund_only_in_his": ("Mobile: WeChat cash-only order refunded by hand in HIS, still paid in WeChat Pay",
                                   "微信纯自费 医院手工退费 微信仍已付"),
    "mp_cash_not_in_his": ("Mobile: cash collected in WeChat Pay, not in HIS", "微信医保 现金已收 医院无"),
    "mp_cash_mismatch": ("Mobile: WeChat cash differs from HIS", "微信医保 现金金额不一致"),
    "mp_wechat_refund_not_in_his": ("Mobile: refunded in WeChat Pay, not in HIS", "微信医保 微信已退 医院无"),
    "mp_wechat_refund_not_on_wechat": ("Mobile: refunded in HIS, not in WeChat Pay", "微信医保 医院已退 微信无"),
    "mp_wechat_refund_mismatch": ("Mobile: WeChat refund differs from HIS", "微信医保 退款金额不一致"),
}


class _Local(EntryLike, Protocol):  # the attributes classification reads from a ledger entry
    setl_id: str
    his_visit_id: str
    channel: str
    mdtrt_id: str | None
    psn_no: str | None


LocalLookup = Callable[[Sequence[str]], Mapping[str, _Local]]


@dataclass(frozen=True)
class Difference:
    diff_class: str
    row_code: str
    clr_type: str
    setl_optins: str
    setl_id: str
    mdtrt_id: str | None
    psn_no: str | None
    msgid: str | None
    refd_setl_flag: str | None
    memo: str | None
    channel: str = "national"
    his_visit_id: str | None = None
    his_medfee_sumamt: Decimal | None = None
    his_fund_pay_sumamt: Decimal | None = None
    his_acct_pay: Decimal | None = None
    plat_medfee_sumamt: Decimal | None = None
    plat_fund_pay_sumamt: Decimal | None = None
    plat_acct_pay: Decimal | None = None


def _memo(row: ResultRow, local: _Local | None) -> str | None:
    memo = row.memo
    if row.diff_class == "platform_only" and local is not None:
        note = "the hospital ledger holds this setl_id in another key or period"
        memo = f"{memo}; {note}" if memo else note
    if row.diff_class in ("his_only", "amount_mismatch", "status_mismatch") and local is None:
        note = "not found in the hospital ledger"
        memo = f"{memo}; {note}" if memo else note
    return memo


def classify(rows: Iterable[ResultRow], lookup: LocalLookup, *, clr_type: str, setl_optins: str,
             batch: int = 500) -> list[Difference]:
    """The differences of one 3202 (one clr_type × setl_optins), in the result file's order."""
    rows = list(rows)
    out: list[Difference] = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        local = lookup([r.setl_id for r in chunk])
        for row in chunk:
            entry = local.get(row.setl_id)
            out.append(Difference(
                diff_class=row.diff_class, row_code=row.stmt_rslt, clr_type=clr_type, setl_optins=setl_optins,
                setl_id=row.setl_id,
                mdtrt_id=row.mdtrt_id or (entry.mdtrt_id if entry is not None else None),
                psn_no=row.psn_no or (entry.psn_no if entry is not None else None),
                msgid=row.msgid, refd_setl_flag=row.refd_setl_flag or (entry.refd_setl_flag if entry else None),
                memo=_memo(row, entry),
                channel=entry.channel if entry is not None else "national",
                his_visit_id=entry.his_visit_id if entry is not None else None,
                his_medfee_sumamt=entry.medfee_sumamt if entry is not None else None,
                his_fund_pay_sumamt=entry.fund_pay_sumamt if entry is not None else None,
                his_acct_pay=entry.acct_pay if entry is not None else None,
                plat_medfee_sumamt=row.medfee_sumamt, plat_fund_pay_sumamt=row.fund_pay_sumamt,
                plat_acct_pay=row.acct_pay,
            ))
    return out
