"""The truth a repair starts from: the platform's own record of an entry (5203), and our call log.

* :func:`query_entry` — 5203 结算信息查询 of one setl_id. The answer says whether the entry exists, whether it is
  still valid (``vali_flag`` 1) or was cancelled (``cancel_setl_id``), its amounts and its msgid
  (``medins_setl_id`` = the msgid of the transaction that booked it). A platform that answers "no such
  settlement" (结算信息不存在 and the like, configurable markers) means the entry does not exist there; any other
  rejection is not read as absence — the repair then waits for people.
* :func:`call_for` — the row of ``platform_calls`` (written by every service's platform client) of the message
  that booked an entry: its infno, how it ended for us (``unknown`` = the classic 单边账 after a timeout) and the
  HIS visit it belonged to (``visit_key``), found by msgid, else by mdtrt_id among settlement calls.

Both read only this deployment's calls (``platform_calls.deployment``, the topic prefix of the connection that
logged the call; see :func:`ours`): two deployments sharing a database never reconcile against each other's calls.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Connection, select

from yibao.core import clock
from yibao.core.db.schema import platform_calls, recon_ledger
from yibao.core.deployment import Deployment
from yibao.core.errors import ReconciliationError
from yibao.core.money import ZERO, money
from yibao.core.results import SettlementSplit
from yibao.envelope.errors import BusinessRejection

__all__ = [
    "PlatformEntry",
    "CallInfo",
    "SETTLEMENT_INFNOS",
    "entry_from_setlinfo",
    "query_entry",
    "call_for",
    "ours",
    "optins_of_calls",
    "infno_of",
    "is_absent",
]

#: phrases of a 5203 rejection meaning "there is no such settlement"
#: transactions that book ledger entries (settle, cancel), outpatient and inpatient
SETTLEMENT_INFNOS: tuple[str, ...] = ("2207", "2208", "2304", "2305")
_INFNO = {("11", "0"): "2207", ("11", "1"): "2208", ("21", "0"): "2304", ("21", "1"): "2305"}
_SPLIT_FIELDS = tuple(SettlementSplit.model_fields)


class PlatformCaller(Protocol):
    async def call(self, infno: str, input: Mapping[str, Any], **kw: Any) -> Any: ...  # noqa: A002


@dataclass(frozen=True)
class PlatformEntry:
    setl_id: str
    mdtrt_id: str
    psn_no: str
    insutype: str
    clr_type: str
    clr_optins: str
    refd_setl_flag: str
    vali_flag: str
    setl_time: _dt.datetime
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    msgid: str | None = None
    cancel_setl_id: str | None = None
    med_type: str | None = None
    split: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.vali_flag != "0"

    def amounts(self) -> dict[str, Decimal]:
        return {"medfee_sumamt": self.medfee_sumamt, "fund_pay_sumamt": self.fund_pay_sumamt,
                "acct_pay": self.acct_pay, "psn_cash_pay": self.psn_cash_pay}


def _text(info: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = info.get(name)
        if value not in (None, ""):
            return str(value)
    return ""


def _amount(info: Mapping[str, Any], *names: str) -> Decimal:
    for name in names:
        value = info.get(name)
        if value not in (None, ""):
            if isinstance(value, float):  # a platform answer parsed without parse_float=Decimal
                value = repr(value)
            return money(value)
    return ZERO


def entry_from_setlinfo(info: Mapping[str, Any]) -> PlatformEntry:
    """A 5203 ``setlinfo`` as a PlatformEntry (psn_cash_pay may be called cash_payamt, psn_part_amt psn_pay)."""
    split: dict[str, Any] = {}
    for name in _SPLIT_FIELDS:
        aliases = {"psn_cash_pay": ("psn_cash_pay", "cash_payamt"), "psn_part_amt": ("psn_part_amt", "psn_pay")}
        names = aliases.get(name, (name,))
        if any(info.get(n) not in (None, "") for n in names):
            split[name] = str(_amount(info, *names))
    setl_time_text = _text(info, "setl_time")
    return PlatformEntry(
        setl_id=_text(info, "setl_id"), mdtrt_id=_text(info, "mdtrt_id"), psn_no=_text(info, "psn_no"),
        insutype=_text(info, "insutype"), clr_type=_text(info, "clr_type"),
        clr_optins=_text(info, "clr_optins", "insu_optins"), refd_setl_flag=_text(info, "refd_setl_flag") or "0",
        vali_flag=_text(info, "vali_flag") or "1",
        setl_time=clock.parse_datetime(setl_time_text) if setl_time_text else clock.now(),
        medfee_sumamt=_amount(info, "medfee_sumamt"), fund_pay_sumamt=_amount(info, "fund_pay_sumamt"),
        acct_pay=_amount(info, "acct_pay"), psn_cash_pay=_amount(info, "psn_cash_pay", "cash_payamt"),
        msgid=_text(info, "medins_setl_id") or None, cancel_setl_id=_text(info, "cancel_setl_id") or None,
        med_type=_text(info, "med_type") or None, split=split,
    )


def is_absent(exc: BusinessRejection, markers: Iterable[str]) -> bool:
    """Whether the platform's refusal says "no such record" (the catalog's wording ``not_found``)."""
    text = (exc.err_msg or "").lower()
    return any(marker.lower() in text for marker in markers)


async def query_entry(client: PlatformCaller, *, setl_id: str, mdtrt_id: str, psn_no: str, insuplc_admdvs: str,
                      markers: Iterable[str]) -> PlatformEntry | None:
    """5203 of one entry: the PlatformEntry, or None when the platform says there is no such settlement.

    Any other rejection, and any transport or unknown outcome, propagates: absence is never guessed."""
    try:
        response = await client.call("5203", {"data": {"psn_no": psn_no, "setl_id": setl_id, "mdtrt_id": mdtrt_id}},
                                     insuplc_admdvs=insuplc_admdvs or None)
    except BusinessRejection as exc:
        if is_absent(exc, markers):
            return None
        raise
    output = getattr(response, "output", response)
    info = output.get("setlinfo") if isinstance(output, Mapping) else None
    if not isinstance(info, Mapping):  # an answer that says nothing is not an answer that says "absent"
        raise ReconciliationError("5203 answered without setlinfo: the entry's state is unknown")
    entry = entry_from_setlinfo(info)
    if not entry.setl_id:
        entry = replace(entry, setl_id=setl_id)
    return entry


def infno_of(clr_type: str, refd_setl_flag: str) -> str | None:
    """The transaction that books an entry of this clr_type and flag (2207/2208 outpatient, 2304/2305 inpatient)."""
    return _INFNO.get((clr_type, refd_setl_flag or "0"))


def ours(conn: Connection) -> Any:
    """The national calls of this deployment: those logged through a connection of its topic prefix."""
    return platform_calls.c.deployment == Deployment.of(conn).prefix


def optins_of_calls(conn: Connection, start: _dt.datetime, end: _dt.datetime) -> set[str]:
    """清算经办机构 named in the answers of our successful settlement calls between ``start`` and ``end``
    that the hospital ledger does not hold (their msgid is not booked): the suspects of a lost answer."""
    c = platform_calls.c
    found: set[str] = set()
    # the ledger rows of the period (± a day: an answer near midnight), through the setl_time index
    margin = _dt.timedelta(days=1)
    booked = select(recon_ledger.c.setl_id).where(
        recon_ledger.c.setl_time >= start - margin, recon_ledger.c.setl_time < end + margin,
        recon_ledger.c.msgid == c.msgid).exists()
    rows = conn.execute(select(c.output_masked).where(ours(conn), c.infno.in_(SETTLEMENT_INFNOS),
                                                      c.outcome == "success", c.started_at >= start,
                                                      c.started_at < end, ~booked))
    for (text,) in rows:
        try:
            output = json.loads(text or "{}")
        except ValueError:
            continue
        info = output.get("setlinfo") if isinstance(output, dict) else None
        if isinstance(info, dict) and info.get("clr_optins"):
            found.add(str(info["clr_optins"]))
    return found


@dataclass(frozen=True)
class CallInfo:
    msgid: str | None
    infno: str
    outcome: str
    visit_key: str | None
    started_at: _dt.datetime
    service: str


def _info(row: Any) -> CallInfo:
    return CallInfo(row.msgid, row.infno, row.outcome, row.visit_key, row.started_at, row.service)


def call_for(conn: Connection, *, msgid: str | None, mdtrt_id: str | None,
             since: _dt.datetime | None = None) -> CallInfo | None:
    """Our call log's row of the message that booked an entry (see the module docstring)."""
    c = platform_calls.c
    if msgid:
        row = conn.execute(select(c.msgid, c.infno, c.outcome, c.visit_key, c.started_at, c.service)
                           .where(c.msgid == msgid, ours(conn))).first()
        if row is not None:
            return _info(row)
    if not mdtrt_id:
        return None
    query = (select(c.msgid, c.infno, c.outcome, c.visit_key, c.started_at, c.service, c.input_masked)
             .where(ours(conn), c.infno.in_(SETTLEMENT_INFNOS), c.outcome.in_(("unknown", "success")),
                    c.input_masked.like(f"%{mdtrt_id}%"))  # a cheap pre-filter; the JSON decides
             .order_by(c.started_at.desc()))
    if since is not None:
        query = query.where(c.started_at >= since)
    for row in conn.execute(query.limit(2000)):
        try:
            payload = json.loads(row.input_masked or "{}")
        except ValueError:
            continue
        data = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(data, dict) and data.get("mdtrt_id") == mdtrt_id:
            return _info(row)
    return None
