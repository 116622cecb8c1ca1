"""The platform's memory: sessions, visits, fee details, settlements, messages, files, mobile orders.

Plain dataclasses held by :class:`Ledger` behind one re-entrant lock, so handlers running on the event loop or
in threads see a consistent ledger. ``Ledger.reset()`` empties it (persons come back from the seed).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from yibao.core import clock

from .population import SimPerson

__all__ = [
    "Session",
    "FeeDetail",
    "Visit",
    "Settlement",
    "MessageRecord",
    "StoredFile",
    "MobileOrder",
    "Ledger",
    "jsonable",
]


@dataclass
class Session:
    sign_no: str
    fixmedins_code: str
    opter_no: str
    sign_time: dt.datetime
    active: bool = True


@dataclass
class FeeDetail:
    feedetl_sn: str
    mdtrt_id: str
    psn_no: str
    chrg_bchno: str
    med_list_codg: str
    medins_list_codg: str
    det_item_fee_sumamt: Decimal
    cnt: Decimal
    pric: Decimal
    fee_ocur_time: str
    item_class: str
    msgid: str
    init_feedetl_sn: str = ""
    status: str = "uploaded"  # uploaded | settled | revoked
    setl_id: str = ""


@dataclass
class Visit:
    mdtrt_id: str
    kind: str  # outpatient | inpatient
    psn_no: str
    insutype: str
    fixmedins_code: str
    ipt_otp_no: str
    begntime: str
    created_msgid: str
    med_type: str = ""
    info_uploaded: bool = False
    status: str = "open"  # open | discharged | cancelled
    endtime: str = ""
    details: dict[str, FeeDetail] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    #: the hospital's own description of the visit as 2201/2401 sent it (2403 updates it): doctor, department,
    #: diagnosis … — what 5201 answers back
    registration: dict[str, Any] = field(default_factory=dict)
    #: what 2402 said about the discharge (department, bed, way); emptied by 2405
    discharge: dict[str, Any] = field(default_factory=dict)
    #: when the platform registered the visit (5201 opt_time)
    created: dt.datetime | None = None

    def active_details(self) -> list[FeeDetail]:
        return [d for d in self.details.values() if d.status != "revoked"]

    def unsettled(self, chrg_bchno: str = "") -> list[FeeDetail]:
        return [
            d for d in self.details.values()
            if d.status == "uploaded" and (not chrg_bchno or chrg_bchno == "0000" or d.chrg_bchno == chrg_bchno)
        ]


@dataclass
class Settlement:
    """A ledger entry: a settlement (refd_setl_flag 0) or the cancellation of one (refd_setl_flag 1).

    ``status``: active | cancelled (a later 2208/2305 exists) | reversed (erased by 2601).
    A cancellation entry carries negative amounts and ``orig_setl_id``.
    """

    setl_id: str
    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    infno: str
    msgid: str
    setl_time: dt.datetime
    insutype: str
    med_type: str
    clr_type: str
    clr_way: str
    clr_optins: str
    refd_setl_flag: str
    amounts: dict[str, Decimal]
    detail_sns: list[str] = field(default_factory=list)
    mid_setl_flag: str = "0"
    status: str = "active"
    orig_setl_id: str = ""
    cancel_setl_id: str = ""
    setlinfo: dict[str, Any] = field(default_factory=dict)


@dataclass
class MessageRecord:
    """Every msgid the platform accepted, with what it did (so 2601 can undo exactly that)."""

    msgid: str
    infno: str
    fixmedins_code: str
    received: dt.datetime
    infcode: int = 0
    effect: dict[str, Any] = field(default_factory=dict)
    reversed_by: str = ""


@dataclass
class StoredFile:
    file_qury_no: str
    filename: str
    fixmedins_code: str
    content: bytes
    created: dt.datetime
    expires: dt.datetime
    origin: str  # "upload" | "3202" | "13xx" …


@dataclass
class MobileOrder:
    pay_ord_id: str
    pay_token: str
    org_codg: str
    psn_no: str
    insutype: str
    med_org_ord: str
    med_type: str
    fee_sumamt: Decimal
    items: list[tuple[str, Decimal]]
    status: str
    created: dt.datetime
    request: dict[str, Any] = field(default_factory=dict)
    amounts: dict[str, Decimal] = field(default_factory=dict)
    setl_time: dt.datetime | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    #: "2.0" or "1.0" (from the 6201 envelope's version); 1.0 orders get no settlement callback
    version: str = "2.0"
    #: the national settlement 6202 booked (hiDocSn) and its visit (hiRgstSn); 6202's orgBizSer (its msgid)
    setl_id: str = ""
    mdtrt_id: str = ""
    org_biz_ser: str = ""
    #: what has been refunded so far (6203 CASH / HI / ALL, or a 2208 at the counter)
    cash_refunded: Decimal = Decimal("0.00")
    hi_refunded: bool = False
    #: WeChat: the med-ins order created on this order (out_trade_no), if any
    wechat: dict[str, Any] = field(default_factory=dict)


def jsonable(obj: Any) -> Any:
    """A JSON-ready copy (datetimes as text, Decimals kept for wire.dumps)."""
    if hasattr(obj, "__dataclass_fields__"):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, dt.datetime):
        return clock.format_datetime(obj)
    if isinstance(obj, bytes):
        return f"<{len(obj)} bytes>"
    return obj


class Ledger:
    """All state of one simulator run."""

    def __init__(self, persons: list[SimPerson], institutions: list[str]) -> None:
        self.lock = threading.RLock()
        self._seed_persons = persons
        self._seed_institutions = list(institutions)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.persons: dict[str, SimPerson] = {}
            for p in self._seed_persons:
                self.add_person(SimPerson(**{**p.__dict__, "extra": dict(p.extra)}))
            self.institutions: set[str] = set(self._seed_institutions)
            self.sessions: dict[str, Session] = {}
            self.visits: dict[str, Visit] = {}
            self.settlements: dict[str, Settlement] = {}
            self.messages: dict[str, MessageRecord] = {}
            self.files: dict[str, StoredFile] = {}
            self.orders: dict[str, MobileOrder] = {}
            self.reversals: list[dict[str, Any]] = []
            self.ipt_otp_nos: dict[tuple[str, str], str] = {}
            #: the data uploads, catalogs and other targets (yibao.simulator.uploads, yibao.simulator.targets)
            self.uploads: Any = None
            self.targets: Any = None

    def add_person(self, person: SimPerson) -> None:
        with self.lock:
            self.persons[person.psn_no] = person

    def find_person(self, cert_no: str) -> SimPerson | None:
        """By psn_no, certno, card_sn or e-voucher token (1101's mdtrt_cert_no)."""
        with self.lock:
            if cert_no in self.persons:
                return self.persons[cert_no]
            for p in self.persons.values():
                if cert_no and cert_no in (p.certno, p.card_sn, p.ec_token):
                    return p
            return None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "sessions": jsonable(list(self.sessions.values())),
                "visits": jsonable(list(self.visits.values())),
                "settlements": jsonable(list(self.settlements.values())),
                "reversals": jsonable(self.reversals),
                "messages": jsonable(list(self.messages.values())),
                "files": jsonable(list(self.files.values())),
                "orders": jsonable(list(self.orders.values())),
            }
