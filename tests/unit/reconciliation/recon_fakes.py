"""Stand-ins for the reconciliation unit tests: a small platform ledger answering 3201/3202/9101/9102/5203/2601
the way the national platform (and the simulator) does, and builders of ledger entries and HisResults.

The platform here is deliberately small: entries keyed by setl_id, the simulator's comparison rules for 3201
(sums and count per key) and 3202 (row codes 0-4 by setl_id), and switches for the failures a test plants.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import zipfile
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from yibao.core import clock
from yibao.core.money import money
from yibao.core.results import HisResult, SettlementSplit
from yibao.envelope.errors import BusinessRejection
from yibao.reconciliation.ledger import LedgerEntry

TODAY = clock.today()
NOON = dt.datetime.combine(TODAY, dt.time(12, 0), tzinfo=clock.SHANGHAI)
_serial = itertools.count(1)


def d(text: str) -> Decimal:
    return Decimal(text)


def entry(setl_id: str, medfee: str = "100.00", *, fund: str | None = None, acct: str = "10.00",
          flag: str = "0", insutype: str = "310", clr_type: str = "11", optins: str = "440100",
          when: dt.datetime = NOON, visit: str | None = None, channel: str = "national",
          orig: str | None = None, msgid: str | None = None) -> LedgerEntry:
    """A hospital ledger entry; a cancellation (flag 1) gets negative amounts."""
    medfee_d = money(medfee)
    fund_d = money(fund) if fund is not None else money(medfee_d / 2)
    acct_d = money(acct)
    cash_d = medfee_d - fund_d - acct_d
    sign = -1 if flag == "1" else 1
    return LedgerEntry(
        setl_id=setl_id, his_visit_id=visit or f"V-{setl_id}", visit_kind="outpatient" if clr_type == "11"
        else "inpatient", channel=channel, insutype=insutype, clr_type=clr_type, setl_optins=optins,
        refd_setl_flag=flag, setl_time=when, medfee_sumamt=sign * abs(medfee_d), fund_pay_sumamt=sign * abs(fund_d),
        acct_pay=sign * abs(acct_d), psn_cash_pay=sign * abs(cash_d), mdtrt_id=f"M-{setl_id}",
        psn_no=f"P-{setl_id}", orig_setl_id=orig, msgid=msgid or f"MSG-{setl_id}",
        split={"medfee_sumamt": str(sign * abs(medfee_d)), "fund_pay_sumamt": str(sign * abs(fund_d)),
               "acct_pay": str(sign * abs(acct_d)), "psn_cash_pay": str(sign * abs(cash_d)),
               "psn_part_amt": str(sign * abs(acct_d + cash_d))},
        producer="settlement", message_id=f"msg-{setl_id}",
    )


def his_result(e: LedgerEntry, *, message_id: str | None = None, kind: str | None = None,
               service: str = "settlement", **overrides: Any) -> HisResult:
    """The HisResult that books ``e`` (settled, or refunded for a cancellation)."""
    kind = kind or ("refunded" if e.refd_setl_flag == "1" else "settled")
    split = SettlementSplit(medfee_sumamt=e.medfee_sumamt, fund_pay_sumamt=e.fund_pay_sumamt,
                            psn_part_amt=e.acct_pay + e.psn_cash_pay, acct_pay=e.acct_pay,
                            psn_cash_pay=e.psn_cash_pay)
    fields: dict[str, Any] = dict(
        message_id=message_id or f"msg-{e.setl_id}", his_visit_id=e.his_visit_id, visit_kind=e.visit_kind,
        kind=kind, service=service, msgid=e.msgid, psn_no=e.psn_no, insutype=e.insutype,
        insuplc_admdvs=e.setl_optins, mdtrt_id=e.mdtrt_id, setl_id=e.setl_id, orig_setl_id=e.orig_setl_id,
        setl_time=e.setl_time, clr_type=e.clr_type, clr_optins=e.setl_optins, split=split)
    fields.update(overrides)
    return HisResult(**fields)


@dataclass
class PEntry:
    """An entry of the stand-in platform's ledger."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    insutype: str
    clr_type: str
    optins: str
    flag: str
    medfee: Decimal
    fund: Decimal
    acct: Decimal
    cash: Decimal
    msgid: str
    setl_time: dt.datetime
    status: str = "active"  # active | cancelled | reversed
    orig: str = ""
    cancel_setl_id: str = ""

    @classmethod
    def of(cls, e: LedgerEntry, **changes: Any) -> "PEntry":
        p = cls(e.setl_id, e.mdtrt_id or "", e.psn_no or "", e.insutype, e.clr_type, e.setl_optins, e.refd_setl_flag,
                e.medfee_sumamt, e.fund_pay_sumamt, e.acct_pay, e.psn_cash_pay, e.msgid or "", e.setl_time,
                orig=e.orig_setl_id or "")
        return replace(p, **changes)

    def setlinfo(self) -> dict[str, Any]:
        return {"setl_id": self.setl_id, "mdtrt_id": self.mdtrt_id, "psn_no": self.psn_no, "insutype": self.insutype,
                "clr_type": self.clr_type, "clr_optins": self.optins, "refd_setl_flag": self.flag,
                "vali_flag": "1" if self.status == "active" else "0", "cancel_setl_id": self.cancel_setl_id,
                "medins_setl_id": self.msgid, "setl_time": clock.format_datetime(self.setl_time),
                "medfee_sumamt": self.medfee, "fund_pay_sumamt": self.fund, "acct_pay": self.acct,
                "psn_cash_pay": self.cash, "psn_part_amt": self.acct + self.cash, "med_type": "11"}


def txt_zip(name: str, rows: list[list[str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, "".join("\t".join(r) + "\n" for r in rows).encode("utf-8"))
    return buffer.getvalue()


@dataclass
class FakePlatform:
    """3201/3202/9101/9102/5203/2601 over :attr:`entries`; ``faults`` maps an infno to an exception to raise,
    ``download_bytes`` replaces the next 9102 answer."""

    entries: dict[str, PEntry] = field(default_factory=dict)
    faults: dict[str, BaseException] = field(default_factory=dict)
    download_bytes: bytes | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    reverse_answer: BaseException | None = None
    settings: Any = field(default_factory=lambda: SimpleNamespace(mdtrtarea_admvs="440100"))
    catalog: Any = None

    def add(self, *entries: PEntry) -> None:
        for e in entries:
            self.entries[e.setl_id] = e

    def _fault(self, infno: str) -> None:
        exc = self.faults.get(infno)
        if exc is not None:
            raise exc

    def _selected(self, data: dict[str, Any], *, with_insutype: bool) -> list[PEntry]:
        begin = dt.date.fromisoformat(data["stmt_begndate"])
        end = dt.date.fromisoformat(data["stmt_enddate"])
        flag = data.get("refd_setl_flag") or ""
        return [e for e in self.entries.values()
                if e.status != "reversed" and e.clr_type == data["clr_type"] and e.optins == data["setl_optins"]
                and begin <= clock.as_shanghai(e.setl_time).date() <= end and (not flag or e.flag == flag)
                and (not with_insutype or e.insutype == data["insutype"])]

    async def call(self, infno: str, input: Any, **kw: Any) -> Any:  # noqa: A002
        self.calls.append((infno, input))
        self._fault(infno)
        data = input.get("data", {})
        if infno == "3201":
            chosen = self._selected(data, with_insutype=True)
            ours = (money(sum((e.medfee for e in chosen), Decimal(0))), money(sum((e.fund for e in chosen), Decimal(0))),
                    money(sum((e.acct for e in chosen), Decimal(0))), len(chosen))
            theirs = (money(data["medfee_sumamt"]), money(data["fund_pay_sumamt"]), money(data["acct_pay"]),
                      int(data["fixmedins_setl_cnt"]))
            ok = ours == theirs
            return SimpleNamespace(output={"stmtinfo": {"setl_optins": data["setl_optins"],
                                                        "stmt_rslt": "0" if ok else "1",
                                                        "stmt_rslt_dscr": "对账平" if ok else f"平台 {ours}"}})
        if infno == "3202":
            return SimpleNamespace(output={"fileinfo": self._h3202(data)})
        if infno == "5203":
            e = self.entries.get(data["setl_id"])
            if e is None or e.status == "reversed":
                raise BusinessRejection("5203", "data.setl_id: no such settlement (结算信息不存在)")
            return SimpleNamespace(output={"setlinfo": e.setlinfo()})
        raise AssertionError(f"unexpected call {infno}")

    def _h3202(self, data: dict[str, Any]) -> dict[str, Any]:
        content = self.files[data["file_qury_no"]]
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            text = archive.read(archive.namelist()[0]).decode("utf-8")
        hospital = {}
        for line in text.splitlines():
            cells = line.split("\t")
            hospital[cells[0]] = cells
        platform = {e.setl_id: e for e in self._selected(data, with_insutype=False)}
        unseen = {e.orig: e for e in platform.values() if e.flag == "1" and e.setl_id not in hospital
                  and e.orig in hospital}
        rows = []
        for setl_id, e in platform.items():
            if setl_id in hospital:
                cells = hospital[setl_id]
                theirs = tuple(money(c) for c in cells[3:6])
                if cells[6] != e.flag:
                    code = "4"
                elif theirs != (money(e.medfee), money(e.fund), money(e.acct)):
                    code = "3"
                elif setl_id in unseen:
                    code = "4"
                else:
                    code = "0"
            else:
                if e.flag == "1" and e.orig in unseen:
                    continue
                code = "1"
            rows.append([e.psn_no, e.mdtrt_id, setl_id, e.msgid, code, e.flag, "memo"])
        for setl_id, cells in hospital.items():
            if setl_id not in platform:
                rows.append([cells[2], cells[1], setl_id, "null", "2", cells[6], "医院有平台无"])
        number = f"R{next(_serial)}"
        self.files[number] = txt_zip("result.txt", rows)
        return {"file_qury_no": number, "filename": "result.zip", "dld_endtime": "2099-01-01 00:00:00"}

    async def upload(self, content: bytes, filename: str, **kw: Any) -> Any:
        self.calls.append(("9101", filename))
        self._fault("9101")
        number = f"U{next(_serial)}"
        self.files[number] = content
        return SimpleNamespace(file_qury_no=number, filename=filename, dld_endtime=None)

    async def download(self, file_qury_no: str, filename: str, **kw: Any) -> bytes:
        self.calls.append(("9102", file_qury_no))
        self._fault("9102")
        if self.download_bytes is not None:
            return self.download_bytes
        return self.files[file_qury_no]

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, **kw: Any) -> Any:
        self.calls.append(("2601", {"omsgid": omsgid, "oinfno": oinfno, "msgid": kw.get("msgid")}))
        if self.reverse_answer is not None:
            raise self.reverse_answer
        for e in self.entries.values():
            if e.msgid == omsgid:
                if e.status == "reversed":
                    raise BusinessRejection("2601", "已冲正: the original message was already reversed")
                e.status = "reversed"
                return SimpleNamespace(output={"data": {"omsgid": omsgid}})
        raise BusinessRejection("2601", "原交易不存在 (omsgid not received): nothing was done")

    async def allocate_msgid(self) -> str:
        return f"H44010600001{clock.format_compact(clock.now())}{next(_serial) % 10000:04d}"

    async def aclose(self) -> None:
        self.closed = True

    def count(self, infno: str) -> int:
        return sum(1 for i, _ in self.calls if i == infno)
