"""Imported as ``unit.settlement.his_events``: canonical HIS events as the ingest service would publish them,
for settlement's tests (unit and integration)."""

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
    RefundRequested,
    SettlementRequested,
)

__all__ = ["base", "line", "reversal", "settle", "refund", "cancellation"]

_offsets = itertools.count(1)


def base(visit: str, kind: str, event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or f"evt-{uuid.uuid4().hex[:16]}", "his_visit_id": visit, "visit_kind": kind,
            "his_patient_id": "P0001", "occurred_at": clock.now(),
            "source": EventSource(topic="his.cdc", partition=0, offset=next(_offsets), table="FEE")}


def line(visit: str, kind: str, sn: str, amount: str, *, cnt: str = "1", code: str = "XA01",
         **kw: Any) -> ChargeLineAdded:
    c = Decimal(cnt)
    return ChargeLineAdded(**base(visit, kind), feedetl_sn=sn, fee_ocur_time=clock.now(), med_list_codg=code,
                           medins_list_codg="H" + code, det_item_fee_sumamt=Decimal(amount), cnt=c,
                           pric=Decimal(amount) / c, bilg_dept_codg="K01", bilg_dept_name="内科",
                           bilg_dr_codg="D01", bilg_dr_name="医生甲", **kw)


def reversal(visit: str, kind: str, sn: str, of: ChargeLineAdded, *, cnt: str | None = None) -> ChargeLineReversed:
    c = -(Decimal(cnt) if cnt is not None else of.cnt)
    return ChargeLineReversed(**base(visit, kind), feedetl_sn=sn, init_feedetl_sn=of.feedetl_sn,
                              fee_ocur_time=clock.now(), med_list_codg=of.med_list_codg,
                              medins_list_codg=of.medins_list_codg, det_item_fee_sumamt=c * of.pric, cnt=c,
                              pric=of.pric, bilg_dept_codg="K01", bilg_dept_name="内科", bilg_dr_codg="D01",
                              bilg_dr_name="医生甲")


def settle(visit: str, kind: str, request_id: str, total: str, *, mid: str = "0", acct: str = "1",
           sheet_of: str | None = None) -> SettlementRequested:
    return SettlementRequested(**base(visit, kind), his_request_id=request_id, medfee_sumamt=Decimal(total),
                               acct_used_flag=acct, mid_setl_flag=mid, invono="INV" + request_id[-6:],
                               sheet_of_visit_id=sheet_of)


def refund(visit: str, kind: str, request_id: str, *, of: str | None = None, setl_id: str | None = None
           ) -> RefundRequested:
    return RefundRequested(**base(visit, kind), his_request_id=request_id, settlement_request_id=of, setl_id=setl_id)


def cancellation(visit: str, kind: str, request_id: str, *, target: str = "discharge", **kw: Any) -> Cancellation:
    """退号 / 取消入院 / 取消出院 (``kw``: e.g. ``occurred_at``)."""
    return Cancellation(**{**base(visit, kind), **kw}, his_request_id=request_id, target=target)  # type: ignore[arg-type]
