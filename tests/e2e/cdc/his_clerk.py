"""Imported as ``e2e.cdc.his_clerk``. The HIS's own staff at work: rows written into the stand-in HIS database
with SQL, one committed transaction per action, as a HIS front end would write them — nothing else.

The tables are those of ``example-postgres-his.sql`` (lower-case names for the HIS's own tables, quoted upper
case for the 医保 request tables); ids are NUMERIC; times are Shanghai wall-clock times without a zone.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from yibao.core import clock
from yibao.fakedata.his_catalog import INP_DAILY_ITEMS, INP_DEPTS, OUTP_DEPTS, OUTP_ITEMS, Item, doctors_of
from yibao.fakedata.people import Person
from yibao.stack.his import StandInHis

__all__ = ["HisClerk", "Line"]

_INSUR = {"310": "ZG", "390": "JM", "340": "LX"}


@dataclass(frozen=True)
class Line:
    detail_id: int
    visit_id: int
    amount: Decimal


class HisClerk:
    def __init__(self, his: StandInHis, *, first_id: int = 880001) -> None:
        self.his = his
        self._ids = itertools.count(first_id)
        self._t = clock.now().replace(tzinfo=None, microsecond=0) - _dt.timedelta(hours=2)

    def next_id(self) -> int:
        return next(self._ids)

    def _now(self) -> _dt.datetime:
        """HIS times move forward a little with every action (microseconds included, as `timestamp` keeps)."""
        self._t += _dt.timedelta(seconds=7, microseconds=123456)
        return self._t

    def sql(self, statement: str, params: dict[str, Any] | None = None) -> None:
        with psycopg.connect(self.his.dsn, autocommit=True) as conn:
            conn.execute(statement, params or {})  # type: ignore[arg-type]

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        columns = ", ".join(row)
        values = ", ".join(f"%({c.strip(chr(34))})s" for c in row)
        self.sql(f"INSERT INTO his.{table} ({columns}) VALUES ({values})",
                 {c.strip('"'): v for c, v in row.items()})

    # outpatient -------------------------------------------------------------------------------------------------

    def register(self, person: Person) -> int:
        reg_id = self.next_id()
        dept = OUTP_DEPTS[0]
        doctor = doctors_of(dept)[0]
        self._insert("outp_register", {
            "reg_id": reg_id, "patient_id": f"P{reg_id}", "reg_no": f"MZ{reg_id}", "card_type": "1",
            "card_no": person.certno, "id_type": "1", "id_no": person.certno, "pat_name": person.psn_name,
            "insur_type": _INSUR[person.insutype], "med_type": "PT", "reg_time": self._now(),
            "dept_code": dept.code, "dept_name": dept.name, "dept_caty": dept.caty, "doctor_code": doctor.code,
            "doctor_name": doctor.name, "reg_fee": Decimal("10.00"), "reg_type": "01", "reg_channel": "1",
            "pay_mode": "1", "status": "1", "operator_id": "C001", "operator_name": "门诊收费一",
        })
        return reg_id

    def diagnose(self, reg_id: int) -> int:
        """The doctor's main diagnosis (one row: 2203 needs it before any settlement)."""
        diag_id = self.next_id()
        dept = OUTP_DEPTS[0]
        doctor = doctors_of(dept)[0]
        self._insert("outp_diagnosis", {
            "diag_id": diag_id, "reg_id": reg_id, "patient_id": f"P{reg_id}", "diag_seq": 1, "diag_class": "W",
            "icd_code": "J06.900", "diag_name": "急性上呼吸道感染", "main_flag": "Y", "med_type": "PT",
            "chief_complaint": "咽痛、发热2天", "dept_code": dept.code, "doctor_code": doctor.code,
            "doctor_name": doctor.name, "diag_time": self._now(), "valid_flag": "1",
        })
        return diag_id

    def charge(self, reg_id: int, item: Item, qty: Decimal, *, price: Decimal | None = None,
               reverses: Line | None = None) -> Line:
        detail_id = self.next_id()
        price = item.price if price is None else price
        amount = (price * qty).quantize(Decimal("0.01"))
        self._insert("outp_fee_detail", {
            "detail_id": detail_id, "reg_id": reg_id, "patient_id": f"P{reg_id}", "recipe_no": f"CF{reg_id}",
            "batch_no": f"{reg_id}01", "fee_time": self._now(), "item_code": item.code, "item_name": item.name,
            "yb_code": item.yb_code, "amount": amount, "qty": qty, "price": price,
            "bill_dept_code": OUTP_DEPTS[0].code, "bill_dept_name": OUTP_DEPTS[0].name,
            "bill_doc_code": doctors_of(OUTP_DEPTS[0])[0].code, "bill_doc_name": doctors_of(OUTP_DEPTS[0])[0].name,
            "init_detail_id": reverses.detail_id if reverses else None,
            "memo": "退费冲销" if reverses else None, "operator_id": "C001", "operator_name": "门诊收费一",
        })
        return Line(detail_id, reg_id, amount)

    def reverse(self, line: Line, item: Item, qty: Decimal, price: Decimal) -> Line:
        return self.charge(line.visit_id, item, -qty, price=price, reverses=line)

    def request_settlement(self, visit_id: int, total: Decimal, person: Person, *, visit_type: str = "O") -> int:
        req_id = self.next_id()
        self._insert('"YB_SETTLE_REQUEST"', {
            '"REQ_ID"': req_id, '"VISIT_ID"': visit_id, '"VISIT_TYPE"': visit_type, '"PATIENT_ID"': f"P{visit_id}",
            '"REQ_TIME"': self._now(), '"ACCT_USED"': "N", '"MID_SETL"': "0", '"INVOICE_NO"': f"I{req_id}",
            '"TOTAL_AMT"': total, '"CARD_TYPE"': "1", '"CARD_NO"': person.certno,
            '"INSUR_TYPE"': _INSUR[person.insutype], '"OPERATOR_ID"': "C001", '"OPERATOR_NAME"': "门诊收费一",
        })
        return req_id

    def request_refund(self, visit_id: int, settlement_req_id: int, *, visit_type: str = "O") -> int:
        req_id = self.next_id()
        self._insert('"YB_REFUND_REQUEST"', {
            '"REQ_ID"': req_id, '"VISIT_ID"': visit_id, '"VISIT_TYPE"': visit_type, '"PATIENT_ID"': f"P{visit_id}",
            '"REQ_TIME"': self._now(), '"SETTLE_REQ_ID"': settlement_req_id, '"REASON"': "患者要求退费",
            '"OPERATOR_ID"': "C001", '"OPERATOR_NAME"': "门诊收费一",
        })
        return req_id

    def request_cancel(self, visit_id: int, cancel_type: str, *, visit_type: str = "O") -> int:
        req_id = self.next_id()
        self._insert("yb_cancel_request", {
            "req_id": req_id, "visit_id": visit_id, "visit_type": visit_type, "patient_id": f"P{visit_id}",
            "req_time": self._now(), "cancel_type": cancel_type, "reason": "患者要求",
            "operator_id": "Y001", "operator_name": "医保窗口",
        })
        return req_id

    # inpatient --------------------------------------------------------------------------------------------------

    def admit(self, person: Person) -> int:
        adm_id = self.next_id()
        dept = INP_DEPTS[0]
        doctor = doctors_of(dept)[0]
        t = self._now()
        self._insert("inp_admission", {
            "adm_id": adm_id, "patient_id": f"P{adm_id}", "inpatient_no": f"ZY{adm_id}", "card_type": "1",
            "card_no": person.certno, "id_type": "1", "id_no": person.certno, "pat_name": person.psn_name,
            "insur_type": _INSUR[person.insutype], "med_type": "PT", "adm_time": t, "adm_dept_code": dept.code,
            "adm_dept_name": dept.name, "bed_no": "02-01", "attend_doc_code": doctor.code,
            "attend_doc_name": doctor.name, "adm_diag_code": "J18.900", "adm_diag_name": "肺炎", "pay_mode": "1",
            "status": "1", "update_time": t, "operator_id": "A001", "operator_name": "住院处甲",
        })
        return adm_id

    def cancel_admission(self, adm_id: int) -> None:
        """取消入院 the HIS way: the admission row's status becomes 9."""
        self.sql("UPDATE his.inp_admission SET status = '9', update_time = %(t)s WHERE adm_id = %(id)s",
                 {"t": self._now(), "id": adm_id})

    def charge_daily(self, adm_id: int) -> list[Line]:
        lines = []
        for item in INP_DAILY_ITEMS:
            detail_id = self.next_id()
            self._insert("inp_fee_detail", {
                "detail_id": detail_id, "adm_id": adm_id, "patient_id": f"P{adm_id}", "med_type": "PT",
                "fee_time": self._now(), "item_code": item.code, "item_name": item.name, "yb_code": item.yb_code,
                "amount": item.price, "qty": Decimal(1), "price": item.price, "bill_dept_code": INP_DEPTS[0].code,
                "bill_dept_name": INP_DEPTS[0].name, "bill_doc_code": doctors_of(INP_DEPTS[0])[0].code,
                "bill_doc_name": doctors_of(INP_DEPTS[0])[0].name, "operator_id": "N001", "operator_name": "护士站",
            })
            lines.append(Line(detail_id, adm_id, item.price))
        return lines

    def discharge(self, adm_id: int) -> int:
        dscg_id = self.next_id()
        dept = INP_DEPTS[0]
        self._insert("inp_discharge", {
            "dscg_id": dscg_id, "adm_id": adm_id, "patient_id": f"P{adm_id}", "dscg_time": self._now(),
            "dscg_dept_code": dept.code, "dscg_dept_name": dept.name, "dscg_way": "01", "main_diag_code": "J18.900",
            "main_diag_name": "肺炎", "doctor_code": doctors_of(dept)[0].code, "doctor_name": doctors_of(dept)[0].name,
            "operator_id": "A001", "operator_name": "住院处甲",
        })
        return dscg_id

    def cancel_discharge(self, dscg_id: int) -> None:
        """取消出院 the HIS way: the discharge row is deleted."""
        self.sql("DELETE FROM his.inp_discharge WHERE dscg_id = %(id)s", {"id": dscg_id})


ITEM_DRUG = OUTP_ITEMS[0]
ITEM_LAB = OUTP_ITEMS[5]
