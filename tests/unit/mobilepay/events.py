"""Imported as ``unit.mobilepay.events``: canonical HIS events of outpatient visits as ingest publishes them."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.hisevents.models import (
    Cancellation,
    ChargeLineAdded,
    ChargeLineReversed,
    EventSource,
    PatientRegistered,
    SettlementRequested,
)

__all__ = ["base", "registered", "line", "reversal", "cancellation", "counter"]

_offsets = itertools.count(1)


def base(visit: str, patient: str, event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or f"evt-{uuid.uuid4().hex[:16]}", "his_visit_id": visit, "visit_kind": "outpatient",
            "his_patient_id": patient, "occurred_at": clock.now(),
            "source": EventSource(topic="his.cdc", partition=0, offset=next(_offsets), table="T")}


def registered(visit: str, patient: str, person: Any, *, channel: str = "wechat", settle_choice: str = "insurance"
               ) -> PatientRegistered:
    return PatientRegistered(**base(visit, patient), ipt_otp_no="MZ" + visit, mdtrt_cert_type="02",
                             mdtrt_cert_no=person.certno, psn_cert_type="01", certno=person.certno,
                             psn_name=person.psn_name, insutype=person.insutype, med_type="11", begntime=clock.now(),
                             dept_code="K01", dept_name="内科", caty="A03", channel=channel,  # type: ignore[arg-type]
                             settle_choice=settle_choice)  # type: ignore[arg-type]


def line(visit: str, patient: str, sn: str, amount: str, *, cnt: str = "1", code: str = "XA01") -> ChargeLineAdded:
    c = Decimal(cnt)
    return ChargeLineAdded(**base(visit, patient), feedetl_sn=sn, fee_ocur_time=clock.now(), med_list_codg=code,
                           medins_list_codg="H" + code, medins_list_name="项目" + code,
                           det_item_fee_sumamt=Decimal(amount), cnt=c, pric=Decimal(amount) / c,
                           bilg_dept_codg="K01", bilg_dept_name="内科", bilg_dr_codg="D01", bilg_dr_name="医生甲")


def reversal(visit: str, patient: str, sn: str, of: ChargeLineAdded) -> ChargeLineReversed:
    return ChargeLineReversed(**base(visit, patient), feedetl_sn=sn, init_feedetl_sn=of.feedetl_sn,
                              fee_ocur_time=clock.now(), med_list_codg=of.med_list_codg,
                              medins_list_codg=of.medins_list_codg, det_item_fee_sumamt=-of.det_item_fee_sumamt,
                              cnt=-of.cnt, pric=of.pric)


def cancellation(visit: str, patient: str, request_id: str) -> Cancellation:
    return Cancellation(**base(visit, patient), target="registration", his_request_id=request_id)


def counter(visit: str, patient: str, request_id: str, total: str) -> SettlementRequested:
    return SettlementRequested(**base(visit, patient), his_request_id=request_id, medfee_sumamt=Decimal(total))
