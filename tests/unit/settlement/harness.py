"""Imported as ``unit.settlement.harness``. A settlement chain on SQLite driven by the real ChainEngine against the in-process simulator, with helpers
that play the other parties: the HIS (canonical events), registration (2201/2203 or 2401/2402 on the platform,
then VisitFacts) — and read what settlement said back (the outbox)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import json
from typing import Any

from sqlalchemy import Engine, select

from yibao.chains.engine import ChainEngine, EngineSettings
from yibao.core import clock
from yibao.core.db.schema import chain_calls, chain_visits, fee_lines, outbox
from yibao.core.results import HisResult, SettlementFact, VisitFact, stable_id
from yibao.hisevents.models import ChargeLineAdded, ChargeLineReversed, RefundRequested, SettlementRequested
from yibao.envelope.catalog import Catalog
from yibao.settlement.absorb import absorb_his_event, absorb_visit_fact
from yibao.settlement.chain import SettlementChain
from yibao.settlement.config import ChainConfig
from yibao.settlement.settings import SettlementSettings
from yibao.settlement.state import SettlementState
from yibao.simulator import Simulator

from unit.settlement import his_events as ev
from unit.settlement.platform_standin import SimClient

__all__ = ["Harness", "Patient"]

_ids = itertools.count(1)


class Patient:
    """A person the simulator knows, and a visit of theirs."""

    def __init__(self, person: Any, visit_key: str, kind: str) -> None:
        self.person = person
        self.key = visit_key
        self.kind = kind
        self.mdtrt_id: str | None = None

    @property
    def psn_no(self) -> str:
        return self.person.psn_no


class Harness:
    def __init__(self, db: Engine, sim: Simulator, engine: dict[str, Any] | None = None, **settings: Any) -> None:
        self.db = db
        self.sim = sim
        self.client = SimClient(sim)
        self.settings = SettlementSettings(**{"detail_batch_size": 50, "lines_wait_s": 300.0, "order_window_s": 0.0,
                                              **settings})
        catalog = Catalog.load(None)
        self.chain = SettlementChain(ChainConfig.from_settings(self.settings), catalog=catalog)
        self.engine = ChainEngine(self.chain, db=self._run_db, client=self.client, catalog=catalog,
                                  settings=EngineSettings(**{"retry_backoff_s": 0.0, "max_attempts": 4,
                                                                     **(engine or {})}))
        self._persons = iter([p for p in sim.ledger.persons.values() if p.insutype == "310" and p.balance > 100])
        self._visits = itertools.count(1)

    async def _run_db(self, fn):  # type: ignore[no-untyped-def]
        def unit():  # type: ignore[no-untyped-def]
            with self.db.begin() as conn:
                return fn(conn)

        return await asyncio.to_thread(unit)

    # --- messages in --------------------------------------------------------------------------------------------

    def absorb(self, absorption: Any) -> bool:
        with self.db.begin() as conn:
            flags, after = self.engine.absorb_in(conn, [absorption])
        for fn in after:
            fn()
        return flags[0]

    def his(self, event: Any) -> bool:
        return self.absorb(absorb_his_event(event.to_json()))

    def fact(self, p: Patient, kind: str, **fields: Any) -> VisitFact:
        fact = VisitFact(message_id=stable_id("test", p.key, kind, next(_ids)), his_visit_id=p.key,
                         visit_kind=p.kind, kind=kind, **fields)  # type: ignore[arg-type]
        self.absorb(absorb_visit_fact(fact.to_json()))
        return fact

    async def drain(self) -> None:
        await self.engine.drain(timeout=30)

    # --- the state, as the engine sees it -----------------------------------------------------------------------

    def decide(self, p: Patient, *, after_s: float = 0.0) -> Any:
        """What the chain decides now for the visit, as stored (nothing is applied)."""
        with self.db.begin() as conn:
            row = self.engine.store.lock(conn, p.key)
            assert row is not None
            state = self.chain.store.load(conn, p.key, row.kind, row.state)
            return self.chain.next_action(state, clock.now() + _dt.timedelta(seconds=after_s))

    def edit(self, p: Patient, change: Any) -> None:
        """Change the stored state of the visit (``change(state, effects)``), as a unit of work would."""
        from yibao.chains.model import Effects

        with self.db.begin() as conn:
            row = self.engine.store.lock(conn, p.key)
            assert row is not None
            state = self.chain.store.load(conn, p.key, row.kind, row.state)
            fx = Effects("settlement", p.key, row.kind, clock.now(), row.version)
            change(state, fx)
            self.engine.store.write(conn, row, state=self.chain.store.dump(conn, p.key, state), status="ready",
                                    next_attempt_at=clock.now(), attempts=row.attempts, lease_owner=row.lease_owner,
                                    lease_until=row.lease_until, open_call=row.open_call)
            self.engine.store.emit(conn, fx.emissions)

    # --- the HIS ------------------------------------------------------------------------------------------------

    def _base(self, p: Patient, event_id: str | None = None) -> dict[str, Any]:
        return ev.base(p.key, p.kind, event_id)

    def line(self, p: Patient, sn: str, amount: str, *, cnt: str = "1", code: str = "XA01", send: bool = True,
             **kw: Any) -> ChargeLineAdded:
        event = ev.line(p.key, p.kind, sn, amount, cnt=cnt, code=code, **kw)
        if send:
            self.his(event)
        return event

    def reversal(self, p: Patient, sn: str, of: ChargeLineAdded, *, cnt: str | None = None,
                 send: bool = True) -> ChargeLineReversed:
        event = ev.reversal(p.key, p.kind, sn, of, cnt=cnt)
        if send:
            self.his(event)
        return event

    def settle(self, p: Patient, request_id: str, total: str, *, mid: str = "0", acct: str = "1",
               send: bool = True, sheet_of: str | None = None) -> SettlementRequested:
        event = ev.settle(p.key, p.kind, request_id, total, mid=mid, acct=acct, sheet_of=sheet_of)
        if send:
            self.his(event)
        return event

    def refund(self, p: Patient, request_id: str, *, of: str | None = None, setl_id: str | None = None,
               send: bool = True) -> RefundRequested:
        event = ev.refund(p.key, p.kind, request_id, of=of, setl_id=setl_id)
        if send:
            self.his(event)
        return event

    # --- registration -------------------------------------------------------------------------------------------

    def _new_patient(self, kind: str, key: str | None = None) -> Patient:
        return Patient(next(self._persons), key or f"{kind[0].upper()}V{next(self._visits):05d}", kind)

    async def outpatient(self, *, key: str | None = None, facts: bool = True) -> Patient:
        """2201 + 2203 done on the platform (as registration would), and their VisitFacts."""
        p = self._new_patient("outpatient", key)
        who = p.person
        out = await self.client.call("2201", {"data": {
            "psn_no": who.psn_no, "insutype": who.insutype, "begntime": clock.now(), "mdtrt_cert_type": "02",
            "mdtrt_cert_no": who.certno, "ipt_otp_no": "MZ" + p.key, "atddr_no": "D01", "dr_name": "医生甲",
            "dept_code": "K01", "dept_name": "内科", "caty": "A03"}}, insuplc_admdvs=who.insuplc_admdvs)
        p.mdtrt_id = out.output["data"]["mdtrt_id"]
        await self.client.call("2203", {"mdtrtinfo": {"mdtrt_id": p.mdtrt_id, "psn_no": who.psn_no, "med_type": "11",
                                                      "begntime": clock.now(), "dise_codg": "J00", "dise_name": "感冒"},
                                          "diseinfo": [{"diag_type": "1", "diag_srt_no": 1, "diag_code": "J00",
                                                        "diag_name": "感冒", "diag_dept": "内科", "dise_dor_no": "D01",
                                                        "dise_dor_name": "医生甲", "diag_time": clock.now(),
                                                        "vali_flag": "1"}]},
                                insuplc_admdvs=who.insuplc_admdvs)
        if facts:
            self.registered(p)
            self.fact(p, "visit_info_uploaded", med_type="11")
        return p

    def registered(self, p: Patient, **kw: Any) -> None:
        who = p.person
        self.fact(p, "registered", psn_no=who.psn_no, insutype=who.insutype, insuplc_admdvs=who.insuplc_admdvs,
                  mdtrt_cert_type="02", mdtrt_cert_no=who.certno, med_type="11" if p.kind == "outpatient" else "21",
                  mdtrt_id=p.mdtrt_id, **kw)

    async def inpatient(self, *, key: str | None = None) -> Patient:
        p = self._new_patient("inpatient", key)
        who = p.person
        out = await self.client.call("2401", {"mdtrtinfo": {
            "psn_no": who.psn_no, "insutype": who.insutype, "coner_name": "联系人", "begntime": clock.now(),
            "mdtrt_cert_type": "02", "mdtrt_cert_no": who.certno, "med_type": "21", "ipt_no": "ZY" + p.key,
            "atddr_no": "D01", "chfpdr_name": "医生甲", "adm_diag_dscr": "肺炎", "adm_dept_codg": "K01",
            "adm_dept_name": "内科", "adm_bed": "01", "dscg_maindiag_code": "J18.9", "dscg_maindiag_name": "肺炎"},
            "diseinfo": [self._diagnosis(who.psn_no)]}, insuplc_admdvs=who.insuplc_admdvs)
        p.mdtrt_id = out.output["data"]["mdtrt_id"]
        self.registered(p)
        return p

    @staticmethod
    def _diagnosis(psn_no: str) -> dict[str, Any]:
        return {"psn_no": psn_no, "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": 1, "diag_code": "J18.9",
                "diag_name": "肺炎", "diag_dept": "内科", "dise_dor_no": "D01", "dise_dor_name": "医生甲",
                "diag_time": clock.now()}

    async def discharge(self, p: Patient, *, his_request_id: str | None = None, fact: bool = True) -> None:
        """2402 on the platform, then registration's ``discharged`` (naming the request it served: HIS's discharge,
        or the settlement request whose reopening it ends)."""
        who = p.person
        await self.client.call("2402", {"dscginfo": {
            "mdtrt_id": p.mdtrt_id, "psn_no": who.psn_no, "insutype": who.insutype, "endtime": clock.now(),
            "dise_codg": "J18.9", "dise_name": "肺炎", "dscg_way": "1", "dscg_dept_codg": "K01",
            "dscg_dept_name": "内科"}, "diseinfo": [{**self._diagnosis(who.psn_no), "mdtrt_id": p.mdtrt_id}]},
            insuplc_admdvs=who.insuplc_admdvs)
        if fact:
            self.fact(p, "discharged", endtime=clock.now(), his_request_id=his_request_id)

    async def cancel_discharge(self, p: Patient, *, his_request_id: str | None = None, fact: bool = True) -> None:
        await self.client.call("2405", {"data": {"mdtrt_id": p.mdtrt_id, "psn_no": p.psn_no}},
                               insuplc_admdvs=p.person.insuplc_admdvs)
        if fact:
            self.fact(p, "discharge_cancelled", his_request_id=his_request_id)

    # --- reading back -------------------------------------------------------------------------------------------

    def state(self, p: Patient | str) -> SettlementState:
        key = p if isinstance(p, str) else p.key
        with self.db.connect() as conn:
            text = conn.execute(select(chain_visits.c.state).where(chain_visits.c.visit_key == key)).scalar_one()
        return SettlementState.model_validate(json.loads(text))

    def status(self, p: Patient) -> str:
        with self.db.connect() as conn:
            return conn.execute(select(chain_visits.c.status).where(chain_visits.c.visit_key == p.key)).scalar_one()

    def lines(self, p: Patient | str) -> dict[str, str]:
        key = p if isinstance(p, str) else p.key
        with self.db.connect() as conn:
            rows = conn.execute(select(fee_lines.c.feedetl_sn, fee_lines.c.status)
                                .where(fee_lines.c.visit_key == key).order_by(fee_lines.c.seq))
            return {sn: status for sn, status in rows}

    def _outbox(self, type_name: str) -> list[tuple[str, dict[str, Any]]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox.c.msg_key, outbox.c.payload, outbox.c.headers)
                                .order_by(outbox.c.id)).all()
        out = []
        for key, payload, headers in rows:
            if json.loads(headers or "{}").get("type") == type_name:
                out.append((key, json.loads(payload)))
        return out

    def results(self, p: Patient | str | None = None, kind: str | None = None) -> list[HisResult]:
        key = p if isinstance(p, str) or p is None else p.key
        found = [HisResult.model_validate(v) for k, v in self._outbox("HisResult")]
        return [r for r in found if (key is None or r.his_visit_id == key) and (kind is None or r.kind == kind)]

    def result_keys(self) -> list[tuple[str, str, str]]:
        return [(k, v["his_visit_id"], v["kind"]) for k, v in self._outbox("HisResult")]

    def facts(self, p: Patient, kind: str | None = None) -> list[SettlementFact]:
        found = [SettlementFact.model_validate(v) for k, v in self._outbox("SettlementFact")]
        return [f for f in found if f.his_visit_id == p.key and (kind is None or f.kind == kind)]

    def journal(self, p: Patient) -> list[tuple[str, str, str | None]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(chain_calls.c.infno, chain_calls.c.status, chain_calls.c.resolution)
                                .where(chain_calls.c.visit_key == p.key).order_by(chain_calls.c.id))
            return [tuple(r) for r in rows]  # type: ignore[misc]

    # --- the platform's side ------------------------------------------------------------------------------------

    def platform_settlements(self, p: Patient) -> list[Any]:
        return [s for s in self.sim.ledger.settlements.values() if s.mdtrt_id == p.mdtrt_id]

    def platform_details(self, p: Patient) -> dict[str, str]:
        visit = self.sim.ledger.visits[p.mdtrt_id]
        return {sn: d.status for sn, d in visit.details.items()}
