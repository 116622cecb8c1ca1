"""The work-injury platform (工伤保险异地就医系统): the simulator's side for the 39 GY* transactions of seed 002.

Strict and stateful, like the national side: every request is an SM4 + SM2 envelope (opened with the platform's key,
its signature checked against the hospital's public key), validated against the same work-injury catalog the bridge
uses (是否必填, 参数长度, code lists), and checked against the platform's state — the preconditions of
workinjury.md:

* filings: GYU001 audits an application downloaded (GYD001) and not yet audited, only one from the national public
  service platform, with an opinion when rejected; GYU006 needs its attachments uploaded (GYU002) and one valid
  filing per person and institution type; GYU007 never turns 无效 back into 有效;
* treatment: GYU101 needs a valid agreement institution and an approved filing whose validity covers the admission
  and whose place is the institution's, 住院号 unique per institution; GYU102 needs the admission, not revoked, not
  settled, price × quantity = amount and pooled + self-paid = amount; GYU103 needs every detail and totals equal to
  their sums; GYU004 0 < deduction ≤ the settlement's pooled total, institution of this province;
* revocations: GYR001 (unsettled details), GYR002 (no details left), GYR003 (no deduction left; revokes the
  admission and its details with it), GYR004 (the deduction);
* GYU003 once per institution per month, its items exactly the month's settlements, totals their sums, visit count
  > 0, revocation and deduction offsets included;
* downloads: each GY D queue delivers at most ``page_size`` (≤ 500) records and refuses to deliver again while a
  delivery of it waits for GYU008 (GYD008 lists those; GYU008 only for ids of that delivery); GYR005 offers a past
  delivery again; GYD102 only for an admission delivered by GYD101;
* GYD053 answers the recorded reply of any past transaction by its serial — how the bridge recovers a lost answer.

Every upload is mirrored to the matching download queue (the platform offers it to the other province; here the
hospital is both), so a run exercises every stream. Faults are applied by the HTTP layer around :meth:`process`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from yibao.core import clock
from yibao.fakedata.workinjury import card_no_of

__all__ = ["WorkInjuryPlatform", "WorkInjuryRefusal", "card_no_of", "card_mac_of", "ecard_qr", "QUEUE_INFNOS"]

CENT = Decimal("0.01")
#: the download queues (GYD102 is per admission, GYD104 and GYD054 are queries)
QUEUE_INFNOS = ("GYD001", "GYD006", "GYD101", "GYD103", "GYD004", "GYD401", "GYD402", "GYD403", "GYD404", "GYD003",
                "GYD005", "GYD009")
UNCONFIRMED = "存在未反馈的下载信息（{infno}），请先调用GYU008反馈"


class WorkInjuryRefusal(Exception):
    """The platform says no (infcode -1 and this message)."""


def card_mac_of(card_no: str, card_random: str) -> str:
    """What the card computes for a random challenge (GYD055 内部认证), as the simulator checks it."""
    return hashlib.sha256(f"{card_no}:{card_random}".encode()).hexdigest()[:16].upper()


def ecard_qr(certno: str, psn_no: str, psn_name: str, expires: dt.datetime) -> str:
    """An electronic social-security card QR code the simulator's GYU010 parses."""
    return f"WIEC|{certno}|{psn_no}|{psn_name}|{expires:%Y%m%d%H%M%S}"


def _wire(value: Any) -> Any:
    """What the platform writes: times as yyyy-MM-dd HH:mm:ss, dates as yyyy-MM-dd, the rest as it is."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    if isinstance(value, dt.datetime):
        return clock.format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return clock.as_shanghai(value)
    return clock.parse_datetime(str(value))


def _download_handler(infno: str) -> Callable[..., dict[str, Any]]:
    """The handler of a plain download queue (the same rules for each)."""
    def handler(self: WorkInjuryPlatform, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        return self._download(infno, body, trans_no)
    return handler


@dataclass
class Delivery:
    trans_no: str
    infno: str
    at: dt.datetime
    records: list[dict[str, Any]]
    pending_ids: set[str]


@dataclass
class Queue:
    """One download stream of the platform: records waiting, deliveries waiting for GYU008, past deliveries."""

    infno: str
    waiting: list[dict[str, Any]] = field(default_factory=list)
    outstanding: dict[str, Delivery] = field(default_factory=dict)
    history: dict[str, Delivery] = field(default_factory=dict)
    delivered_ids: set[str] = field(default_factory=set)
    confirmed: int = 0


@dataclass
class Recorded:
    infno: str
    at: dt.datetime
    infcode: str
    err_msg: str
    output: dict[str, Any]


class WorkInjuryPlatform:
    """The platform's state and rules. ``process(infno, trans_no, data)`` is transport-free; the HTTP layer opens and
    seals the envelopes (:meth:`open_request`, :meth:`seal_reply`)."""

    def __init__(self, settings: Any, now: Callable[[], dt.datetime], private_key: bytes, public_key: bytes) -> None:
        self.settings = settings
        self.now = now
        self._private_hex = private_key.hex()
        self._public_hex = public_key.hex()
        self.lock = threading.RLock()
        self._catalog: Any = None
        self._codec: Any = None
        self.reset()

    # --- state ---------------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self._ids = itertools.count(1)
            s = self.settings
            self.institutions: dict[str, dict[str, Any]] = {
                code: {"org_code": code, "org_name": f"协议机构{code[-4:]}", "org_type": "1", "admdvs": s.wi_admdvs,
                       "agreement_begin": "2020-01-01", "agreement_end": "2099-12-31", "org_status": "1"}
                for code in s.wi_org_codes}
            self.applications: dict[str, dict[str, Any]] = {}
            self.filings: dict[str, dict[str, Any]] = {}
            self.attachments: dict[str, dict[str, Any]] = {}
            self.admissions: dict[tuple[str, str], dict[str, Any]] = {}
            self.details: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
            self.detail_queues: dict[tuple[str, str], list[dict[str, Any]]] = {}
            self.settlements: dict[str, dict[str, Any]] = {}
            self.device_settlements: dict[str, dict[str, Any]] = {}
            self.deductions: dict[str, dict[str, Any]] = {}
            self.month_ends: dict[tuple[str, str], dict[str, Any]] = {}
            self.queues: dict[str, Queue] = {infno: Queue(infno) for infno in (*QUEUE_INFNOS, "GYD102")}
            self.journal: dict[str, Recorded] = {}
            self.calls: dict[str, int] = {}

    def _next(self, prefix: str) -> str:
        return f"{prefix}{self.now():%Y%m%d}{next(self._ids):08d}"

    # --- the envelope ----------------------------------------------------------------------------------------

    @property
    def codec(self) -> Any:
        """The platform's codec (its private key, the hospital's public key); None while no hospital key is set."""
        if self._codec is None and self.settings.wi_hospital_public_key_hex:
            from yibao.envelope.workinjury import WorkInjuryCodec

            self._codec = WorkInjuryCodec(self._private_hex, self.settings.wi_hospital_public_key_hex)
        return self._codec

    def catalog(self) -> Any:
        if self._catalog is None:
            from yibao.envelope.catalog import Catalog

            self._catalog = Catalog.load(platform="workinjury")
        return self._catalog

    def clear_error(self, message: str) -> dict[str, Any]:
        """An unsealed refusal (the request could not be opened: no key to seal for, bad signature)."""
        return {"infcode": "-1", "err_msg": message}

    def handle(self, envelope: Any, path_infno: str | None = None, *,
               forced_error: str | None = None) -> tuple[dict[str, Any], str, str]:
        """One HTTP request's envelope → (reply envelope, infno, trans_no). Never raises."""
        from yibao.envelope.errors import CryptoError, SignatureError

        codec = self.codec
        if codec is None:
            return self.clear_error("平台未配置医院公钥 (YIBAO_SIM_WI_HOSPITAL_PUBLIC_KEY_HEX)"), path_infno or "?", ""
        if not isinstance(envelope, dict):
            return self.clear_error("报文不是JSON对象"), path_infno or "?", ""
        try:
            message = codec.open(envelope)
        except SignatureError:
            return self.clear_error("验签失败 (signature does not verify)"), path_infno or "?", ""
        except CryptoError as exc:
            return self.clear_error(f"报文无法解密: {exc}"), path_infno or "?", ""
        infno, trans_no = message.infno, message.trans_no
        if path_infno and path_infno != infno:
            reply = self.reply(infno, trans_no, err_msg=f"交易编号{infno}与请求路径{path_infno}不符")
            return codec.seal(infno, trans_no or "-", reply), infno, trans_no
        data = message.data if isinstance(message.data, dict) else {}
        reply = self.process(infno, trans_no, data, forced_error=forced_error)
        return codec.seal(infno, trans_no or "-", reply), infno, trans_no

    def reply(self, infno: str, trans_no: str, *, output: dict[str, Any] | None = None, err_msg: str = "") -> dict:
        return {"infcode": "-1" if err_msg else "0", "err_msg": err_msg, "output": _wire(output or {}),
                "trans_code": infno, "trans_no": trans_no}

    # --- processing --------------------------------------------------------------------------------------------

    def process(self, infno: str, trans_no: str, data: dict[str, Any], *, forced_error: str | None = None) -> dict:
        """The reply data of one transaction (recorded by serial for GYD053, but for GYD053 itself)."""
        with self.lock:
            self.calls[infno] = self.calls.get(infno, 0) + 1
            if not trans_no or len(trans_no) > 40:
                return self.reply(infno, trans_no, err_msg="transNo: 交易流水号必填且不超过40位")
            known = self.journal.get(trans_no)
            if known is not None:
                if known.infno != infno:
                    return self.reply(infno, trans_no, err_msg=f"交易流水号重复（已用于{known.infno}）")
                return self.reply(infno, trans_no, output=known.output, err_msg=known.err_msg)  # the same answer
            if forced_error:
                return self.reply(infno, trans_no, err_msg=forced_error)
            handler = getattr(self, f"_{infno.lower()}", None)
            if handler is None:
                return self.reply(infno, trans_no, err_msg=f"未知交易编号 {infno}")
            try:
                body = self._validated(infno, data)
                output = handler(body, trans_no)
                err = ""
            except WorkInjuryRefusal as exc:
                output, err = {}, str(exc)
            if infno not in ("GYD053", "GYD008"):
                self.journal[trans_no] = Recorded(infno, self.now(), "-1" if err else "0", err, _wire(output))
            return self.reply(infno, trans_no, output=output, err_msg=err)

    def _validated(self, infno: str, data: dict[str, Any]) -> dict[str, Any]:
        from yibao.envelope.errors import EnvelopeValidationError

        catalog = self.catalog()
        try:
            body = catalog.prepare_input(infno, data)
        except EnvelopeValidationError as exc:
            raise WorkInjuryRefusal(f"{exc.path}: {exc.rule}（参数校验不通过）") from None
        limit = catalog.transaction(infno).max_records
        for key, value in body.items():
            if limit and isinstance(value, list) and len(value) > limit:
                raise WorkInjuryRefusal(f"{key}: 单次最多{limit}条")
        return body

    # --- helpers -----------------------------------------------------------------------------------------------

    def _org(self, code: str, *, on: dt.date | None = None) -> dict[str, Any]:
        org = self.institutions.get(code)
        if org is None:
            raise WorkInjuryRefusal(f"协议机构{code}不存在")
        if org["org_status"] != "1":
            raise WorkInjuryRefusal(f"协议机构{code}状态无效")
        if on is not None and not (_date(org["agreement_begin"]) <= on <= _date(org["agreement_end"])):
            raise WorkInjuryRefusal(f"协议机构{code}协议不在有效期内")
        return org

    def _offer(self, infno: str, record: dict[str, Any]) -> None:
        mirrored = infno not in ("GYD006", "GYD005")  # those two the platform makes itself
        if infno not in self.queues or (mirrored and not self.settings.wi_mirror_uploads):
            return
        record = {k: v for k, v in record.items() if v is not None}
        record["record_id"] = self._next("R")
        self.queues[infno].waiting.append(record)

    def offer(self, infno: str, records: list[dict[str, Any]]) -> list[str]:
        """Admin: records from elsewhere (another province, the national service platform) to be downloaded."""
        with self.lock:
            if infno not in self.queues:
                raise WorkInjuryRefusal(f"{infno} is not a download queue")
            ids = []
            for record in records:
                record = dict(record)
                record.setdefault("record_id", self._next("R"))
                if infno == "GYD001":
                    self.applications[record["apply_no"]] = {**record, "status": "pending", "downloaded": False}
                if infno == "GYD009":
                    self.institutions.setdefault(record["org_code"], {k: record[k] for k in record if k != "record_id"})
                if infno == "GYD101":  # an admission elsewhere: its details may be asked (GYD102) once it is delivered
                    key = (record["org_code"], record["ipt_no"])
                    self.admissions.setdefault(key, {"record": record, "status": "active", "setl_no": None,
                                                     "downloaded": False, "foreign": True})
                    self.details.setdefault(key, {})
                    self.detail_queues.setdefault(key, [])
                self.queues[infno].waiting.append(record)
                ids.append(record["record_id"])
            return ids

    def add_filing(self, filing: dict[str, Any]) -> None:
        """Admin: an approved filing the platform holds already."""
        with self.lock:
            self.filings[filing["filing_no"]] = {"filing_status": "1", **filing}

    def _active_filing(self, filing_no: str, certno: str, on: dt.date, org: dict[str, Any] | None) -> dict:
        filing = self.filings.get(filing_no)
        if filing is None:
            raise WorkInjuryRefusal(f"备案{filing_no}不存在")
        if filing["filing_status"] != "1":
            raise WorkInjuryRefusal(f"备案{filing_no}已无效")
        if filing["certno"] != certno:
            raise WorkInjuryRefusal(f"备案{filing_no}不是该人员的备案")
        if not (_date(filing["begin_date"]) <= on <= _date(filing["end_date"])):
            raise WorkInjuryRefusal(f"入院时间不在备案{filing_no}有效期内")
        if org is not None and filing["mdtrt_admdvs"] != org["admdvs"]:
            raise WorkInjuryRefusal(f"备案{filing_no}的就医地与协议机构所在地不一致")
        return filing

    # --- downloads ---------------------------------------------------------------------------------------------

    def _download(self, infno: str, body: dict[str, Any], trans_no: str,
                  pick: Callable[[dict[str, Any]], bool] | None = None,
                  waiting: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        query = body["query"]
        self._org(query["org_code"])
        size = int(query["page_size"])
        if not 0 < size <= 500:
            raise WorkInjuryRefusal("page_size: 每次下载1至500条")
        queue = self.queues[infno]
        if queue.outstanding:
            raise WorkInjuryRefusal(UNCONFIRMED.format(infno=infno))
        source = queue.waiting if waiting is None else waiting
        chosen = [r for r in source if pick is None or pick(r)][:size]
        for record in chosen:
            source.remove(record)
        more = any(pick is None or pick(r) for r in source)
        if chosen:
            delivery = Delivery(trans_no, infno, self.now(), chosen, {r["record_id"] for r in chosen})
            queue.outstanding[trans_no] = delivery
            queue.history[trans_no] = delivery
            queue.delivered_ids.update(r["record_id"] for r in chosen)
            if infno == "GYD001":
                for r in chosen:
                    if r.get("apply_no") in self.applications:
                        self.applications[r["apply_no"]]["downloaded"] = True
            if infno == "GYD101":
                for r in chosen:
                    adm = self.admissions.get((r.get("org_code"), r.get("ipt_no")))
                    if adm is not None:
                        adm["downloaded"] = True
        return {"records": [dict(r) for r in chosen], "more": "1" if more else "0"}

    _gyd001 = _download_handler("GYD001")
    _gyd006 = _download_handler("GYD006")
    _gyd101 = _download_handler("GYD101")
    _gyd103 = _download_handler("GYD103")
    _gyd004 = _download_handler("GYD004")
    _gyd401 = _download_handler("GYD401")
    _gyd402 = _download_handler("GYD402")
    _gyd403 = _download_handler("GYD403")
    _gyd404 = _download_handler("GYD404")
    _gyd003 = _download_handler("GYD003")
    _gyd005 = _download_handler("GYD005")

    def _gyd009(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        query = body["query"]

        def pick(record: dict[str, Any]) -> bool:
            return ((not query.get("org_type") or record.get("org_type") == query["org_type"])
                    and (not query.get("admdvs") or record.get("admdvs") == query["admdvs"])
                    and (not query.get("filter_org_code") or record.get("org_code") == query["filter_org_code"]))

        return self._download("GYD009", body, trans_no, pick)

    def _gyd102(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        query = body["query"]
        key = (query["org_code"], query["ipt_no"])
        adm = self.admissions.get(key)
        if adm is None or not adm.get("downloaded"):
            raise WorkInjuryRefusal(f"请先下载入院登记信息（GYD101）: {query['ipt_no']}")
        return self._download("GYD102", body, trans_no, waiting=self.detail_queues.setdefault(key, []))

    def _gyu008(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        queue = self.queues.get(body["trans_code"])
        if queue is None:
            raise WorkInjuryRefusal(f"trans_code: {body['trans_code']}不是需要反馈的下载交易")
        delivery = queue.outstanding.get(body["trans_no"])
        if delivery is None:
            if body["trans_no"] in queue.history:
                raise WorkInjuryRefusal(f"下载{body['trans_no']}已反馈")
            raise WorkInjuryRefusal(f"下载流水{body['trans_no']}不存在")
        ids = [row["record_id"] for row in body["fb_list"]]
        strangers = [i for i in ids if i not in delivery.pending_ids]
        if strangers:
            raise WorkInjuryRefusal(f"只能反馈已成功下载且未反馈的信息: {strangers[0]}")
        delivery.pending_ids.difference_update(ids)
        queue.confirmed += len(ids)
        if not delivery.pending_ids:
            del queue.outstanding[body["trans_no"]]
        return {"confirmed": len(ids)}

    def _gyd008(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        wanted = body["query"].get("trans_code")
        rows = []
        for queue in self.queues.values():
            if wanted and queue.infno != wanted:
                continue
            for d in queue.outstanding.values():
                rows.append({"trans_code": d.infno, "trans_no": d.trans_no, "trans_time": d.at,
                             "record_count": len(d.pending_ids),
                             "ids": [{"record_id": i} for i in sorted(d.pending_ids)]})
        return {"unfb_list": rows}

    def _gyr005(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        queue = self.queues.get(data["trans_code"])
        delivery = queue.history.get(data["trans_no"]) if queue is not None else None
        if queue is None or delivery is None:
            raise WorkInjuryRefusal(f"下载流水{data['trans_no']}不存在，无法申请重复下载")
        queue.outstanding.pop(delivery.trans_no, None)
        delivery.pending_ids.clear()
        target = queue.waiting
        if queue.infno == "GYD102" and delivery.records:
            first = delivery.records[0]
            target = self.detail_queues.setdefault((first.get("org_code"), first.get("ipt_no")), [])
        target[:0] = [dict(r) for r in delivery.records]
        return {"accepted": "1", "record_count": len(delivery.records)}

    def _gyd053(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        known = self.journal.get(data["trans_no"])
        if known is None:
            raise WorkInjuryRefusal(f"交易流水号{data['trans_no']}不存在")
        if known.infno != data["trans_code"]:
            raise WorkInjuryRefusal(f"交易流水号{data['trans_no']}不是{data['trans_code']}交易")
        return {"trans_code": known.infno, "trans_no": data["trans_no"], "trans_time": known.at,
                "infcode": known.infcode, "err_msg": known.err_msg, "output": known.output}

    def _gyd104(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        query = body["query"]
        filings = {f["filing_no"] for f in self.filings.values() if f["certno"] == query["certno"]}
        rows = [s["record"] for s in self.settlements.values() if s["record"]["filing_no"] in filings
                and s["status"] == "active"]
        return {"records": rows[:500]}

    def _gyd054(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        atta = self.attachments.get(body["data"]["atta_id"])
        if atta is None:
            raise WorkInjuryRefusal(f"附件{body['data']['atta_id']}不存在")
        return dict(atta)

    # --- checks ------------------------------------------------------------------------------------------------

    def _gyu000(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        self._org(body["data"]["org_code"])
        return {"server_time": self.now(), "status": "ok"}

    def _gyd051(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        self._org(data["org_code"])
        on = _date(data["check_date"])
        for filing in self.filings.values():
            if filing["certno"] != data["certno"] or filing["filing_status"] != "1":
                continue
            if filing["mdtrt_admdvs"] != data["mdtrt_admdvs"]:
                continue
            if _date(filing["begin_date"]) <= on <= _date(filing["end_date"]):
                return {"passed": "1", "filing_no": filing["filing_no"], "begin_date": filing["begin_date"],
                        "end_date": filing["end_date"], "msg": "备案有效"}
        return {"passed": "0", "msg": "无有效备案（就医地或日期不在备案范围内）"}

    def _has_filing(self, certno: str) -> bool:
        return any(f["certno"] == certno and f["filing_status"] == "1" for f in self.filings.values())

    def _gyd052(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        self._org(data["org_code"])
        if not self._has_filing(data["certno"]):
            raise WorkInjuryRefusal("人员无审核通过的备案")
        if data["card_no"] != card_no_of(data["certno"]):
            return {"passed": "0", "msg": "社保卡与证件号码不符"}
        return {"passed": "1", "msg": "鉴权通过"}

    def _gyd055(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        self._org(data["org_code"])
        owner = next((f["certno"] for f in self.filings.values()
                      if card_no_of(f["certno"]) == data["card_no"] and f["filing_status"] == "1"), None)
        if owner is None:
            raise WorkInjuryRefusal("人员无审核通过的备案")
        if data["card_mac"].upper() != card_mac_of(data["card_no"], data["card_random"]):
            return {"passed": "0", "msg": "内部认证失败"}
        return {"passed": "1", "msg": "内部认证通过"}

    def _gyu010(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        self._org(data["org_code"])
        parts = data["qr_code"].split("|")
        if len(parts) != 5 or parts[0] != "WIEC":
            raise WorkInjuryRefusal("二维码无法识别")
        expires = clock.as_shanghai(dt.datetime.strptime(parts[4], "%Y%m%d%H%M%S"))
        if expires < self.now():
            raise WorkInjuryRefusal("二维码已过期")
        return {"certno": parts[1], "psn_no": parts[2], "psn_name": parts[3], "card_no": card_no_of(parts[1]),
                "expire_time": expires}

    # --- filings -----------------------------------------------------------------------------------------------

    def _gyu002(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        result = []
        for row in body["atta_list"]:
            atta_id = self._next("AT")
            self.attachments[atta_id] = {"atta_id": atta_id, "atta_name": row["atta_name"],
                                         "atta_type": row["atta_type"], "file_content": row["file_content"]}
            result.append({"biz_no": row["atta_no"], "plat_no": atta_id})
        return {"result": result}

    def _gyu001(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["audit_list"]
        for row in rows:
            app = self.applications.get(row["apply_no"])
            if app is None:
                raise WorkInjuryRefusal(f"备案申请{row['apply_no']}不存在")
            if not app.get("downloaded"):
                raise WorkInjuryRefusal(f"备案申请{row['apply_no']}尚未下载")
            if app["status"] != "pending":
                raise WorkInjuryRefusal(f"备案申请{row['apply_no']}已审核")
            if app.get("apply_chan") != "1":
                raise WorkInjuryRefusal(f"备案申请{row['apply_no']}不是国家社会保险公共服务平台申请")
            if row["audit_result"] == "2" and not str(row.get("audit_opinion") or "").strip():
                raise WorkInjuryRefusal("audit_opinion: 审核不通过时审核意见必填")
        result = []
        for row in rows:
            app = self.applications[row["apply_no"]]
            if row["audit_result"] == "1":
                filing_no = self._next("BA")
                filing = {"filing_no": filing_no, "apply_no": app["apply_no"], "psn_no": app["psn_no"],
                          "certno": app["certno"], "psn_name": app["psn_name"], "insu_admdvs": app["insu_admdvs"],
                          "mdtrt_admdvs": app["mdtrt_admdvs"], "org_type": app["org_type"],
                          "org_code": row.get("org_code"), "begin_date": app["begin_date"],
                          "end_date": app["end_date"], "filing_status": "1", "apply_chan": "1"}
                self.filings[filing_no] = filing
                self._offer("GYD006", filing)
                app["status"], app["filing_no"] = "approved", filing_no
                result.append({"biz_no": row["apply_no"], "plat_no": filing_no})
            else:
                app["status"] = "rejected"
                result.append({"biz_no": row["apply_no"], "plat_no": ""})
        return {"result": result}

    def _gyu006(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["filing_list"]
        for row in rows:
            if row["filing_no"] in self.filings:
                raise WorkInjuryRefusal(f"备案编号{row['filing_no']}已存在")
            if row["filing_status"] != "1":
                raise WorkInjuryRefusal("filing_status: 仅上传审核通过的有效备案")
            for ref in row["atta_list"]:
                if ref["atta_id"] not in self.attachments:
                    raise WorkInjuryRefusal(f"附件{ref['atta_id']}不存在，请先上传附件（GYU002）")
            if any(f["certno"] == row["certno"] and f["org_type"] == row["org_type"] and f["filing_status"] == "1"
                   for f in self.filings.values()):
                raise WorkInjuryRefusal("同一人员同一机构类型已存在有效备案")
        for row in rows:
            filing = {k: v for k, v in row.items() if k not in ("atta_list", "audit_time")}
            filing["apply_chan"] = "2"
            self.filings[row["filing_no"]] = filing
            self._offer("GYD006", filing)
        return {"result": [{"biz_no": r["filing_no"], "plat_no": r["filing_no"]} for r in rows]}

    def _gyu007(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["filing_list"]
        for row in rows:
            filing = self.filings.get(row["filing_no"])
            if filing is None:
                raise WorkInjuryRefusal(f"备案{row['filing_no']}不存在")
            if filing["filing_status"] == "0" and row["filing_status"] == "1":
                raise WorkInjuryRefusal("filing_status: 备案状态不可由无效变更为有效")
        for row in rows:
            filing = self.filings[row["filing_no"]]
            filing["filing_status"] = row["filing_status"]
            if row.get("mdtrt_admdvs"):
                filing["mdtrt_admdvs"] = row["mdtrt_admdvs"]
            if row.get("end_date"):
                filing["end_date"] = row["end_date"]
            self._offer("GYD006", filing)
        return {"result": [{"biz_no": r["filing_no"], "plat_no": r["filing_no"]} for r in rows]}

    # --- treatment ---------------------------------------------------------------------------------------------

    def _gyu101(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["adm_list"]
        seen: set[tuple[str, str]] = set()
        for row in rows:
            key = (row["org_code"], row["ipt_no"])
            on = _date(row["adm_time"])
            org = self._org(row["org_code"], on=on)
            filing = self._active_filing(row["filing_no"], row["certno"], on, org)
            if filing["psn_no"] != row["psn_no"]:
                raise WorkInjuryRefusal(f"psn_no: 与备案{row['filing_no']}的人员编号不一致")
            existing = self.admissions.get(key)
            if key in seen or (existing is not None and existing["status"] == "active"):
                raise WorkInjuryRefusal(f"住院号{row['ipt_no']}在本机构已存在（重复上传）")
            seen.add(key)
        for row in rows:
            key = (row["org_code"], row["ipt_no"])
            self.admissions[key] = {"record": row, "status": "active", "setl_no": None, "downloaded": False}
            self.details[key] = {}
            self.detail_queues[key] = []
            self._offer("GYD101", row)
        return {"result": [{"biz_no": r["ipt_no"], "plat_no": f"{r['org_code']}:{r['ipt_no']}"} for r in rows]}

    def _admission(self, org_code: str, ipt_no: str) -> dict[str, Any]:
        adm = self.admissions.get((org_code, ipt_no))
        if adm is None or adm["status"] != "active":
            raise WorkInjuryRefusal(f"住院号{ipt_no}无有效入院登记（未上传或已撤销）")
        return adm

    def _gyu102(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["fee_list"]
        batch: set[tuple[str, str, str]] = set()
        for i, row in enumerate(rows):
            adm = self._admission(row["org_code"], row["ipt_no"])
            if adm["setl_no"]:
                raise WorkInjuryRefusal(f"住院号{row['ipt_no']}已结算，不能上传费用明细")
            known = self.details[(row["org_code"], row["ipt_no"])].get(row["fee_sn"])
            ident = (row["org_code"], row["ipt_no"], row["fee_sn"])
            if ident in batch or (known is not None and known["status"] == "active"):
                raise WorkInjuryRefusal(f"fee_list[{i}].fee_sn: 费用明细流水号{row['fee_sn']}重复")
            batch.add(ident)
            if _money(row["price"] * row["cnt"]) != row["amount"]:
                raise WorkInjuryRefusal(f"fee_list[{i}].amount: 单价×数量≠金额")
            if row["pool_amt"] + row["self_amt"] != row["amount"]:
                raise WorkInjuryRefusal(f"fee_list[{i}].pool_amt: 统筹支付金额+自付金额≠金额")
        for row in rows:
            key = (row["org_code"], row["ipt_no"])
            self.details[key][row["fee_sn"]] = {"record": row, "status": "active"}
            record = {k: v for k, v in row.items()}
            record["record_id"] = self._next("R")
            self.detail_queues[key].append(record)
        return {"result": [{"biz_no": r["fee_sn"], "plat_no": r["fee_sn"]} for r in rows]}

    def _gyu103(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["setl_list"]
        for i, row in enumerate(rows):
            adm = self._admission(row["org_code"], row["ipt_no"])
            if adm["setl_no"]:
                raise WorkInjuryRefusal(f"住院号{row['ipt_no']}已结算")
            if row["setl_no"] in self.settlements:
                raise WorkInjuryRefusal(f"结算流水号{row['setl_no']}已存在")
            if adm["record"]["filing_no"] != row["filing_no"]:
                raise WorkInjuryRefusal(f"setl_list[{i}].filing_no: 与入院登记的备案编号不一致")
            active = [d["record"] for d in self.details[(row["org_code"], row["ipt_no"])].values()
                      if d["status"] == "active"]
            if len(active) != row["fee_count"]:
                raise WorkInjuryRefusal(f"setl_list[{i}].fee_count: 费用明细未全部上传（平台{len(active)}条）")
            for name in ("amount", "pool_amt", "self_amt"):
                total = sum((d[name] for d in active), Decimal("0.00"))
                target = "medfee_sumamt" if name == "amount" else name
                if total != row[target]:
                    raise WorkInjuryRefusal(f"setl_list[{i}].{target}: 与费用明细合计不一致（明细合计{total}）")
            if row["pool_amt"] + row["self_amt"] != row["medfee_sumamt"]:
                raise WorkInjuryRefusal(f"setl_list[{i}].pool_amt: 统筹支付金额+自付金额≠医疗费总额")
            for ref in row.get("atta_list") or []:
                if ref["atta_id"] not in self.attachments:
                    raise WorkInjuryRefusal(f"附件{ref['atta_id']}不存在")
        for row in rows:
            adm = self.admissions[(row["org_code"], row["ipt_no"])]
            adm["setl_no"] = row["setl_no"]
            self.settlements[row["setl_no"]] = {"record": row, "status": "active", "org_code": row["org_code"],
                                                "ipt_no": row["ipt_no"], "month": f"{_time(row['setl_time']):%Y%m}"}
            self._offer("GYD103", row)
        return {"result": [{"biz_no": r["setl_no"], "plat_no": r["setl_no"]} for r in rows]}

    def _gyu303(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["setl_list"]
        for i, row in enumerate(rows):
            on = _date(row["setl_time"])
            self._org(row["org_code"], on=on)
            filing = self._active_filing(row["filing_no"], row["certno"], on, None)
            if filing["org_type"] != "3":
                raise WorkInjuryRefusal(f"备案{row['filing_no']}不是辅助器具配置备案")
            if row["setl_no"] in self.device_settlements or row["setl_no"] in self.settlements:
                raise WorkInjuryRefusal(f"结算流水号{row['setl_no']}已存在")
            total = Decimal("0.00")
            for j, item in enumerate(row["device_list"]):
                if _money(item["price"] * item["cnt"]) != item["amount"]:
                    raise WorkInjuryRefusal(f"setl_list[{i}].device_list[{j}].amount: 单价×数量≠金额")
                total += item["amount"]
            if total != row["medfee_sumamt"]:
                raise WorkInjuryRefusal(f"setl_list[{i}].medfee_sumamt: 与辅具明细合计不一致")
            if row["pool_amt"] + row["self_amt"] != row["medfee_sumamt"]:
                raise WorkInjuryRefusal(f"setl_list[{i}].pool_amt: 统筹支付金额+自付金额≠费用总额")
        for row in rows:
            self.device_settlements[row["setl_no"]] = {"record": row, "status": "active"}
        return {"result": [{"biz_no": r["setl_no"], "plat_no": r["setl_no"]} for r in rows]}

    def _active_deductions(self, setl_no: str) -> list[dict[str, Any]]:
        return [d for d in self.deductions.values() if d["record"]["setl_no"] == setl_no and d["status"] == "active"]

    def _gyu004(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["deduct_list"]
        for i, row in enumerate(rows):
            setl = self.settlements.get(row["setl_no"])
            if setl is None or setl["status"] != "active":
                raise WorkInjuryRefusal(f"结算{row['setl_no']}不存在或已撤销")
            org = self._org(row["org_code"])
            if setl["org_code"] != row["org_code"]:
                raise WorkInjuryRefusal(f"deduct_list[{i}].org_code: 与结算的协议机构不一致")
            if org["admdvs"][:2] != self.settings.wi_admdvs[:2]:
                raise WorkInjuryRefusal(f"deduct_list[{i}].org_code: 协议机构不属于本省")
            if row["deduct_no"] in self.deductions:
                raise WorkInjuryRefusal(f"扣款流水号{row['deduct_no']}已存在")
            already = sum((d["record"]["deduct_amt"] for d in self._active_deductions(row["setl_no"])),
                          Decimal("0.00"))
            if not Decimal("0") < row["deduct_amt"] <= setl["record"]["pool_amt"] - already:
                raise WorkInjuryRefusal(f"deduct_list[{i}].deduct_amt: 扣款金额须大于0且不超过结算统筹支付总金额")
        for row in rows:
            self.deductions[row["deduct_no"]] = {"record": row, "status": "active"}
            self._offer("GYD004", row)
        return {"result": [{"biz_no": r["deduct_no"], "plat_no": r["deduct_no"]} for r in rows]}

    # --- revocations -------------------------------------------------------------------------------------------

    def _revoked(self, infno: str, key_name: str, key: str, data: dict[str, Any]) -> None:
        self._offer(infno, {"org_code": data["org_code"], key_name: key, "revoke_time": self.now(),
                            "revoke_reason": data.get("revoke_reason")})

    def _gyr001(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        adm = self._admission(data["org_code"], data["ipt_no"])
        if adm["setl_no"]:
            raise WorkInjuryRefusal("已结算，不能撤销费用明细（请先撤销结算）")
        active = [d for d in self.details[(data["org_code"], data["ipt_no"])].values() if d["status"] == "active"]
        if not active:
            raise WorkInjuryRefusal("无可撤销的费用明细")
        for d in active:
            d["status"] = "revoked"
        self.detail_queues[(data["org_code"], data["ipt_no"])] = []
        self._revoked("GYD401", "ipt_no", data["ipt_no"], data)
        return {"revoked": len(active)}

    def _gyr002(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        adm = self._admission(data["org_code"], data["ipt_no"])
        if adm["setl_no"]:
            raise WorkInjuryRefusal("已结算，不能撤销入院登记（请先撤销结算）")
        if any(d["status"] == "active" for d in self.details[(data["org_code"], data["ipt_no"])].values()):
            raise WorkInjuryRefusal("存在费用明细，请先撤销费用明细（GYR001）")
        adm["status"] = "revoked"
        self._revoked("GYD402", "ipt_no", data["ipt_no"], data)
        return {"revoked": 1}

    def _gyr003(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        device = self.device_settlements.get(data["setl_no"])
        if device is not None and device["status"] == "active":
            device["status"] = "revoked"
            self._revoked("GYD403", "setl_no", data["setl_no"], data)
            return {"revoked": 1}
        setl = self.settlements.get(data["setl_no"])
        if setl is None or setl["status"] != "active":
            raise WorkInjuryRefusal(f"结算{data['setl_no']}不存在或已撤销")
        if self._active_deductions(data["setl_no"]):
            raise WorkInjuryRefusal("存在有效的审核扣款，请先撤销扣款（GYR004）")
        setl["status"] = "revoked"
        key = (setl["org_code"], setl["ipt_no"])
        adm = self.admissions[key]
        adm["status"], adm["setl_no"] = "revoked", None
        count = 1
        for d in self.details[key].values():
            if d["status"] == "active":
                d["status"] = "revoked"
                count += 1
        self.detail_queues[key] = []
        self._revoked("GYD403", "setl_no", data["setl_no"], data)
        return {"revoked": count}

    def _gyr004(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        data = body["data"]
        deduction = self.deductions.get(data["deduct_no"])
        if deduction is None or deduction["status"] != "active":
            raise WorkInjuryRefusal(f"扣款{data['deduct_no']}不存在或已撤销")
        deduction["status"] = "revoked"
        self._revoked("GYD404", "deduct_no", data["deduct_no"], data)
        return {"revoked": 1}

    # --- month-end, institutions -------------------------------------------------------------------------------

    def _gyu003(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["month_list"]
        for i, row in enumerate(rows):
            key = (row["org_code"], row["month"])
            self._org(row["org_code"])
            if key in self.month_ends:
                raise WorkInjuryRefusal(f"协议机构{row['org_code']}{row['month']}已月结（每月仅一次）")
            if row["visit_count"] <= 0:
                raise WorkInjuryRefusal(f"month_list[{i}].visit_count: 月结人次须大于0")
            month = [s for s in self.settlements.values()
                     if s["org_code"] == row["org_code"] and s["month"] == row["month"]]
            active = {s["record"]["setl_no"]: s for s in month if s["status"] == "active"}
            items = {item["setl_no"]: item for item in row["setl_list"]}
            if set(items) != set(active):
                raise WorkInjuryRefusal(f"month_list[{i}].setl_list: 月结明细与本月结算不一致（平台{len(active)}笔）")
            if row["visit_count"] != len(items):
                raise WorkInjuryRefusal(f"month_list[{i}].visit_count: 与月结明细笔数不一致")
            deduct = Decimal("0.00")
            for setl_no, item in items.items():
                record = active[setl_no]["record"]
                taken = sum((d["record"]["deduct_amt"] for d in self._active_deductions(setl_no)), Decimal("0.00"))
                if (item["medfee_sumamt"], item["pool_amt"], item["deduct_amt"]) != (
                        record["medfee_sumamt"], record["pool_amt"], taken):
                    raise WorkInjuryRefusal(f"month_list[{i}].setl_list: 结算{setl_no}金额与平台不一致")
                deduct += taken
            sums = {"medfee_sumamt": sum((a["record"]["medfee_sumamt"] for a in active.values()), Decimal("0.00")),
                    "pool_amt": sum((a["record"]["pool_amt"] for a in active.values()), Decimal("0.00")),
                    "self_amt": sum((a["record"]["self_amt"] for a in active.values()), Decimal("0.00")),
                    "deduct_amt": deduct,
                    "revoke_amt": sum((s["record"]["medfee_sumamt"] for s in month if s["status"] == "revoked"),
                                      Decimal("0.00"))}
            for name, total in sums.items():
                if row[name] != total:
                    raise WorkInjuryRefusal(f"month_list[{i}].{name}: 与明细合计不一致（平台{total}）")
            if row["pay_amt"] != row["pool_amt"] - row["deduct_amt"]:
                raise WorkInjuryRefusal(f"month_list[{i}].pay_amt: 应支付金额≠统筹支付总额−审核扣款")
        for row in rows:
            self.month_ends[(row["org_code"], row["month"])] = row
            self._offer("GYD003", row)
            self._offer("GYD005", {"clr_no": self._next("QF"), "org_code": row["org_code"], "month": row["month"],
                                   "payable_amt": row["pay_amt"], "receivable_amt": Decimal("0.00"),
                                   "confirm_time": self.now()})
        return {"result": [{"biz_no": f"{r['org_code']}:{r['month']}", "plat_no": r["month"]} for r in rows]}

    def _gyu009(self, body: dict[str, Any], trans_no: str) -> dict[str, Any]:
        rows = body["org_list"]
        for row in rows:
            if _date(row["agreement_end"]) < _date(row["agreement_begin"]):
                raise WorkInjuryRefusal(f"协议机构{row['org_code']}协议结束日期早于开始日期")
        for row in rows:
            self.institutions[row["org_code"]] = dict(row)
            self._offer("GYD009", row)
        return {"result": [{"biz_no": r["org_code"], "plat_no": r["org_code"]} for r in rows]}

    # --- the admin view ----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "institutions": sorted(self.institutions),
                "applications": {k: {"status": v["status"], "downloaded": v.get("downloaded", False),
                                     "filing_no": v.get("filing_no")} for k, v in self.applications.items()},
                "filings": {k: {"filing_status": v["filing_status"], "certno_tail": str(v["certno"])[-4:],
                                "org_type": v["org_type"], "mdtrt_admdvs": v["mdtrt_admdvs"]}
                            for k, v in self.filings.items()},
                "admissions": [{"org_code": k[0], "ipt_no": k[1], "status": v["status"], "setl_no": v["setl_no"],
                                "details": sum(1 for d in self.details.get(k, {}).values() if d["status"] == "active"),
                                "detail_total": str(sum((d["record"]["amount"] for d in self.details.get(k, {}).values()
                                                         if d["status"] == "active"), Decimal("0.00")))}
                               for k, v in self.admissions.items()],
                "settlements": [{"setl_no": k, "status": v["status"], "org_code": v["org_code"], "month": v["month"],
                                 "ipt_no": v["ipt_no"], "medfee_sumamt": str(v["record"]["medfee_sumamt"]),
                                 "pool_amt": str(v["record"]["pool_amt"])} for k, v in self.settlements.items()],
                "device_settlements": [{"setl_no": k, "status": v["status"]} for k, v in self.device_settlements.items()],
                "deductions": [{"deduct_no": k, "setl_no": v["record"]["setl_no"], "status": v["status"],
                                "deduct_amt": str(v["record"]["deduct_amt"])} for k, v in self.deductions.items()],
                "month_ends": [{"org_code": k[0], "month": k[1], "visit_count": v["visit_count"],
                                "pay_amt": str(v["pay_amt"])} for k, v in self.month_ends.items()],
                "attachments": len(self.attachments),
                "queues": {name: {"waiting": len(q.waiting), "outstanding": sum(len(d.pending_ids)
                                                                                 for d in q.outstanding.values()),
                                  "delivered": len(q.delivered_ids), "confirmed": q.confirmed}
                           for name, q in self.queues.items()},
                "detail_queues_waiting": sum(len(v) for v in self.detail_queues.values()),
                "journal": len(self.journal),
                "calls": dict(self.calls),
            }
