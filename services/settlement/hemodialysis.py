"""血透 (seed 000 §6.3): an inpatient pre-settlement sheet settled at outpatient, the result backfilled.

Foshan lets hemodialysis patients be treated first and pay afterwards: the charges accumulate on an *inpatient*
account (a self-pay admission on the HIS side, never admitted with 医保 by 2401), the account's pre-settlement
sheet is sent to the outpatient cashier "pending settlement", settled there through 医保 as an outpatient visit
(2204 → 2206 → 2207 under the outpatient visit's mdtrt_id), and the result is backfilled to the inpatient
account for clearing and the invoice. The outpatient side keeps no business data of its own.

How this service does it:

* **the request** — a ``SettlementRequested`` on the outpatient 血透 visit names the inpatient account in
  ``sheet_of_visit_id`` (the HIS mapping fills it, e.g. from a column of its settlement-request table). The
  earlier convention — the account in the request id, ``his_request_id = "hd:<inpatient his_visit_id>:<sheet
  no>"`` — is still understood for one release when the field is empty (deprecated; see :func:`sheet_of`);
* **the sheet** — the account's pending lines (``fee_lines`` of the inpatient visit). The outpatient visit
  *claims* them: each line moves, by a conditional update (two sheets can never claim one line), from the
  account (status ``withdrawn``, ``upload_msgid`` = the claim marker) to a copy on the outpatient visit that
  carries ``_yibao.sheet_of``. The copies go up with 2204 like any outpatient line;
* **the backfill** — the ``settled`` and ``refunded`` HisResults are keyed by, and name, the *inpatient* account
  (``visit_kind`` inpatient, ``detail.hemodialysis``): that is where HIS clears and invoices; exactly one result per
  settlement, so reconciliation never counts it twice. Rejections answer the outpatient request where it was asked;
* **undoing** — a refund (2208 → 2205) or an unwind (退号: 2205) *releases* the copies: the account's lines are
  pending again, ready for the next sheet;
* an account that registration admitted with 医保 (it has an mdtrt_id) is settled as an inpatient, never as a sheet.

Claims and releases are decided here on the visit's state (pure); the settlement state store reads the account's
:class:`SheetView` with the visit and carries the moves out on the account's rows in the same transaction — a line
another sheet claimed meanwhile makes the unit of work run again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from yibao.core.results import stable_id
from yibao.hisevents.models import SettlementRequested
from yibao.settlement.lines import FeeLine

if TYPE_CHECKING:
    from yibao.settlement.state import SettlementState

__all__ = ["SHEET_PREFIX", "SheetView", "SheetMove", "sheet_of", "claim_marker", "account_refusal", "claim_sheet",
           "release_sheet", "sheet_detail"]

SHEET_PREFIX = "hd:"


@dataclass
class SheetView:
    """An inpatient account as the 血透 outpatient visit settling its sheet sees it (read by the state store)."""

    account: str
    known: bool  #: the account has a visit (a line or an event arrived)
    admitted_with_insurance: bool  #: registration admitted it with 医保 (it has an mdtrt_id, not self-pay)
    pending: list[FeeLine] = field(default_factory=list)  #: its lines not claimed by any sheet, in order


@dataclass(frozen=True)
class SheetMove:
    """A line moved between an account and the outpatient visit, for the store to carry out on the account."""

    kind: str  #: claim | release
    account: str
    feedetl_sn: str


def sheet_of(request: SettlementRequested | str) -> str | None:
    """The inpatient account whose 血透 sheet a settlement request settles, else None: its ``sheet_of_visit_id``;
    when that is empty, the deprecated request-id convention ``hd:<inpatient visit id>:<sheet no>`` (accepted
    for one release, so mappings written for it keep working while they move to the field)."""
    if isinstance(request, SettlementRequested):
        if request.sheet_of_visit_id:
            return request.sheet_of_visit_id
        request = request.his_request_id
    if not request.startswith(SHEET_PREFIX):
        return None
    account, sep, sheet = request[len(SHEET_PREFIX):].rpartition(":")
    return account if sep and account and sheet else None


def claim_marker(outpatient_key: str) -> str:
    """What the account's claimed lines carry in ``upload_msgid`` (≤ 40 characters, no personal data)."""
    return SHEET_PREFIX + stable_id("hemodialysis", outpatient_key)[:24]


def account_refusal(view: SheetView) -> str | None:
    """Why an inpatient account cannot be settled as a 血透 sheet (None: it can)."""
    if view.admitted_with_insurance:
        return (f"血透 sheet: the inpatient account {view.account} is admitted with 医保 (mdtrt_id known); "
                "settle it as an inpatient visit (2303/2304)")
    return None


def claim_sheet(state: SettlementState, account: str) -> list[str]:
    """Move the account's pending lines to the outpatient visit (copies carrying ``_yibao.sheet_of``); returns the
    claimed feedetl_sns."""
    view = state.sheets.get(account)
    if view is None:
        return []
    claimed = []
    for line in view.pending:
        payload = json.loads(line.payload)
        payload["_yibao"] = {**(payload.get("_yibao") or {}), "sheet_of": account}
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        state.lines.put(line.feedetl_sn, init_feedetl_sn=line.init_feedetl_sn, amount=line.amount, payload=text)
        state.sheet_moves.append(SheetMove("claim", account, line.feedetl_sn))
        claimed.append(line.feedetl_sn)
    view.pending = []
    return claimed


def release_sheet(state: SettlementState, lines: Iterable[FeeLine]) -> int:
    """Give sheet lines back to their accounts (pending there again); the outpatient copies are withdrawn. Lines
    of the outpatient visit's own are left alone. Returns how many go back."""
    back = 0
    for line in lines:
        account = line.extra().get("sheet_of")
        if not account:
            continue
        state.lines.set_status([line.feedetl_sn], "withdrawn")
        state.sheet_moves.append(SheetMove("release", account, line.feedetl_sn))
        back += 1
    return back


def sheet_detail(outpatient_key: str, account_key: str, request_id: str) -> dict[str, object]:
    """``HisResult.detail`` of a backfilled result."""
    return {"hemodialysis": {"outpatient_visit_id": outpatient_key, "inpatient_visit_id": account_key,
                             "request_id": request_id}}
