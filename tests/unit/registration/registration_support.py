"""Test support for the registration chain: canonical event factories, a stand-in platform (validating every
input with the real catalog, answering like the simulator on the transactions registration uses), and a harness
running the real chain engine with the registration chain on SQLite."""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from yibao.chains import ChainEngine
from yibao.chains.engine import EngineSettings
from yibao.core import clock
from yibao.core.db.schema import chain_calls, outbox
from yibao.core.results import SettlementFact, stable_id
from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import BusinessRejection, UnknownOutcome
from yibao.hisevents.models import (
    Admission,
    AdmissionChanged,
    Cancellation,
    Diagnosis,
    Discharge,
    EventSource,
    PatientRegistered,
    VisitInfo,
)
from yibao.registration.absorb import route
from yibao.registration.chain import RegistrationChain
from yibao.registration.config import ChainConfig
from yibao.registration.state import RegistrationState

__all__ = ["T0", "CERT", "PSN", "ADMDVS", "Events", "FakePlatform", "Harness", "config"]

T0 = _dt.datetime(2026, 3, 2, 9, 0, tzinfo=clock.SHANGHAI)
CERT = "TESTCERT00000001"
PSN = "44000000000000000001"
ADMDVS = "440106"
FIXMEDINS = "H44010600001"
_COUNTER = itertools.count(1)


def config(**overrides: Any) -> ChainConfig:
    return ChainConfig(**{"fixmedins_code": FIXMEDINS, **overrides})


def _source() -> EventSource:
    return EventSource(topic="HIS.TEST", partition=0, offset=next(_COUNTER), table="HIS.TEST")


def _event_id() -> str:
    return f"ev{next(_COUNTER):010d}"


def diagnosis(srt: int = 1, code: str = "J20.900", name: str = "急性支气管炎", *, main: bool = True,
              valid: bool = True, diag_type: str = "1") -> Diagnosis:
    return Diagnosis(diag_type=diag_type, diag_srt_no=srt, diag_code=code, diag_name=name,
                     maindiag_flag="1" if main else "0", vali_flag="1" if valid else "0")


class Events:
    """Canonical HIS events of one visit (outpatient ``O1`` / inpatient ``I1`` unless told)."""

    def __init__(self, visit: str = "O1", *, minutes: int = 0) -> None:
        self.visit = visit
        self.t = T0 + _dt.timedelta(minutes=minutes)

    def _at(self, minutes: int | None) -> _dt.datetime:
        if minutes is None:
            self.t += _dt.timedelta(minutes=1)
            return self.t
        return T0 + _dt.timedelta(minutes=minutes)

    def registered(self, *, minutes: int | None = None, **kw: Any) -> PatientRegistered:
        when = self._at(minutes)
        values: dict[str, Any] = dict(
            event_id=_event_id(), his_visit_id=self.visit, his_patient_id="P1", occurred_at=when, source=_source(),
            ipt_otp_no=f"MZ{self.visit}", mdtrt_cert_type="02", mdtrt_cert_no=CERT, psn_cert_type="01",
            certno=CERT, psn_name="测试", insutype="310", med_type="11", begntime=when, dept_code="0301",
            dept_name="内科门诊", caty="A03", atddr_no="D1", dr_name="医生甲", reg_fee=Decimal("10.00"),
            reg_type="01", channel="counter", settle_choice="insurance")
        values.update(kw)
        return PatientRegistered(**values)

    def visit_info(self, *diagnoses: Diagnosis, minutes: int | None = None, **kw: Any) -> VisitInfo:
        return VisitInfo(event_id=_event_id(), his_visit_id=self.visit, visit_kind="outpatient",
                         his_patient_id="P1", occurred_at=self._at(minutes), source=_source(),
                         diagnoses=list(diagnoses), **kw)

    def cancellation(self, target: str = "registration", request_id: str = "C1", *, minutes: int | None = None,
                     visit_kind: str | None = None) -> Cancellation:
        kind = visit_kind or ("outpatient" if target == "registration" else "inpatient")
        return Cancellation(event_id=_event_id(), his_visit_id=self.visit, visit_kind=kind, his_patient_id="P1",
                            occurred_at=self._at(minutes), source=_source(), target=target,
                            his_request_id=request_id)

    def admission(self, *, minutes: int | None = None, **kw: Any) -> Admission:
        when = self._at(minutes)
        values: dict[str, Any] = dict(
            event_id=_event_id(), his_visit_id=self.visit, his_patient_id="P1", occurred_at=when, source=_source(),
            ipt_no=f"ZY{self.visit}", mdtrt_cert_type="02", mdtrt_cert_no=CERT, psn_cert_type="01", certno=CERT,
            psn_name="测试", insutype="310", begntime=when, med_type="21", atddr_no="D4", chfpdr_name="医生乙",
            adm_dept_codg="0403", adm_dept_name="骨科病区", adm_bed="03-31", dise_codg="I63.900", dise_name="脑梗死",
            diagnoses=[diagnosis(code="I63.900", name="脑梗死")])
        values.update(kw)
        return Admission(**values)

    def admission_changed(self, *, minutes: int | None = None, **kw: Any) -> AdmissionChanged:
        return AdmissionChanged(event_id=_event_id(), his_visit_id=self.visit, his_patient_id="P1",
                                occurred_at=self._at(minutes), source=_source(), **kw)

    def discharge(self, *, minutes: int | None = None, **kw: Any) -> Discharge:
        when = self._at(minutes)
        values: dict[str, Any] = dict(event_id=_event_id(), his_visit_id=self.visit, his_patient_id="P1",
                                      occurred_at=when, source=_source(), endtime=when, dscg_way="1",
                                      dscg_dept_codg="0403", dscg_dept_name="骨科病区")
        values.update(kw)
        return Discharge(**values)


class Response:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output


@dataclass
class FakePerson:
    psn_no: str = PSN
    cert: str = CERT
    insuinfo: list[dict[str, Any]] = field(default_factory=lambda: [
        {"balc": Decimal("100.00"), "insutype": "310", "psn_type": "11", "psn_insu_stas": "1", "cvlserv_flag": "0",
         "insuplc_admdvs": ADMDVS}])


class FakePlatform:
    """The transactions registration uses, with the simulator's order rules, on inputs the catalog validated.

    ``script[infno]`` holds what happens to the next calls of infno: an exception raised before anything is done,
    ``"commit_then_lose"`` (done, answer lost), or None (normal)."""

    def __init__(self) -> None:
        self.catalog = Catalog.load(None)
        self.persons: dict[str, FakePerson] = {CERT: FakePerson()}
        self.visits: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.inputs: dict[str, list[dict[str, Any]]] = {}
        self.script: dict[str, list[Any]] = {}
        self.trt_enjymnt_flag = "1"
        self.chronic_filings: list[dict[str, Any]] = []  #: the person's 慢特病 备案 as 5301 lists them
        self._n = 0

    async def allocate_msgid(self) -> str:
        self._n += 1
        return f"{FIXMEDINS}20260302090000{self._n:04d}"

    async def reverse(self, *args: Any, **kwargs: Any) -> Response:  # registration never reverses
        raise AssertionError("registration steps are never reversed by 2601")

    def infnos(self) -> list[str]:
        return [infno for infno, _ in self.calls]

    def registrations(self, kind: str = "outpatient") -> list[dict[str, Any]]:
        return [v for v in self.visits.values() if v["kind"] == kind and v["status"] != "cancelled"]

    async def call(self, infno: str, input: dict[str, Any], *, visit_key: str | None = None,
                   msgid: str | None = None, insuplc_admdvs: str | None = None,
                   read_timeout_s: float | None = None, call_log: Any = None) -> Response:
        body = self.catalog.prepare_input(infno, input)  # EnvelopeValidationError, as the real client raises
        self.calls.append((infno, msgid or ""))
        self.inputs.setdefault(infno, []).append(body)
        if infno != "1101" and insuplc_admdvs != ADMDVS:
            raise BusinessRejection(infno, "insuplc_admdvs: 参保地医保区划不符")
        queue = self.script.get(infno, [])
        outcome = queue.pop(0) if queue else None
        if isinstance(outcome, Exception):
            raise outcome
        output = getattr(self, f"h{infno}")(body)
        if outcome == "commit_then_lose":
            raise UnknownOutcome(infno, msgid, "read timeout (the platform did it)")
        return Response(output)

    # --- handlers (formatted inputs) ---------------------------------------------------------------------------

    def _refuse(self, infno: str, text: str) -> BusinessRejection:
        return BusinessRejection(infno, text)

    def h1101(self, body: dict[str, Any]) -> dict[str, Any]:
        person = self.persons.get(body["data"]["mdtrt_cert_no"])
        if person is None:
            raise self._refuse("1101", "未查询到参保信息")
        return {"baseinfo": {"psn_no": person.psn_no, "psn_cert_type": "01", "certno": person.cert,
                             "psn_name": "测试", "gend": "1", "age": Decimal("35.0")},
                "insuinfo": person.insuinfo, "idetinfo": []}

    def h5301(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"feedetail": list(self.chronic_filings)}

    def h2001(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"trtinfo": [{"psn_no": body["data"]["psn_no"], "trt_chk_type": "10", "fund_pay_type": "310100",
                             "trt_enjymnt_flag": self.trt_enjymnt_flag, "begndate": "2024-01-01",
                             "trt_chk_rslt": "享受待遇" if self.trt_enjymnt_flag == "1" else "暂停参保"}]}

    def _new_visit(self, kind: str, psn_no: str, number: str, begntime: str) -> str:
        mdtrt_id = f"M{len(self.visits) + 1:05d}"
        self.visits[mdtrt_id] = {"mdtrt_id": mdtrt_id, "kind": kind, "psn_no": psn_no, "ipt_otp_no": number,
                                 "begntime": begntime, "status": "open", "endtime": "", "med_type": ""}
        return mdtrt_id

    def h2201(self, body: dict[str, Any]) -> dict[str, Any]:
        data = body["data"]
        if any(v["ipt_otp_no"] == data["ipt_otp_no"] for v in self.registrations("outpatient")):
            raise self._refuse("2201", "data.ipt_otp_no: already registered (门诊号重复)")
        mdtrt_id = self._new_visit("outpatient", data["psn_no"], data["ipt_otp_no"], data["begntime"])
        return {"data": {"mdtrt_id": mdtrt_id, "psn_no": data["psn_no"], "ipt_otp_no": data["ipt_otp_no"]}}

    def _open(self, infno: str, mdtrt_id: str) -> dict[str, Any]:
        visit = self.visits.get(mdtrt_id)
        if visit is None or visit["status"] == "cancelled":
            raise self._refuse(infno, "mdtrt_id: no such visit (已撤销)")
        return visit

    def h2202(self, body: dict[str, Any]) -> dict[str, Any]:
        self._open("2202", body["data"]["mdtrt_id"])["status"] = "cancelled"
        return {}

    def h2203(self, body: dict[str, Any]) -> dict[str, Any]:
        self._open("2203", body["mdtrtinfo"]["mdtrt_id"])["med_type"] = body["mdtrtinfo"]["med_type"]
        return {}

    def h2401(self, body: dict[str, Any]) -> dict[str, Any]:
        info = body["mdtrtinfo"]
        if any(v["psn_no"] == info["psn_no"] for v in self.registrations("inpatient")):
            raise self._refuse("2401", "mdtrtinfo.psn_no: already admitted (已在院)")
        return {"data": {"mdtrt_id": self._new_visit("inpatient", info["psn_no"], info["ipt_no"], info["begntime"])}}

    def h2403(self, body: dict[str, Any]) -> dict[str, Any]:
        visit = self._open("2403", body["adminfo"]["mdtrt_id"])
        if visit["status"] != "open":
            raise self._refuse("2403", "order: admission information cannot change after discharge")
        return {}

    def h2402(self, body: dict[str, Any]) -> dict[str, Any]:
        visit = self._open("2402", body["dscginfo"]["mdtrt_id"])
        if visit["status"] != "open":
            raise self._refuse("2402", "order: already discharged (已出院)")
        visit["status"], visit["endtime"] = "discharged", body["dscginfo"]["endtime"]
        return {}

    def h2405(self, body: dict[str, Any]) -> dict[str, Any]:
        visit = self._open("2405", body["data"]["mdtrt_id"])
        if visit["status"] != "discharged":
            raise self._refuse("2405", "order: the person is not discharged")
        visit["status"], visit["endtime"] = "open", ""
        return {}

    def h2404(self, body: dict[str, Any]) -> dict[str, Any]:
        visit = self._open("2404", body["data"]["mdtrt_id"])
        if visit["status"] == "discharged":
            raise self._refuse("2404", "rollback order: cancel the discharge (2405) first")
        visit["status"] = "cancelled"
        return {}

    def h5201(self, body: dict[str, Any]) -> dict[str, Any]:
        data = body["data"]
        rows = [{"mdtrt_id": v["mdtrt_id"], "psn_no": v["psn_no"], "ipt_otp_no": v["ipt_otp_no"],
                 "begntime": v["begntime"], "endtime": v["endtime"], "med_type": v["med_type"] or "12",
                 "inhosp_stas": "1" if v["kind"] == "inpatient" and v["status"] == "open" else "0",
                 "vali_flag": "0" if v["status"] == "cancelled" else "1"}
                for v in self.visits.values()
                if v["psn_no"] == data["psn_no"] and data.get("mdtrt_id") in (None, v["mdtrt_id"])]
        return {"mdtrtinfo": rows}

    def h5303(self, body: dict[str, Any]) -> dict[str, Any]:
        data = body["data"]
        rows = [{"mdtrt_id": v["mdtrt_id"], "psn_no": v["psn_no"], "ipt_otp_no": v["ipt_otp_no"],
                 "endtime": v["endtime"]}
                for v in self.registrations("inpatient") if v["psn_no"] == data["psn_no"]]
        return {"data": rows}


class Harness:
    """The real engine driving the registration chain against a :class:`FakePlatform`, on SQLite."""

    def __init__(self, db: Engine, platform: FakePlatform | None = None, cfg: ChainConfig | None = None,
                 **engine_settings: Any) -> None:
        self.db = db
        self.platform = platform or FakePlatform()
        self.chain = RegistrationChain(cfg or config())

        async def run_db(fn):  # type: ignore[no-untyped-def]
            def unit():  # type: ignore[no-untyped-def]
                with db.begin() as conn:
                    return fn(conn)
            return await asyncio.to_thread(unit)

        self.engine = ChainEngine(self.chain, db=run_db, client=self.platform, catalog=self.platform.catalog,
                                  settings=EngineSettings(retry_backoff_s=0.0, **engine_settings))

    def _absorb(self, absorption: Any) -> bool:
        with self.db.begin() as conn:
            flags, after = self.engine.absorb_in(conn, [absorption])
        for fn in after:
            fn()
        return flags[0]

    def absorb(self, *events: Any) -> list[bool]:
        fresh = []
        for event in events:
            absorption = route("his_events", event.to_json())
            assert absorption is not None, event.type
            fresh.append(self._absorb(absorption))
        return fresh

    def settlement(self, kind: str, request_id: str | None, *, visit: str = "O1", visit_kind: str = "outpatient",
                   reason: str | None = None, setl_id: str | None = None, ask: int = 0) -> bool:
        """Settlement's fact; ``ask`` > 0: settlement asking again (a message of its own)."""
        parts = (ask,) if ask else ()
        fact = SettlementFact(message_id=stable_id("settlement", visit, request_id, kind, setl_id, *parts),
                              his_visit_id=visit, visit_kind=visit_kind, kind=kind,  # type: ignore[arg-type]
                              his_request_id=request_id, reason=reason, setl_id=setl_id)
        absorption = route("settlement_facts", fact.to_json())
        assert absorption is not None
        return self._absorb(absorption)

    async def run(self) -> None:
        await self.engine.drain(timeout=30)

    async def run_with_settlement_ready(self) -> None:
        """Run, answering every ``discharge_requested`` as settlement would once the stay's lines are up."""
        await self.run()
        asked: dict[str, int] = {}
        for fact in self.facts("discharge_requested"):  # each ask answered once (settlement's ids follow the ask)
            n = asked[fact["his_request_id"]] = asked.get(fact["his_request_id"], -1) + 1
            self.settlement("ready_for_discharge", fact["his_request_id"], visit=fact["his_visit_id"],
                            visit_kind=fact["visit_kind"], ask=n)
        await self.run()

    def _outbox(self, suffix: str) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)).all()
        return [json.loads(payload) for topic, payload in rows if topic.endswith(suffix)]

    def results(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self._outbox("his.results.v1") if kind is None or r["kind"] == kind]

    def facts(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self._outbox("visits.v1") if kind is None or r["kind"] == kind]

    def result_kinds(self) -> list[str]:
        return [r["kind"] for r in self.results()]

    def fact_kinds(self) -> list[str]:
        return [r["kind"] for r in self.facts()]

    def state(self, visit: str = "O1") -> RegistrationState:
        with self.db.connect() as conn:
            from yibao.core.db.schema import chain_visits

            raw = conn.execute(select(chain_visits.c.state).where(chain_visits.c.visit_key == visit)).scalar_one()
        return RegistrationState.model_validate_json(raw)

    def visit_status(self, visit: str = "O1") -> str:
        with self.db.connect() as conn:
            from yibao.core.db.schema import chain_visits

            return str(conn.execute(select(chain_visits.c.status)
                                    .where(chain_visits.c.visit_key == visit)).scalar_one())

    def journal(self) -> list[tuple[str, str, str | None]]:
        with self.db.connect() as conn:
            return [tuple(r) for r in conn.execute(select(chain_calls.c.infno, chain_calls.c.status,  # type: ignore[misc]
                                                          chain_calls.c.resolution).order_by(chain_calls.c.id))]
