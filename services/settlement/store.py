"""The settlement state store: a visit's state is its JSON *and* its charge lines (``fee_lines``, thousands for a
long stay: never rewritten whole), plus — for a 血透 sheet — the inpatient account's pending lines.

The chain engine calls :meth:`SettlementStore.load` and :meth:`SettlementStore.dump` inside its unit of work: the
lines are read with the visit and only the lines that changed are written back, in the same transaction as the
state, the journal and the results. This is the only module of the service that speaks SQL.

Rows belong to the deployment (``fee_lines.scope``: its scoped service name, as ``chain_visits.service``); the
state JSON is sealed with the deployment's data key (it holds mdtrt_cert_no). A line's payload is the canonical
charge-line event: codes, amounts, staff — no personal data of the patient — and stays readable.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from yibao.chains.errors import ConcurrentChange
from yibao.core import clock, money
from yibao.core.db.schema import chain_visits, fee_lines
from yibao.core.deployment import Deployment
from yibao.settlement.hemodialysis import SheetView, claim_marker
from yibao.settlement.lines import FeeLine, FeeLines
from yibao.settlement.results import SERVICE
from yibao.settlement.state import SettlementState, SettleRequest

__all__ = ["SettlementStore", "load_lines"]


def _line(r: Any) -> FeeLine:
    return FeeLine(visit_key=r.visit_key, feedetl_sn=r.feedetl_sn, seq=r.seq, init_feedetl_sn=r.init_feedetl_sn,
                   amount=money.money(r.amount), payload=r.payload, status=r.status, upload_msgid=r.upload_msgid,
                   setl_id=r.setl_id)


def _scope(conn: Connection) -> str:
    return Deployment.of(conn).scoped(SERVICE)


def load_lines(conn: Connection, visit_key: str, *, status: str | None = None) -> list[FeeLine]:
    stmt = select(fee_lines).where(fee_lines.c.scope == _scope(conn), fee_lines.c.visit_key == visit_key)
    if status is not None:
        stmt = stmt.where(fee_lines.c.status == status)
    return [_line(r) for r in conn.execute(stmt.order_by(fee_lines.c.seq))]


class SettlementStore:
    def load(self, conn: Connection, key: str, kind: str, text: str) -> SettlementState:
        st = SettlementState.model_validate_json(Deployment.of(conn).cipher.open(text))
        st._lines = FeeLines(key, load_lines(conn, key))
        accounts = {r.sheet_of for r in st.open_requests() if isinstance(r, SettleRequest) and r.sheet_of}
        for account in sorted(accounts):
            st._sheets[account] = self._sheet(conn, account)
        return st

    def dump(self, conn: Connection, key: str, st: SettlementState) -> str:
        self._write_lines(conn, key, st.lines)
        self._move_sheet_lines(conn, key, st)
        return Deployment.of(conn).cipher.seal(st.model_dump_json())

    # --- lines ------------------------------------------------------------------------------------------------------

    @staticmethod
    def _write_lines(conn: Connection, key: str, lines: FeeLines) -> None:
        now, scope = clock.now(), _scope(conn)
        if lines.added:
            conn.execute(insert(fee_lines), [
                {"scope": scope, "visit_key": key, "feedetl_sn": line.feedetl_sn, "seq": line.seq,
                 "init_feedetl_sn": line.init_feedetl_sn, "amount": line.amount, "payload": line.payload,
                 "status": line.status, "upload_msgid": line.upload_msgid, "setl_id": line.setl_id,
                 "received_at": now, "updated_at": now}
                for line in lines.all() if line.feedetl_sn in lines.added])
        if lines.changed:
            stmt = (update(fee_lines)
                    .where(fee_lines.c.scope == scope, fee_lines.c.visit_key == bindparam("k"),
                           fee_lines.c.feedetl_sn == bindparam("sn"))
                    .values(init_feedetl_sn=bindparam("init"), amount=bindparam("amt"), payload=bindparam("pl"),
                            status=bindparam("st"), upload_msgid=bindparam("um"), setl_id=bindparam("sid"),
                            updated_at=bindparam("at")))
            rows = []
            for sn in sorted(lines.changed):
                line = lines.get(sn)
                assert line is not None
                rows.append({"k": key, "sn": sn, "init": line.init_feedetl_sn, "amt": line.amount,
                             "pl": line.payload, "st": line.status, "um": line.upload_msgid, "sid": line.setl_id,
                             "at": now})
            conn.execute(stmt, rows)
        lines.written()

    # --- 血透 sheets ---------------------------------------------------------------------------------------------

    @staticmethod
    def _sheet(conn: Connection, account: str) -> SheetView:
        row = conn.execute(select(chain_visits.c.state).where(chain_visits.c.service == _scope(conn),
                                                              chain_visits.c.visit_key == account)).first()
        insured = False
        if row is not None:
            state = json.loads(Deployment.of(conn).cipher.open(row.state))
            insured = bool((state.get("person") or {}).get("mdtrt_id")) and not state.get("self_pay")
        return SheetView(account, row is not None, insured, load_lines(conn, account, status="pending"))

    @staticmethod
    def _move_sheet_lines(conn: Connection, key: str, st: SettlementState) -> None:
        """Carry out this unit's claims and releases on the accounts' rows: a claimed line must still be pending
        there (another sheet may have taken it since it was read: then the unit runs again)."""
        if not st.sheet_moves:
            return
        marker, now, scope = claim_marker(key), clock.now(), _scope(conn)
        accounts: set[str] = set()
        for move in st.sheet_moves:
            where = [fee_lines.c.scope == scope, fee_lines.c.visit_key == move.account,
                     fee_lines.c.feedetl_sn == move.feedetl_sn]
            if move.kind == "claim":
                moved = conn.execute(update(fee_lines).where(*where, fee_lines.c.status == "pending").values(
                    status="withdrawn", upload_msgid=marker, updated_at=now)).rowcount
                if moved != 1:
                    raise ConcurrentChange(f"血透 line {move.feedetl_sn} of {move.account} was claimed meanwhile")
            else:
                conn.execute(update(fee_lines).where(*where, fee_lines.c.status == "withdrawn",
                                                     fee_lines.c.upload_msgid == marker)
                             .values(status="pending", upload_msgid=None, updated_at=now))
            accounts.add(move.account)
        for account in sorted(accounts):  # a driver holding the account reloads it
            conn.execute(update(chain_visits).where(chain_visits.c.service == scope,
                                                    chain_visits.c.visit_key == account)
                         .values(version=chain_visits.c.version + 1, updated_at=now))
        st.sheet_moves.clear()
