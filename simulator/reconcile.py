"""3201 对总账 and 3202 对明细账 against the platform's own ledger.

What is compared (documented here because services/reconciliation reads it):

* The ledger entries of an institution are its settlements (refd_setl_flag "0", positive amounts, dated by
  settlement time) and its cancellations (2208/2305: refd_setl_flag "1", their own setl_id, negative amounts,
  dated by cancellation time). A settlement cancelled later still counts as a "0" entry on its own day.
  Entries reversed by 2601 do not exist.
* 3201: entries with insutype, clr_type and clr_optins = setl_optins, dated within stmt_begndate ~
  stmt_enddate (whole days); refd_setl_flag "0" selects settlements, "1" cancellations, empty both (net).
  medfee_sumamt, fund_pay_sumamt, acct_pay are summed, fixmedins_setl_cnt counts entries. stmt_rslt "0" when
  all four agree, "1" otherwise (stmt_rslt_dscr says which differ).
* 3202: the same selection without insutype (3202 has none), compared row by row with the uploaded detail file
  (rows setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt, acct_pay, refd_setl_flag) by setl_id.
  Result file: a zip of one TXT, rows psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo; one
  row per setl_id of either side, with the codes of :data:`STMT_ROW_RESULTS`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.core.money import ZERO, money

from .calls import Call, amount, block, need, opt
from .files import read_txt_zip, store_file, txt_zip
from .state import Settlement

__all__ = [
    "STMT_BALANCED",
    "STMT_UNBALANCED",
    "STMT_ROW_RESULTS",
    "ROW_CONSISTENT",
    "ROW_PLATFORM_ONLY",
    "ROW_HOSPITAL_ONLY",
    "ROW_AMOUNT_DIFFERS",
    "ROW_STATUS_DIFFERS",
    "DETAIL_FILE_COLUMNS",
    "RESULT_FILE_COLUMNS",
    "select_entries",
    "register",
]

STMT_BALANCED = "0"
STMT_UNBALANCED = "1"

ROW_CONSISTENT = "0"
ROW_PLATFORM_ONLY = "1"
ROW_HOSPITAL_ONLY = "2"
ROW_AMOUNT_DIFFERS = "3"
ROW_STATUS_DIFFERS = "4"

#: per-row result codes of the 3202 result file
STMT_ROW_RESULTS: dict[str, str] = {
    ROW_CONSISTENT: "一致: both sides hold the entry with the same amounts and flag",
    ROW_PLATFORM_ONLY: "平台有、医院无: the platform holds the entry, the hospital's file does not (单边账)",
    ROW_HOSPITAL_ONLY: "医院有、平台无: the hospital's file holds an entry the platform does not (or it was 冲正)",
    ROW_AMOUNT_DIFFERS: "金额不一致: medfee_sumamt, fund_pay_sumamt or acct_pay differ",
    ROW_STATUS_DIFFERS: (
        "状态不一致: refd_setl_flag differs, or the platform cancelled the settlement and the hospital's file "
        "has no row for that cancellation"
    ),
}

DETAIL_FILE_COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag")
RESULT_FILE_COLUMNS = ("psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag", "memo")
_COMPARED = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")


def _period(call: Call, data: dict[str, Any]) -> tuple[dt.date, dt.date]:
    try:
        begin = dt.date.fromisoformat(need(call, data, "stmt_begndate")[:10])
        end = dt.date.fromisoformat(need(call, data, "stmt_enddate")[:10])
    except ValueError:
        raise call.refuse("data.stmt_begndate/stmt_enddate: must be yyyy-MM-dd") from None
    if end < begin:
        raise call.refuse("data.stmt_enddate: before stmt_begndate")
    return begin, end


def select_entries(entries: list[Settlement], *, fixmedins_code: str, clr_type: str, setl_optins: str,
                   begin: dt.date, end: dt.date, refd_setl_flag: str = "", insutype: str = "") -> list[Settlement]:
    # whole Shanghai days as an aware [start, stop) range: one comparison per entry (a ledger may hold millions)
    start = dt.datetime.combine(begin, dt.time(0), tzinfo=clock.SHANGHAI)
    stop = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=clock.SHANGHAI)

    def in_period(when: dt.datetime) -> bool:
        return start <= (when if when.tzinfo is not None else when.replace(tzinfo=clock.SHANGHAI)) < stop

    return [
        e for e in entries
        if e.clr_type == clr_type and e.clr_optins == setl_optins and e.fixmedins_code == fixmedins_code
        and (not insutype or e.insutype == insutype) and (not refd_setl_flag or e.refd_setl_flag == refd_setl_flag)
        and e.status != "reversed" and in_period(e.setl_time)
    ]


def h3201(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    insutype = need(call, data, "insutype")
    clr_type = need(call, data, "clr_type")
    setl_optins = need(call, data, "setl_optins")
    flag = opt(call, data, "refd_setl_flag")
    if flag not in {"", "0", "1"}:
        raise call.refuse("data.refd_setl_flag: must be 0, 1 or empty")
    begin, end = _period(call, data)
    claimed = {k: money(amount(call, data, k)) for k in _COMPARED}
    count = amount(call, data, "fixmedins_setl_cnt", scale=4)
    entries = select_entries(list(call.platform.ledger.settlements.values()), fixmedins_code=call.fixmedins_code,
                             clr_type=clr_type, setl_optins=setl_optins, begin=begin, end=end,
                             refd_setl_flag=flag, insutype=insutype)
    ours = {k: money(sum((e.amounts.get(k, ZERO) for e in entries), ZERO)) for k in _COMPARED}
    differences = [f"{k}: 医院 {claimed[k]} 平台 {ours[k]}" for k in _COMPARED if claimed[k] != ours[k]]
    if count != Decimal(len(entries)):
        differences.append(f"fixmedins_setl_cnt: 医院 {count.normalize()} 平台 {len(entries)}")
    call.record.effect = {"kind": "statement", "balanced": not differences}
    return {"stmtinfo": {
        "setl_optins": setl_optins,
        "stmt_rslt": STMT_UNBALANCED if differences else STMT_BALANCED,
        "stmt_rslt_dscr": "; ".join(differences) if differences else "对账平",
    }}


def _row_amounts(call: Call, row: list[str | None], index: int) -> dict[str, Decimal]:
    amounts = {}
    for pos, key in ((3, "medfee_sumamt"), (4, "fund_pay_sumamt"), (5, "acct_pay")):
        try:
            amounts[key] = money(Decimal(row[pos] or "0"))
        except Exception:  # noqa: BLE001
            raise call.refuse(f"detail file row {index + 1}: {key} is not a decimal number") from None
    return amounts


def h3202(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    setl_optins = need(call, data, "setl_optins")
    clr_type = need(call, data, "clr_type")
    flag = opt(call, data, "refd_setl_flag")
    begin, end = _period(call, data)
    file_qury_no = need(call, data, "file_qury_no")
    ledger = call.platform.ledger
    stored = ledger.files.get(file_qury_no)
    if stored is None or stored.fixmedins_code != call.fixmedins_code or stored.origin != "upload":
        raise call.refuse("data.file_qury_no: no such uploaded file (9101 first)")
    try:
        file_rows = read_txt_zip(stored.content)
    except ValueError as exc:
        raise call.refuse(f"detail file: {exc}") from None
    hospital: dict[str, tuple[list[str | None], dict[str, Decimal]]] = {}
    for i, row in enumerate(file_rows):
        if i == 0 and row and row[0] == "setl_id":
            continue  # a header line is tolerated
        if len(row) < len(DETAIL_FILE_COLUMNS):
            raise call.refuse(f"detail file row {i + 1}: expected {len(DETAIL_FILE_COLUMNS)} tab-separated columns")
        if not row[0]:
            raise call.refuse(f"detail file row {i + 1}: setl_id is empty")
        if row[0] in hospital:
            raise call.refuse(f"detail file row {i + 1}: setl_id repeated")
        hospital[row[0]] = (row, _row_amounts(call, row, i))
    entries = select_entries(list(ledger.settlements.values()), fixmedins_code=call.fixmedins_code,
                             clr_type=clr_type, setl_optins=setl_optins, begin=begin, end=end, refd_setl_flag=flag)
    platform = {e.setl_id: e for e in entries}
    results: list[tuple[Any, ...]] = []
    cancelled_unseen: dict[str, Settlement] = {}  # original setl_id -> its cancellation the hospital lacks
    for e in entries:
        if e.refd_setl_flag == "1" and e.setl_id not in hospital and e.orig_setl_id in hospital:
            cancelled_unseen[e.orig_setl_id] = e
    for setl_id, e in platform.items():
        if setl_id in hospital:
            row, theirs = hospital[setl_id]
            ours = {k: money(e.amounts.get(k, ZERO)) for k in _COMPARED}
            if (row[6] or "0") != e.refd_setl_flag:
                code, memo = ROW_STATUS_DIFFERS, f"refd_setl_flag: 医院 {row[6]} 平台 {e.refd_setl_flag}"
            elif theirs != ours:
                diffs = [f"{k}: 医院 {theirs[k]} 平台 {ours[k]}" for k in _COMPARED if theirs[k] != ours[k]]
                code, memo = ROW_AMOUNT_DIFFERS, "; ".join(diffs)
            elif setl_id in cancelled_unseen:
                c = cancelled_unseen[setl_id]
                code, memo = ROW_STATUS_DIFFERS, f"平台已撤销 (cancellation setl_id {c.setl_id}), 医院未撤销"
            else:
                code, memo = ROW_CONSISTENT, "一致"
        else:
            if e.refd_setl_flag == "1" and e.orig_setl_id in cancelled_unseen:
                continue  # reported on the original's row as a status difference
            code, memo = ROW_PLATFORM_ONLY, "平台有医院无"
        results.append((e.psn_no, e.mdtrt_id, setl_id, e.msgid, code, e.refd_setl_flag, memo))
    for setl_id, (row, _amounts) in hospital.items():
        if setl_id not in platform:
            results.append((row[2], row[1], setl_id, None, ROW_HOSPITAL_ONLY, row[6] or "0", "医院有平台无"))
    name = f"{call.platform.new_id()}_3202.zip"
    result_no = call.platform.new_id(10)
    stored_result = store_file(ledger.files, file_qury_no=result_no, filename=name,
                               fixmedins_code=call.fixmedins_code, content=txt_zip(name[:-4] + ".txt", results),
                               now=call.now, ttl_s=call.platform.settings.file_ttl_s, origin="3202")
    call.record.effect = {"kind": "statement_detail", "file_qury_no": result_no}
    return {"fileinfo": {"file_qury_no": result_no, "filename": name,
                         "dld_endtime": clock.format_datetime(stored_result.expires)}}


def register(handlers: dict[str, Any]) -> None:
    handlers.update({"3201": h3201, "3202": h3202})
