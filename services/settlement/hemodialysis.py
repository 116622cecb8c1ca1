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
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import Connection, func, insert, select, update

from yibao.core import clock
from yibao.core.db.schema import chain_visits, fee_lines
from yibao.core.results import stable_id
from yibao.hisevents.models import SettlementRequested
from yibao.settlement.lines import FeeLine

__all__ = ["SHEET_PREFIX", "sheet_of", "claim_marker", "account_refusal", "claim_sheet", "release_sheet",
           "sheet_detail"]

SHEET_PREFIX = "hd:"


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


def account_refusal(conn: Connection, service: str, account_key: str) -> str | None:
    """Why an inpatient account cannot be settled as a 血透 sheet (None: it can)."""
    row = conn.execute(select(chain_visits.c.state, chain_visits.c.visit_kind).where(
        chain_visits.c.service == service, chain_visits.c.visit_key == account_key)).first()
    if row is None:
        return None  # no line has arrived yet: the request waits for the sheet like any settlement
    state = json.loads(row.state)
    person = state.get("person") or {}
    if person.get("mdtrt_id") and not state.get("self_pay"):
        return (f"血透 sheet: the inpatient account {account_key} is admitted with 医保 (mdtrt_id known); "
                "settle it as an inpatient visit (2303/2304)")
    return None


def claim_sheet(conn: Connection, outpatient_key: str, account_key: str) -> list[str]:
    """Move the account's pending lines to the outpatient visit; returns the claimed feedetl_sns."""
    marker = claim_marker(outpatient_key)
    rows = conn.execute(select(fee_lines).where(fee_lines.c.visit_key == account_key,
                                                fee_lines.c.status == "pending").order_by(fee_lines.c.seq)).all()
    claimed: list[str] = []
    now = clock.now()
    for row in rows:
        moved = conn.execute(update(fee_lines).where(
            fee_lines.c.visit_key == account_key, fee_lines.c.feedetl_sn == row.feedetl_sn,
            fee_lines.c.status == "pending").values(status="withdrawn", upload_msgid=marker, updated_at=now))
        if moved.rowcount != 1:
            continue  # another sheet took it meanwhile
        payload = json.loads(row.payload)
        payload["_yibao"] = {**(payload.get("_yibao") or {}), "sheet_of": account_key}
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        mine = conn.execute(select(fee_lines.c.status).where(fee_lines.c.visit_key == outpatient_key,
                                                             fee_lines.c.feedetl_sn == row.feedetl_sn)).first()
        if mine is None:
            seq = conn.execute(select(func.coalesce(func.max(fee_lines.c.seq), 0))
                               .where(fee_lines.c.visit_key == outpatient_key)).scalar_one()
            conn.execute(insert(fee_lines).values(
                visit_key=outpatient_key, feedetl_sn=row.feedetl_sn, seq=int(seq) + 1,
                init_feedetl_sn=row.init_feedetl_sn, amount=row.amount, payload=text, status="pending",
                received_at=now, updated_at=now))
        else:  # claimed before, released since (a refund or an unwind): take it up again
            conn.execute(update(fee_lines).where(fee_lines.c.visit_key == outpatient_key,
                                                 fee_lines.c.feedetl_sn == row.feedetl_sn).values(
                init_feedetl_sn=row.init_feedetl_sn, amount=row.amount, payload=text, status="pending",
                upload_msgid=None, setl_id=None, updated_at=now))
        claimed.append(row.feedetl_sn)
    return claimed


def release_sheet(conn: Connection, outpatient_key: str, lines: Iterable[FeeLine]) -> int:
    """Give sheet lines back to their accounts (pending there again); the outpatient copies are withdrawn.
    Lines of the outpatient visit's own are left alone. Returns how many went back."""
    marker = claim_marker(outpatient_key)
    now = clock.now()
    back = 0
    for line in lines:
        account = line.extra().get("sheet_of")
        if not account:
            continue
        conn.execute(update(fee_lines).where(fee_lines.c.visit_key == outpatient_key,
                                             fee_lines.c.feedetl_sn == line.feedetl_sn)
                     .values(status="withdrawn", updated_at=now))
        back += conn.execute(update(fee_lines).where(
            fee_lines.c.visit_key == account, fee_lines.c.feedetl_sn == line.feedetl_sn,
            fee_lines.c.status == "withdrawn", fee_lines.c.upload_msgid == marker)
            .values(status="pending", upload_msgid=None, updated_at=now)).rowcount
    return back


def sheet_detail(outpatient_key: str, account_key: str, request_id: str) -> dict[str, object]:
    """``HisResult.detail`` of a backfilled result."""
    return {"hemodialysis": {"outpatient_visit_id": outpatient_key, "inpatient_visit_id": account_key,
                             "request_id": request_id}}
