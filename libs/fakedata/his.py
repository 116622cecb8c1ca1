"""A fake HIS: a day of hospital activity as the Debezium records its database would produce.

``generate_day(seed, ...)`` plays out outpatient visits (挂号 → 诊断 → 收费明细, some reversed → 医保结算申请;
some 退费 + 退号, some 退号 before seeing a doctor) and inpatient stays (入院 → 住院信息变更 → daily charges, some
reversed → 中途结算 on some long stays → 出院, sometimes 取消出院 and discharged again → 结算; a few admissions are
cancelled) for people of :func:`yibao.fakedata.people.population`, and encodes every row change in the chosen
:class:`~yibao.fakedata.cdc.CdcShape`. The result is a list of :class:`~yibao.fakedata.cdc.RawCdcMessage` in
commit order (so per-visit causal order), ready to be produced to Kafka.

Faults on request: ``inject={"bad_json": 2, "unknown_table": 1, "missing_column": 1, "bad_date": 1}`` adds
extra records that the ingest must park (each carries ``injected`` and ``expect_error``), ``duplicates=n``
repeats n records right after themselves (CDC at-least-once). Deterministic: same arguments, same bytes.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from yibao.core.clock import SHANGHAI
from yibao.fakedata import his_tables as T
from yibao.fakedata.cdc import HEARTBEAT_TOPIC_PREFIX, CdcEncoder, CdcShape, RawCdcMessage, RowChange, TableDef, dumps
from yibao.fakedata.his_catalog import (
    ACUTE_OUTP_DIAGNOSES,
    INP_DAILY_ITEMS,
    INP_DEPTS,
    INP_DIAGNOSES,
    INP_EXTRA_ITEMS,
    OUTP_DEPTS,
    OUTP_DIAGNOSES,
    OUTP_ITEMS,
    REGISTRATION_FEES,
    Department,
    Item,
    doctors_of,
)
from yibao.fakedata.people import Person, population

__all__ = ["FAULT_KINDS", "OUTPATIENT_PATHS", "INPATIENT_PATHS", "generate_day", "generated_topics", "HisDay"]

#: rarer paths of a visit; generate_day makes each happen at least once when there are enough visits
OUTPATIENT_PATHS: tuple[str, ...] = ("reversal", "refund", "cancel_early", "self_pay", "diag_update")
INPATIENT_PATHS: tuple[str, ...] = ("transfer", "mid_settle", "cancel_discharge", "cancel_admission", "refund")

#: injectable faults -> the error class the ingest must raise ("DecodeError" or "UnmappableEventError");
#: bad_date is a DecodeError when the records carry a schema (the Timestamp type is violated), else unmappable
FAULT_KINDS: tuple[str, ...] = ("bad_json", "unknown_table", "missing_column", "bad_date")

_INSUR = {"310": "ZG", "390": "JM", "340": "LX"}
_CASHIERS = (("C001", "收费员甲"), ("C002", "收费员乙"), ("C003", "收费员丙"))
_YB_DESK = ("Y001", "医保办经办")


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


class HisDay:
    """Plays out one day; collects row changes with their commit times."""

    def __init__(self, seed: int, day: _dt.date, people: list[Person]) -> None:
        self.seed = seed
        self.day = day
        self.people = people
        self.rng = random.Random(f"his-day:{seed}:{day.isoformat()}")
        self.changes: list[tuple[_dt.datetime, int, RowChange]] = []
        self._seq: dict[str, int] = {}
        self._order = 0

    # ids -------------------------------------------------------------------------------------------------------------

    def _next(self, kind: str) -> int:
        self._seq[kind] = self._seq.get(kind, 0) + 1
        return self._seq[kind]

    def _int_id(self, kind: str, width: int, lead: str = "") -> int:
        return int(f"{lead}{self.day:%y%m%d}{self._next(kind):0{width}d}")

    def _str_id(self, kind: str, letter: str) -> str:
        return f"{letter}{self.day:%y%m%d}{self._next(kind):05d}"

    # recording -------------------------------------------------------------------------------------------------------

    def emit(self, table: TableDef, op: str, at: _dt.datetime, *, after: dict[str, Any] | None = None,
             before: dict[str, Any] | None = None) -> None:
        aware = at.replace(tzinfo=SHANGHAI)
        self._order += 1
        self.changes.append((aware, self._order, RowChange(table, op, before, after, aware)))  # type: ignore[arg-type]

    def ordered(self) -> list[RowChange]:
        return [c for _, _, c in sorted(self.changes, key=lambda item: (item[0], item[1]))]

    # people and cards ------------------------------------------------------------------------------------------------

    def _card(self, person: Person) -> dict[str, Any]:
        kind = self.rng.choices(("1", "2", "3"), weights=(35, 40, 25))[0]
        number = person.ec_token if kind == "3" else person.certno
        return {"CARD_TYPE": kind, "CARD_NO": number, "CARD_SN": person.card_sn if kind == "2" else None}

    def _patient_id(self, person: Person) -> str:
        return f"P{int(person.psn_no[-12:]):08d}"

    def _trace_codes(self, item: Item, qty: Decimal) -> str | None:
        if not item.drug:
            return None
        packages = max(1, min(int(qty), 5))
        return ",".join(f"8{self.rng.randint(0, 10**19 - 1):019d}" for _ in range(packages))

    # outpatient ------------------------------------------------------------------------------------------------------

    def outpatient_visit(self, person: Person, force: str | None = None) -> None:
        """One outpatient visit; ``force`` makes one of OUTPATIENT_PATHS happen (else chance decides); ``"plain"``
        makes none happen and gives it one acute diagnosis (no 门慢特病 备案 to look up): registered, diagnosed,
        charged, settled as 普通门诊."""
        rng = self.rng
        dept: Department = rng.choice(OUTP_DEPTS)
        doctor = rng.choice(doctors_of(dept))
        start = _dt.datetime.combine(self.day, _dt.time(8)) + _dt.timedelta(minutes=rng.randint(0, 510),
                                                                              seconds=rng.randint(0, 59))
        reg_id = self._int_id("reg", 5)
        reg_type = "03" if dept.code == "2001" else rng.choice(("01", "01", "02"))
        self_pay = force == "self_pay" or (force is None and rng.random() < 0.08)
        cashier = rng.choice(_CASHIERS)
        card = self._card(person)
        patient_id = self._patient_id(person)
        plain = force == "plain"
        med_type = "JZ" if dept.code == "2001" else ("MT" if not plain and rng.random() < 0.1 else "PT")
        register = {
            "REG_ID": reg_id, "PATIENT_ID": patient_id, "REG_NO": f"MZ{self.day:%Y%m%d}{reg_id % 100000:05d}",
            **card, "ID_TYPE": "1", "ID_NO": person.certno, "PAT_NAME": person.psn_name,
            "INSUR_TYPE": _INSUR[person.insutype], "MED_TYPE": med_type, "REG_TIME": start,
            "DEPT_CODE": dept.code, "DEPT_NAME": dept.name, "DEPT_CATY": dept.caty, "DOCTOR_CODE": doctor.code,
            "DOCTOR_NAME": doctor.name, "REG_FEE": REGISTRATION_FEES[reg_type], "REG_TYPE": reg_type,
            "REG_CHANNEL": rng.choices(("1", "2", "3"), weights=(50, 25, 25))[0],
            "PAY_MODE": "2" if self_pay else "1", "STATUS": "1",
            "OPERATOR_ID": cashier[0], "OPERATOR_NAME": cashier[1],
        }
        self.emit(T.OUTP_REGISTER, "c", start, after=register)
        t = start
        if force == "cancel_early" or (force is None and not self_pay and rng.random() < 0.05):  # 退号, no doctor
            t += _dt.timedelta(minutes=rng.randint(5, 30))
            self._cancel_request(reg_id, "O", patient_id, "REG", "患者未就诊，申请退号", t)
            return
        # diagnoses (one row each; sometimes the doctor corrects the main one)
        icd, name, complaint = rng.choice(ACUTE_OUTP_DIAGNOSES if plain else OUTP_DIAGNOSES)
        t += _dt.timedelta(minutes=rng.randint(10, 60))
        main = {
            "DIAG_ID": self._int_id("diag", 7), "REG_ID": reg_id, "PATIENT_ID": patient_id, "DIAG_SEQ": 1,
            "DIAG_CLASS": "W", "ICD_CODE": icd, "DIAG_NAME": name, "MAIN_FLAG": "Y", "MED_TYPE": med_type,
            "CHIEF_COMPLAINT": complaint, "DEPT_CODE": dept.code, "DOCTOR_CODE": doctor.code,
            "DOCTOR_NAME": doctor.name, "DIAG_TIME": t, "VALID_FLAG": "1",
        }
        self.emit(T.OUTP_DIAGNOSIS, "c", t, after=main)
        if not plain and rng.random() < 0.3:
            icd2, name2, _ = rng.choice([d for d in OUTP_DIAGNOSES if d[0] != icd])
            t += _dt.timedelta(minutes=2)
            self.emit(T.OUTP_DIAGNOSIS, "c", t, after={
                **main, "DIAG_ID": self._int_id("diag", 7), "DIAG_SEQ": 2, "ICD_CODE": icd2, "DIAG_NAME": name2,
                "MAIN_FLAG": "N", "DIAG_TIME": t,
            })
        if force == "diag_update" or (force is None and rng.random() < 0.1):
            icd3, name3, _ = rng.choice([d for d in OUTP_DIAGNOSES if d[0] != icd])
            t += _dt.timedelta(minutes=3)
            self.emit(T.OUTP_DIAGNOSIS, "u", t, before=main,
                      after={**main, "ICD_CODE": icd3, "DIAG_NAME": name3, "DIAG_TIME": t})
        # charge lines
        t += _dt.timedelta(minutes=rng.randint(5, 20))
        batch = f"{reg_id}01"
        lines = []
        for n, item in enumerate(rng.sample(OUTP_ITEMS, rng.randint(2, 5)), start=1):
            qty = Decimal(rng.randint(1, 3)) if item.drug else Decimal(1)
            fee_time = t + _dt.timedelta(seconds=n, microseconds=rng.randint(0, 999_999))
            line = {
                "DETAIL_ID": self._int_id("fee", 7), "REG_ID": reg_id, "PATIENT_ID": patient_id,
                "RECIPE_NO": f"CF{reg_id}{1 if item.drug else 2:02d}", "BATCH_NO": batch,
                "ORDER_NO": None, "FEE_TIME": fee_time, "ETIP_FLAG": "N",
                "ITEM_CODE": item.code, "ITEM_NAME": item.name, "YB_CODE": item.yb_code,
                "AMOUNT": _money(item.price * qty), "QTY": qty, "PRICE": item.price,
                "DOSAGE": item.dosage, "FREQUENCY": item.frequency, "DAYS": Decimal(3) if item.drug else None,
                "ROUTE": item.route, "BILL_DEPT_CODE": dept.code, "BILL_DEPT_NAME": dept.name,
                "BILL_DOC_CODE": doctor.code, "BILL_DOC_NAME": doctor.name, "EXEC_DEPT_CODE": "9001",
                "EXEC_DEPT_NAME": "门诊药房" if item.drug else "检验科", "ORDER_DOC_CODE": doctor.code,
                "ORDER_DOC_NAME": doctor.name, "APPROVE_FLAG": None, "TRACE_CODES": self._trace_codes(item, qty),
                "INIT_DETAIL_ID": None, "MEMO": None, "OPERATOR_ID": cashier[0], "OPERATOR_NAME": cashier[1],
            }
            lines.append(line)
            self.emit(T.OUTP_FEE_DETAIL, "c", fee_time, after=line)
        if force == "reversal" or (force is None and rng.random() < 0.12):  # one line reversed (退药/取消检查)
            original = rng.choice(lines)
            t += _dt.timedelta(minutes=rng.randint(2, 8))
            reversal = {**original, "DETAIL_ID": self._int_id("fee", 7), "FEE_TIME": t, "QTY": -original["QTY"],
                        "AMOUNT": -original["AMOUNT"], "INIT_DETAIL_ID": original["DETAIL_ID"], "TRACE_CODES": None,
                        "MEMO": "退费冲销"}
            lines.append(reversal)
            self.emit(T.OUTP_FEE_DETAIL, "c", t, after=reversal)
        if self_pay:
            return
        total = sum((line["AMOUNT"] for line in lines), Decimal("0.00"))
        t += _dt.timedelta(minutes=rng.randint(3, 15))
        settle_id = self._str_id("settle", "S")
        self.emit(T.YB_SETTLE_REQUEST, "c", t, after={
            "REQ_ID": settle_id, "VISIT_ID": reg_id, "VISIT_TYPE": "O", "PATIENT_ID": patient_id, "REQ_TIME": t,
            "ACCT_USED": "Y" if person.insutype == "310" and rng.random() < 0.7 else "N", "SETL_WAY": "01",
            "MID_SETL": "0", "INVOICE_NO": self._str_id("inv", "I"), "TOTAL_AMT": total, "BATCH_NO": batch,
            **card, "INSUR_TYPE": _INSUR[person.insutype], "OPERATOR_ID": cashier[0], "OPERATOR_NAME": cashier[1],
        })
        if force == "refund" or (force is None and rng.random() < 0.05):  # 退费 then 退号
            t += _dt.timedelta(minutes=rng.randint(20, 90))
            self.emit(T.YB_REFUND_REQUEST, "c", t, after={
                "REQ_ID": self._str_id("refund", "R"), "VISIT_ID": reg_id, "VISIT_TYPE": "O",
                "PATIENT_ID": patient_id, "REQ_TIME": t, "SETTLE_REQ_ID": settle_id, "SETL_ID": None,
                "REASON": "患者要求退费", "OPERATOR_ID": cashier[0], "OPERATOR_NAME": cashier[1],
            })
            self._cancel_request(reg_id, "O", patient_id, "REG", "退费后退号", t + _dt.timedelta(minutes=2))

    def _cancel_request(self, visit_id: int, visit_type: str, patient_id: str, cancel_type: str, reason: str,
                        at: _dt.datetime) -> None:
        self.emit(T.YB_CANCEL_REQUEST, "c", at, after={
            "REQ_ID": self._str_id("cancel", "C"), "VISIT_ID": visit_id, "VISIT_TYPE": visit_type,
            "PATIENT_ID": patient_id, "REQ_TIME": at, "CANCEL_TYPE": cancel_type, "REASON": reason,
            "OPERATOR_ID": _YB_DESK[0], "OPERATOR_NAME": _YB_DESK[1],
        })

    # inpatient -------------------------------------------------------------------------------------------------------

    def inpatient_stay(self, person: Person, force: str | None = None) -> None:
        """One inpatient stay; ``force`` makes one of INPATIENT_PATHS happen (else chance decides)."""
        rng = self.rng
        dept = rng.choice(INP_DEPTS)
        doctor = rng.choice(doctors_of(dept))
        adm_id = self._int_id("adm", 4, lead="9")
        patient_id = self._patient_id(person)
        icd, name = ("N18.500", "慢性肾脏病5期") if dept.code == "0304" else rng.choice(INP_DIAGNOSES)
        t = _dt.datetime.combine(self.day, _dt.time(9)) + _dt.timedelta(minutes=rng.randint(0, 480))
        clerk = ("A001", "住院处甲")
        med_type = "SY" if dept.code == "0502" else "PT"
        admission = {
            "ADM_ID": adm_id, "PATIENT_ID": patient_id, "INPATIENT_NO": f"ZY{self.day:%y%m%d}{adm_id % 10000:04d}",
            "MEDREC_NO": f"BA{patient_id[1:]}", **self._card(person), "ID_TYPE": "1", "ID_NO": person.certno,
            "PAT_NAME": person.psn_name, "INSUR_TYPE": _INSUR[person.insutype], "MED_TYPE": med_type,
            "ADM_TIME": t, "ADM_DEPT_CODE": dept.code, "ADM_DEPT_NAME": dept.name,
            "BED_NO": f"{dept.code[-2:]}-{rng.randint(1, 40):02d}", "ATTEND_DOC_CODE": doctor.code,
            "ATTEND_DOC_NAME": doctor.name, "ADM_DIAG_CODE": icd, "ADM_DIAG_NAME": name,
            "ADM_DIAG_DESC": f"{name}入院", "CONTACT_NAME": person.psn_name[0] + "某某",
            "CONTACT_TEL": person.phone, "PAY_MODE": "1", "STATUS": "1", "UPDATE_TIME": t,
            "OPERATOR_ID": clerk[0], "OPERATOR_NAME": clerk[1],
        }
        self.emit(T.INP_ADMISSION, "c", t, after=admission)
        if force == "cancel_admission" or (force is None and rng.random() < 0.04):  # 取消入院
            t2 = t + _dt.timedelta(minutes=rng.randint(10, 60))
            self.emit(T.INP_ADMISSION, "u", t2, before=admission,
                      after={**admission, "STATUS": "9", "UPDATE_TIME": t2})
            return
        days = 5 if force == "mid_settle" else rng.randint(2, 6)
        current_dept, current_doc = dept, doctor
        lines: list[dict[str, Any]] = []
        mid_settled = False
        for d in range(days):
            day_start = _dt.datetime.combine(self.day + _dt.timedelta(days=d), _dt.time(7, 30))
            if d == 0:  # the first day's charges come after the admission
                day_start = t + _dt.timedelta(minutes=20)
            if d == 1 and (force == "transfer" or (force is None and rng.random() < 0.3)):  # 转科 / 换床
                other = rng.choice([x for x in INP_DEPTS if x.code != dept.code])
                change_type = rng.choice(("DEPT", "BED"))
                ct = day_start + _dt.timedelta(hours=2, minutes=rng.randint(0, 59))
                if change_type == "DEPT":
                    current_dept, current_doc = other, doctors_of(other)[0]
                self.emit(T.INP_ADMISSION_LOG, "c", ct, after={
                    "LOG_ID": self._int_id("admlog", 5), "ADM_ID": adm_id, "PATIENT_ID": patient_id,
                    "CHANGE_TYPE": change_type, "CHANGE_TIME": ct,
                    "NEW_DEPT_CODE": current_dept.code if change_type == "DEPT" else None,
                    "NEW_DEPT_NAME": current_dept.name if change_type == "DEPT" else None,
                    "NEW_BED_NO": f"{current_dept.code[-2:]}-{rng.randint(1, 40):02d}",
                    "NEW_DOC_CODE": current_doc.code if change_type == "DEPT" else None,
                    "NEW_DOC_NAME": current_doc.name if change_type == "DEPT" else None,
                    "NEW_DIAG_CODE": None, "NEW_DIAG_NAME": None, "NEW_INSUR_TYPE": None,
                    "OPERATOR_ID": clerk[0], "OPERATOR_NAME": clerk[1],
                })
            items = list(INP_DAILY_ITEMS) + rng.sample(INP_EXTRA_ITEMS[:3], rng.randint(0, 2))
            if dept.code == "0304" and d % 2 == 0:
                items.append(INP_EXTRA_ITEMS[3])  # 血液透析
            for n, item in enumerate(items):
                qty = Decimal(rng.randint(1, 2)) if item.drug else Decimal(1)
                ft = day_start + _dt.timedelta(minutes=30 + n)
                line = {
                    "DETAIL_ID": self._int_id("ipfee", 7), "ADM_ID": adm_id, "PATIENT_ID": patient_id,
                    "ORDER_NO": f"YZ{adm_id}{n:03d}", "MED_TYPE": med_type, "FEE_TIME": ft, "TCM_USAGE": None,
                    "DSCG_DRUG_FLAG": "N", "MATN_FLAG": "Y" if med_type == "SY" else "N",
                    "ITEM_CODE": item.code, "ITEM_NAME": item.name, "YB_CODE": item.yb_code,
                    "AMOUNT": _money(item.price * qty), "QTY": qty, "PRICE": item.price, "DOSAGE": item.dosage,
                    "FREQUENCY": item.frequency, "DAYS": Decimal(1) if item.drug else None, "ROUTE": item.route,
                    "BILL_DEPT_CODE": current_dept.code, "BILL_DEPT_NAME": current_dept.name,
                    "BILL_DOC_CODE": current_doc.code, "BILL_DOC_NAME": current_doc.name,
                    "EXEC_DEPT_CODE": current_dept.code, "EXEC_DEPT_NAME": current_dept.name,
                    "ORDER_DOC_CODE": current_doc.code, "ORDER_DOC_NAME": current_doc.name, "APPROVE_FLAG": None,
                    "TRACE_CODES": self._trace_codes(item, qty), "INIT_DETAIL_ID": None, "MEMO": None,
                    "OPERATOR_ID": "N001", "OPERATOR_NAME": "护士站",
                }
                lines.append(line)
                self.emit(T.INP_FEE_DETAIL, "c", ft, after=line)
            reversible = [ln for ln in lines if ln["INIT_DETAIL_ID"] is None
                          and not any(r["INIT_DETAIL_ID"] == ln["DETAIL_ID"] for r in lines)]
            if reversible and rng.random() < 0.1:  # only a charge not reversed yet (never a reversal line)
                original = rng.choice(reversible)
                rt = day_start + _dt.timedelta(hours=6)
                reversal = {**original, "DETAIL_ID": self._int_id("ipfee", 7), "FEE_TIME": rt,
                            "QTY": -original["QTY"], "AMOUNT": -original["AMOUNT"],
                            "INIT_DETAIL_ID": original["DETAIL_ID"], "TRACE_CODES": None, "MEMO": "医嘱取消冲销"}
                lines.append(reversal)
                self.emit(T.INP_FEE_DETAIL, "c", rt, after=reversal)
            mid = force == "mid_settle" or (force is None and rng.random() < 0.25)
            if d == days - 3 and days >= 5 and not mid_settled and mid:  # 中途结算
                mid_settled = True
                st = day_start + _dt.timedelta(hours=10)
                self._settle(adm_id, patient_id, person, lines, st, mid=True)
                lines = []
        end = _dt.datetime.combine(self.day + _dt.timedelta(days=days), _dt.time(10)) + _dt.timedelta(
            minutes=rng.randint(0, 120))
        discharge = self._discharge(adm_id, patient_id, person, current_dept, current_doc, icd, name, end)
        if force == "cancel_discharge" or (force is None and rng.random() < 0.06):  # 取消出院, discharged again
            self.emit(T.INP_DISCHARGE, "d", end + _dt.timedelta(minutes=20), before=discharge)
            end += _dt.timedelta(hours=1)
            self._discharge(adm_id, patient_id, person, current_dept, current_doc, icd, name, end)
        settle_at = end + _dt.timedelta(minutes=rng.randint(10, 40))
        settle_id = self._settle(adm_id, patient_id, person, lines, settle_at, mid=False)
        if force == "refund" or (force is None and rng.random() < 0.03):
            rt = settle_at + _dt.timedelta(minutes=30)
            self.emit(T.YB_REFUND_REQUEST, "c", rt, after={
                "REQ_ID": self._str_id("refund", "R"), "VISIT_ID": adm_id, "VISIT_TYPE": "I",
                "PATIENT_ID": patient_id, "REQ_TIME": rt, "SETTLE_REQ_ID": settle_id, "SETL_ID": None,
                "REASON": "费用有误，撤销结算", "OPERATOR_ID": "C101", "OPERATOR_NAME": "住院结算员",
            })

    def _discharge(self, adm_id: int, patient_id: str, person: Person, dept: Department, doctor: Any, icd: str,
                   name: str, at: _dt.datetime) -> dict[str, Any]:
        row = {
            "DSCG_ID": self._int_id("dscg", 4), "ADM_ID": adm_id, "PATIENT_ID": patient_id, "DSCG_TIME": at,
            "INSUR_TYPE": _INSUR[person.insutype], "DSCG_DEPT_CODE": dept.code, "DSCG_DEPT_NAME": dept.name,
            "DSCG_BED_NO": f"{dept.code[-2:]}-01", "DSCG_WAY": "01", "MAIN_DIAG_CODE": icd, "MAIN_DIAG_NAME": name,
            "SEC_DIAG_CODE": "I10.x00" if self.rng.random() < 0.3 else None,
            "OPRN_CODE": None, "OPRN_NAME": None, "DOCTOR_CODE": doctor.code, "DOCTOR_NAME": doctor.name,
            "DIE_DATE": None, "OPERATOR_ID": "A001", "OPERATOR_NAME": "住院处甲",
        }
        row["SEC_DIAG_NAME"] = "高血压" if row["SEC_DIAG_CODE"] else None
        self.emit(T.INP_DISCHARGE, "c", at, after=row)
        return row

    def _settle(self, adm_id: int, patient_id: str, person: Person, lines: list[dict[str, Any]],
                at: _dt.datetime, *, mid: bool) -> str:
        req_id = self._str_id("settle", "S")
        self.emit(T.YB_SETTLE_REQUEST, "c", at, after={
            "REQ_ID": req_id, "VISIT_ID": adm_id, "VISIT_TYPE": "I", "PATIENT_ID": patient_id, "REQ_TIME": at,
            "ACCT_USED": "Y" if person.insutype == "310" else "N", "SETL_WAY": "01", "MID_SETL": "1" if mid else "0",
            "INVOICE_NO": self._str_id("inv", "I"),
            "TOTAL_AMT": sum((line["AMOUNT"] for line in lines), Decimal("0.00")), "BATCH_NO": None,
            "CARD_TYPE": "1", "CARD_NO": person.certno, "CARD_SN": None, "INSUR_TYPE": _INSUR[person.insutype],
            "OPERATOR_ID": "C101", "OPERATOR_NAME": "住院结算员",
        })
        return req_id


# ---------------------------------------------------------------------------------------------------------------


def _inject(kind: str, encoder: CdcEncoder, day: HisDay, sample: list[tuple[str, bytes | None, bytes | None]],
            n: int) -> RawCdcMessage:
    rng = day.rng
    shape = encoder.shape
    at = _dt.datetime.combine(day.day, _dt.time(12)).replace(tzinfo=SHANGHAI) + _dt.timedelta(seconds=n)
    if kind == "bad_json":
        topic, key, value = rng.choice([s for s in sample if s[2] is not None])
        assert value is not None
        return RawCdcMessage(topic=topic, key=key, value=value[: len(value) // 2], injected=kind,
                             expect_error="DecodeError")
    if kind == "unknown_table":
        # a change of a table the mapping does not know, routed (as Debezium's topic-routing SMT does when a
        # table.include.list grows) onto a topic the ingest consumes
        row = {"STOCK_ID": 900000 + n, "ITEM_CODE": "Y00123", "QTY": Decimal("120.0000"), "UPDATE_TIME": at}
        (_, key, value), *_ = encoder.encode(RowChange(T.PHARMACY_STOCK, "c", None, row, at))
        topic = encoder.topic(T.OUTP_REGISTER)
        return RawCdcMessage(topic=topic, key=key, value=value, injected=kind, expect_error="UnmappableEventError")
    base = {
        "DETAIL_ID": 990000000 + n, "REG_ID": 0, "PATIENT_ID": "P00000000", "RECIPE_NO": None, "BATCH_NO": None,
        "ORDER_NO": None, "FEE_TIME": at.replace(tzinfo=None), "ETIP_FLAG": "N", "ITEM_CODE": "250101001",
        "ITEM_NAME": "血常规", "YB_CODE": "002501010010000-250101001", "AMOUNT": Decimal("20.00"),
        "QTY": Decimal(1), "PRICE": Decimal("20.00"), "INIT_DETAIL_ID": None,
    }
    base["REG_ID"] = int(f"{day.day:%y%m%d}{99990 + n % 10:05d}")
    if kind == "missing_column":
        del base["YB_CODE"]
        expect = "UnmappableEventError"
    elif kind == "bad_date":
        base["FEE_TIME"] = f"{day.day:%Y}-02-30 25:61:00"
        expect = "DecodeError" if shape.schemas else "UnmappableEventError"
    else:
        raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
    (topic, key, value), *_ = encoder.encode(RowChange(T.OUTP_FEE_DETAIL, "c", None, base, at))
    return RawCdcMessage(topic=topic, key=key, value=value, injected=kind, expect_error=expect)


def _spread(rng: random.Random, count: int, paths: tuple[str, ...]) -> dict[int, str]:
    """Visit index -> forced path, one per path, when at least twice as many visits as paths (else none)."""
    if count < 2 * len(paths):
        return {}
    return dict(zip(rng.sample(range(count), len(paths)), paths, strict=True))


def _heartbeat(shape: CdcShape, ts_ms: int) -> RawCdcMessage:
    topic = f"{HEARTBEAT_TOPIC_PREFIX}.{shape.topic_prefix}"
    key: dict[str, Any] = {"serverName": shape.topic_prefix}
    value: dict[str, Any] = {"ts_ms": ts_ms}
    if shape.schemas:
        key = {"schema": {"type": "struct", "optional": False, "name": "io.debezium.connector.common.ServerNameKey",
                          "fields": [{"type": "string", "optional": False, "field": "serverName"}]}, "payload": key}
        value = {"schema": {"type": "struct", "optional": False, "name": "io.debezium.connector.common.Heartbeat",
                            "fields": [{"type": "int64", "optional": False, "field": "ts_ms"}]}, "payload": value}
    return RawCdcMessage(topic=topic, key=dumps(key).encode(), value=dumps(value).encode())


def generated_topics(shape: CdcShape | None = None, *, heartbeats: bool = True) -> list[str]:
    """Every topic ``generate_day`` may write to in this shape (to create them before producing); injected
    faults use these topics too, so an ingest consuming them sees every fault."""
    shape = shape or CdcShape()
    encoder = CdcEncoder(shape)
    topics = [encoder.topic(t) for t in T.ALL_TABLES]
    if heartbeats:
        topics.append(f"{HEARTBEAT_TOPIC_PREFIX}.{shape.topic_prefix}")
    return topics


def generate_day(
    seed: int,
    *,
    day: _dt.date = _dt.date(2025, 3, 3),
    outpatients: int = 40,
    inpatients: int = 6,
    shape: CdcShape | None = None,
    inject: Mapping[str, int] | None = None,
    duplicates: int = 0,
    heartbeat_every: int = 0,
    population_size: int = 500,
    people: list[Person] | None = None,
    plain: bool = False,
) -> list[RawCdcMessage]:
    """A day of HIS activity as Debezium records, in commit order. Deterministic for equal arguments.

    ``plain``: every outpatient visit takes the plain path (registered, one acute diagnosis, charged, settled: no
    self-pay, 门慢特病, 退号, reversal, refund or diagnosis update) — a benchmark comparing the bridge with a loop
    of those calls."""
    shape = shape or CdcShape()
    people = people if people is not None else population(seed, population_size)
    if not people:
        raise ValueError("the population is empty")
    his = HisDay(seed, day, people)
    chosen = his.rng.sample(range(len(people)), min(len(people), outpatients + inpatients))
    chosen += [his.rng.randrange(len(people)) for _ in range(outpatients + inpatients - len(chosen))]
    out_force = {n: "plain" for n in range(outpatients)} if plain else _spread(his.rng, outpatients, OUTPATIENT_PATHS)
    in_force = _spread(his.rng, inpatients, INPATIENT_PATHS)
    for n, i in enumerate(chosen[:outpatients]):
        his.outpatient_visit(people[i], out_force.get(n))
    for n, i in enumerate(chosen[outpatients:]):
        his.inpatient_stay(people[i], in_force.get(n))
    encoder = CdcEncoder(shape, start_position=1_000_000 + (seed % 1000) * 100_000)
    records = [rec for change in his.ordered() for rec in encoder.encode(change)]
    messages = [RawCdcMessage(topic=t, key=k, value=v) for t, k, v in records]
    if duplicates:
        candidates = [i for i, m in enumerate(messages) if m.value is not None]
        picks = sorted(his.rng.sample(candidates, min(duplicates, len(candidates))), reverse=True)
        for i in picks:
            original = messages[i]
            messages.insert(i + 1, original.model_copy(update={"duplicate": True}))
    for kind, count in sorted((inject or {}).items()):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        for n in range(count):
            bad = _inject(kind, encoder, his, records, n)
            messages.insert(his.rng.randint(0, len(messages)), bad)
    if heartbeat_every > 0:
        base_ms = int(_dt.datetime.combine(day, _dt.time(8)).replace(tzinfo=SHANGHAI).timestamp() * 1000)
        for pos in range(len(messages) - len(messages) % heartbeat_every, 0, -heartbeat_every):
            messages.insert(pos, _heartbeat(shape, base_ms + pos * 1000))
    return messages
