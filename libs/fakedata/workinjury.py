"""A generated month of 工伤保险跨省异地就医 for a few cross-province patients (fictitious people): what the
platform offers for download at the start (the filing applications, GYD001), and what HIS asks of the bridge along
the way — audits, admissions, fee lines, discharge settlements, a deduction, a revocation and its correction, the
month-end — as JSON requests of ``yibao.workinjury.requests.v1``.

Used by the end-to-end tests, the benchmark and the demo. Requests are plain dicts (the wire format), so a library
never depends on the service that reads them; money is exact (Decimal text), price × quantity = amount and pooled +
self-paid = amount on every line, and totals are the sums of what they cover.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from yibao.core import clock
from yibao.fakedata.people import Person, population

__all__ = ["WiPatient", "WorkInjuryMonth", "generate_month", "application_record", "stamp", "card_no_of",
           "ITEMS"]

CENT = Decimal("0.01")
#: (item code, name, price) of the lines a stay is charged
ITEMS = (("110200001", "床位费", Decimal("45.00")), ("120100001", "护理费", Decimal("30.00")),
         ("250101001", "血常规", Decimal("18.50")), ("270800003", "X线摄影", Decimal("96.00")),
         ("331503001", "骨折内固定术", Decimal("2400.00")), ("XB01CB", "头孢呋辛钠注射剂", Decimal("12.36")),
         ("XN02BE", "对乙酰氨基酚片", Decimal("0.85")), ("340200001", "康复训练", Decimal("60.00")))


def stamp(value: _dt.datetime) -> str:
    return clock.as_shanghai(value).isoformat()


def card_no_of(certno: str) -> str:
    """The social-security card number the platform simulator issues (the same rule on both sides)."""
    return "K" + hashlib.sha256(f"card:{certno}".encode()).hexdigest()[:9].upper()


@dataclass
class WiPatient:
    person: Person
    apply_no: str
    stay_id: str
    ipt_no: str
    insu_admdvs: str
    adm_time: _dt.datetime
    dscg_time: _dt.datetime
    lines: list[dict[str, Any]] = field(default_factory=list)
    setl_no: str = ""

    @property
    def certno(self) -> str:
        return self.person.certno

    def totals(self, lines: list[dict[str, Any]] | None = None) -> dict[str, Decimal]:
        chosen = self.lines if lines is None else lines
        return {"medfee_sumamt": sum((Decimal(l["amount"]) for l in chosen), Decimal("0.00")),
                "pool_amt": sum((Decimal(l["pool_amt"]) for l in chosen), Decimal("0.00")),
                "self_amt": sum((Decimal(l["self_amt"]) for l in chosen), Decimal("0.00"))}


def application_record(p: WiPatient, mdtrt_admdvs: str, begin: _dt.date, end: _dt.date) -> dict[str, Any]:
    """The GYD001 record the national public service platform offers for this patient."""
    return {"apply_no": p.apply_no, "psn_no": p.person.psn_no, "certno": p.certno, "psn_name": p.person.psn_name,
            "insu_admdvs": p.insu_admdvs, "mdtrt_admdvs": mdtrt_admdvs, "org_type": "1", "apply_chan": "1",
            "injury_cert_no": f"RD{p.apply_no[-8:]}", "apply_time": clock.format_datetime(
                clock.as_shanghai(_dt.datetime.combine(begin, _dt.time(9)))),
            "begin_date": begin.isoformat(), "end_date": end.isoformat()}


@dataclass
class WorkInjuryMonth:
    """The month: its patients and the requests HIS makes, built step by step by whoever plays HIS."""

    seed: int
    month: _dt.date  #: the first day
    org_code: str
    mdtrt_admdvs: str
    patients: list[WiPatient]
    _events: int = 0

    @property
    def yyyymm(self) -> str:
        return f"{self.month:%Y%m}"

    def event_id(self, kind: str, *parts: object) -> str:
        self._events += 1
        return f"wi-{self.seed}-{kind}-{'-'.join(str(p) for p in parts)}-{self._events}"

    def applications(self) -> list[dict[str, Any]]:
        end = (self.month + _dt.timedelta(days=95)).replace(day=1) - _dt.timedelta(days=1)
        return [application_record(p, self.mdtrt_admdvs, self.month, end) for p in self.patients]

    # --- HIS's requests ---------------------------------------------------------------------------------------

    def audit(self, p: WiPatient, now: _dt.datetime, *, result: str = "1", opinion: str | None = None) -> dict:
        return {"type": "filing_audited", "event_id": self.event_id("audit", p.apply_no), "occurred_at": stamp(now),
                "apply_no": p.apply_no, "audit_result": result, "audit_opinion": opinion, "auditor": "审核员01",
                "audit_time": stamp(now), "org_code": self.org_code}

    def admitted(self, p: WiPatient, filing_no: str, now: _dt.datetime, **over: Any) -> dict:
        return {"type": "admitted", "event_id": self.event_id("adm", p.stay_id), "occurred_at": stamp(now),
                "stay_id": p.stay_id, "ipt_no": p.ipt_no, "filing_no": filing_no, "psn_no": p.person.psn_no,
                "certno": p.certno, "psn_name": p.person.psn_name, "visit_type": "1", "adm_time": stamp(p.adm_time),
                "adm_dept_code": "GK01", "adm_dept_name": "骨科", "adm_diag_code": "S82.001",
                "adm_diag_name": "髌骨骨折", "injury_part": "左膝", "org_code": self.org_code, **over}

    def fee_lines(self, p: WiPatient, lines: list[dict[str, Any]], now: _dt.datetime) -> dict:
        return {"type": "fee_lines", "event_id": self.event_id("fee", p.stay_id, lines[0]["fee_sn"]),
                "occurred_at": stamp(now), "stay_id": p.stay_id, "lines": lines}

    def settled(self, p: WiPatient, now: _dt.datetime, lines: list[dict[str, Any]] | None = None,
                setl_no: str | None = None) -> dict:
        totals = p.totals(lines)
        return {"type": "discharge_settled", "event_id": self.event_id("setl", p.stay_id), "occurred_at": stamp(now),
                "stay_id": p.stay_id, "setl_no": setl_no or p.setl_no, "dscg_time": stamp(p.dscg_time),
                "setl_time": stamp(p.dscg_time), "dscg_diag_code": "S82.001", "dscg_diag_name": "髌骨骨折",
                **{k: str(v) for k, v in totals.items()}, "fee_count": len(p.lines if lines is None else lines)}

    def deduction(self, p: WiPatient, amount: Decimal, now: _dt.datetime, *, deduct_no: str) -> dict:
        return {"type": "deduction", "event_id": self.event_id("deduct", deduct_no), "occurred_at": stamp(now),
                "stay_id": p.stay_id, "deduct_no": deduct_no, "setl_no": p.setl_no, "deduct_amt": str(amount),
                "deduct_reason": "超标准收费", "deduct_time": stamp(now), "auditor": "审核员02"}

    def revocation(self, p: WiPatient, target: str, now: _dt.datetime, *, deduct_no: str | None = None) -> dict:
        return {"type": "revocation", "event_id": self.event_id("revoke", p.stay_id, target),
                "occurred_at": stamp(now), "stay_id": p.stay_id, "target": target, "deduct_no": deduct_no,
                "reason": "信息有误，撤销后重新上传"}

    def month_end(self, settled: list[tuple[WiPatient, dict[str, Decimal], Decimal]], revoked: Decimal,
                  now: _dt.datetime) -> dict:
        """``settled``: (patient, its settlement totals, its deductions) of the month's active settlements."""
        items = [{"setl_no": p.setl_no, "medfee_sumamt": str(t["medfee_sumamt"]), "pool_amt": str(t["pool_amt"]),
                  "deduct_amt": str(d)} for p, t, d in settled]
        total = {k: sum((t[k] for _, t, _ in settled), Decimal("0.00")) for k in ("medfee_sumamt", "pool_amt",
                                                                                  "self_amt")}
        deduct = sum((d for _, _, d in settled), Decimal("0.00"))
        return {"type": "month_end", "event_id": self.event_id("month", self.yyyymm), "occurred_at": stamp(now),
                "month": self.yyyymm, "org_code": self.org_code, "visit_count": len(settled),
                **{k: str(v) for k, v in total.items()}, "deduct_amt": str(deduct), "revoke_amt": str(revoked),
                "pay_amt": str(total["pool_amt"] - deduct), "items": items}


def _line(rng: random.Random, sn: str, when: _dt.datetime, pool_ratio: Decimal) -> dict[str, Any]:
    code, name, price = rng.choice(ITEMS)
    cnt = Decimal(rng.randint(1, 4))
    amount = (price * cnt).quantize(CENT, rounding=ROUND_HALF_UP)
    pool = (amount * pool_ratio).quantize(CENT, rounding=ROUND_HALF_UP)
    return {"fee_sn": sn, "fee_time": stamp(when), "item_code": code, "item_name": name, "price": str(price),
            "cnt": str(cnt), "amount": str(amount), "pool_amt": str(pool), "self_amt": str(amount - pool),
            "dept_code": "GK01"}


def generate_month(seed: int, *, month: _dt.date, patients: int = 3, lines: tuple[int, int] = (40, 120),
                   org_code: str = "H44010600001", mdtrt_admdvs: str = "440100",
                   people: list[Person] | None = None) -> WorkInjuryMonth:
    """A month of ``patients`` cross-province stays at ``org_code`` (insured elsewhere, treated here), each with a
    random number of fee lines in ``lines``. Deterministic for a seed."""
    rng = random.Random(f"workinjury:{seed}:{month}")
    crowd = people if people is not None else population(seed, max(patients * 3, 10))
    provinces = ("350100", "320100", "510100", "420100", "330100")
    out: list[WiPatient] = []
    for i, person in enumerate(crowd[:patients]):
        adm = clock.as_shanghai(_dt.datetime.combine(month + _dt.timedelta(days=1 + 3 * i), _dt.time(9, 30)))
        days = rng.randint(5, 12)
        dscg = adm + _dt.timedelta(days=days, hours=1)
        p = WiPatient(person=person, apply_no=f"SQ{seed % 10000:04d}{month:%y%m}{i:04d}",
                      stay_id=f"WI{seed % 10000:04d}{month:%y%m}{i:04d}", ipt_no=f"ZY{month:%y%m}{seed % 1000:03d}{i:04d}",
                      insu_admdvs=provinces[i % len(provinces)], adm_time=adm, dscg_time=dscg,
                      setl_no=f"JS{seed % 10000:04d}{month:%y%m}{i:04d}")
        count = rng.randint(*lines)
        ratio = Decimal("0.90")
        for n in range(count):
            when = adm + _dt.timedelta(minutes=int((dscg - adm).total_seconds() / 60 * n / max(1, count)))
            p.lines.append(_line(rng, f"{p.stay_id[-6:]}{n:05d}", when, ratio))
        out.append(p)
    return WorkInjuryMonth(seed=seed, month=month, org_code=org_code, mdtrt_admdvs=mdtrt_admdvs, patients=out)
