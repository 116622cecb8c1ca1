"""What the national platform posts back about records the hospital uploaded: the prescription centre's 7102
处方审核结果反馈 (how a pharmacy reviewed a prescription uploaded with 7101, named by its hi_rxno) and 7103 处方购药结果反馈
(what the patient bought on it and how it was settled, daily). Both are ``direction: in`` in the catalog: the
platform calls the hospital, on the scheduler's web port:

    POST /national/inbound      the national envelope (infno, msgid, fixmedins_code …, input)
        → 200 {"infcode": 0, "err_msg": "", "inf_refmsgid", "refmsg_time", "respond_time", "output": {}, …}
        → 200 {"infcode": -1, "err_msg": "[7102] input.data.hi_rxno: required"}     refused: the field named
        → 401 / 403 the same shape: the caller is not believed (token, source address, inbound not configured)
        → 503 the same shape: the database cannot be reached; the platform sends again (same msgid)

Nothing is believed before the caller is (:class:`Gate`, ingress-level auth: a shared token header and/or an
allow-list of source addresses, from the settings; the token is never logged). Then the envelope is read
(:func:`read_envelope`): a transaction of :data:`RECEIVED_INFNOS`, a msgid, this institution's code, and an input
that passes the catalog's field list (:meth:`yibao.envelope.catalog.Catalog.prepare_input`, the validation the
simulator applies to what it serves). Then, in one transaction (:func:`receive`):

* a msgid heard before is the same event: answered as the first time, nothing kept twice (``duplicate``);
* the hi_rxno must be one the platform gave this hospital for a 7101 (``upload_records.platform_key``): an unknown
  one is refused with that reason (``unknown_rx``) and nothing is kept. While a 7101 of ours is sent and its answer
  not recorded yet, the hi_rxno may be that one's: the post is answered 503 ``not_yet`` (send again), never lost;
* else the message is kept in ``rx_feedback`` (the input sealed: pharmacists' names and certnos; the review code,
  times, exact amounts in columns), shown with the 7101 record by ``GET /uploads/records``, and HIS is told on
  ``yibao.his.results.v1`` (``rx_reviewed`` / ``rx_purchased``) through the outbox of the same transaction.

Every post is counted by transaction and outcome (``yibao_upload_inbound_total``). Personal data (pharmacists'
names, certnos) never reaches a log line, a metric label or HIS's result.

:data:`RECEIVED_INFNOS` is what ``yibao catalog`` reads to say who receives a ``direction: in`` transaction.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from yibao.core import clock
from yibao.core.messaging.outbox import enqueue
from yibao.core.results import HisResult, stable_id
from yibao.core.topics import topic
from yibao.core.web import BadRequest, read_json_object
from yibao.envelope.errors import EnvelopeValidationError
from yibao.envelope.national import jsontext
from yibao.upload_scheduler import metrics
from yibao.upload_scheduler.store import (
    RX_AMOUNTS,
    SERVICE,
    Feedback,
    add_feedback,
    answer_in_flight,
    feedback_by_msgid,
    record_by_platform_key,
)

__all__ = ["RECEIVED_INFNOS", "INBOUND_PATH", "ABOUT", "Gate", "Refusal", "Inbound", "Reply", "read_envelope",
           "receive", "his_result", "platform_answer", "Receiver", "install"]

log = logging.getLogger(__name__)

#: the national transactions the platform calls the hospital with, received here (``yibao catalog`` reads this)
RECEIVED_INFNOS: tuple[str, ...] = ("7102", "7103")
INBOUND_PATH = "/national/inbound"
#: infno → the kind of uploaded record it is about (the lane whose ``platform_key`` it quotes)
ABOUT: dict[str, str] = {"7102": "7101", "7103": "7101"}
#: the platform's msgid: 30 characters (national-platform.md, "Envelope")
_MSGID_MAX = 30


@dataclass(frozen=True)
class Refusal:
    """A post not taken: the HTTP status, the outcome counted, the err_msg answered (never a value sent)."""

    status: int
    outcome: str
    err_msg: str
    infno: str = "-"
    msgid: str = ""
    field: str | None = None


# --- who may post ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gate:
    """Ingress-level auth of the inbound endpoint: the shared ``token`` in ``header`` (constant-time compare of
    digests), and/or the peer address within ``networks``. Neither configured: every post is refused (403)."""

    token: str = field(default="", repr=False)
    header: str = "X-Yibao-Inbound-Token"
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> Gate:
        return cls(token=settings.inbound_token.get_secret_value(), header=settings.inbound_token_header,
                   networks=tuple(ipaddress.ip_network(n.strip(), strict=False)
                                  for n in settings.inbound_allowed_sources))

    @property
    def configured(self) -> bool:
        return bool(self.token or self.networks)

    def check(self, headers: Mapping[str, str], peer: str | None) -> Refusal | None:
        """None: the caller is believed; else why not."""
        if not self.configured:
            return Refusal(403, "forbidden", "inbound feedback is not configured on this hospital (set "
                                             "YIBAO_UPLOAD_SCHEDULER_INBOUND_TOKEN and/or …_INBOUND_ALLOWED_SOURCES)")
        if self.networks and not _allowed(peer, self.networks):
            return Refusal(403, "forbidden", "the source address is not allowed to post feedback")
        if self.token:
            presented = headers.get(self.header)
            if not presented:
                return Refusal(401, "unauthenticated", f"the {self.header} header is required")
            if not hmac.compare_digest(_digest(presented), _digest(self.token)):
                return Refusal(401, "unauthenticated", f"the {self.header} header does not verify")
        return None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).digest()


def _allowed(peer: str | None, networks: tuple[Any, ...]) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in n for n in networks if n.version == address.version)


# --- what was posted -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inbound:
    """An envelope believed and validated: ``input`` in the catalog's form (Decimal amounts, formatted times)."""

    infno: str
    msgid: str
    input: dict[str, Any]
    payload_hash: str

    @property
    def data(self) -> dict[str, Any]:
        value = self.input.get("data")
        return value if isinstance(value, dict) else {}

    @property
    def hi_rxno(self) -> str:
        return str(self.data.get("hi_rxno") or "")


def read_envelope(body: bytes | None, *, catalog: Any, fixmedins_code: str = "",
                  max_bytes: int = 256 * 1024) -> Inbound | Refusal:
    """The envelope in ``body``, validated, or the first rule it breaks (named as the platform names fields)."""
    try:
        env = read_json_object(body, max_bytes=max_bytes, what="envelope")
    except BadRequest as exc:
        return Refusal(200, "invalid", f"request body: {exc}")
    raw_infno = env.get("infno")
    infno = str(raw_infno).strip() if isinstance(raw_infno, (str, int)) and not isinstance(raw_infno, bool) else ""
    if infno not in RECEIVED_INFNOS:
        return Refusal(200, "invalid", f"[{infno[:6] or '?'}] envelope.infno: not a transaction this hospital "
                                       f"receives ({', '.join(RECEIVED_INFNOS)})", infno="other", field="infno")
    msgid = env.get("msgid")
    if not isinstance(msgid, str) or not msgid.strip() or len(msgid.strip()) > _MSGID_MAX:
        return Refusal(200, "invalid", f"[{infno}] envelope.msgid: required, at most {_MSGID_MAX} characters",
                       infno=infno, field="msgid")
    msgid = msgid.strip()
    code = env.get("fixmedins_code")
    if fixmedins_code and (not isinstance(code, str) or code.strip() != fixmedins_code):
        return Refusal(200, "invalid", f"[{infno}] envelope.fixmedins_code: not this institution's code",
                       infno=infno, msgid=msgid, field="fixmedins_code")
    payload = env.get("input")
    if not isinstance(payload, dict):
        return Refusal(200, "invalid", f"[{infno}] envelope.input: required object", infno=infno, msgid=msgid,
                       field="input")
    try:
        prepared = catalog.prepare_input(infno, catalog.read_input(infno, payload))
    except EnvelopeValidationError as exc:
        where = f"input.{exc.path}" if exc.path else "input"
        return Refusal(200, "invalid", f"[{infno}] {where}: {exc.rule}", infno=infno, msgid=msgid, field=where)
    digest = hashlib.sha256(jsontext.dumps(prepared).encode("utf-8")).hexdigest()
    return Inbound(infno=infno, msgid=msgid, input=prepared, payload_hash=digest)


# --- what it does --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """The answer to a post (status and body), and what it was, for the metric and the log."""

    status: int
    body: dict[str, Any]
    outcome: str
    infno: str
    msgid: str = ""
    field: str | None = None


def _ts17(when: _dt.datetime) -> str:
    when = clock.as_shanghai(when)
    return when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"


def platform_answer(fixmedins_code: str, msgid: str, received: _dt.datetime, *, err_msg: str = "",
                    responded: _dt.datetime | None = None) -> dict[str, Any]:
    """The reply envelope the platform reads (infcode 0 / -1 with err_msg). A message accepted is answered from what
    was kept of it, so the same msgid is answered with the same bytes however often it comes."""
    serial = int(stable_id(SERVICE, "inbound", msgid), 16) % 10000
    return {"infcode": -1 if err_msg else 0,
            "inf_refmsgid": f"{fixmedins_code[:12]}{clock.as_shanghai(received):%Y%m%d%H%M%S}{serial:04d}",
            "refmsg_time": _ts17(received), "respond_time": _ts17(responded or received),
            "err_msg": err_msg[:200], "warn_msg": "", "output": {}}


def _occurred(inbound: Inbound) -> _dt.datetime:
    name = "rx_chk_time" if inbound.infno == "7102" else "setl_time"
    return clock.parse_datetime(str(inbound.data[name]))


def feedback_of(inbound: Inbound, record: Any, received: _dt.datetime) -> Feedback:
    """What is kept of an accepted message (pure)."""
    data = inbound.data
    if inbound.infno == "7102":
        return Feedback(msgid=inbound.msgid, infno="7102", hi_rxno=inbound.hi_rxno, record=record,
                        status=str(data.get("rx_chk_stas_codg") or ""), pharmacy_code=data.get("fixmedins_code"),
                        occurred_at=_occurred(inbound), received_at=received, payload=inbound.input,
                        payload_hash=inbound.payload_hash)
    lines = [x for x in inbound.input.get("seltdelts") or [] if isinstance(x, dict)]
    return Feedback(msgid=inbound.msgid, infno="7103", hi_rxno=inbound.hi_rxno, record=record, status="purchased",
                    pharmacy_code=(lines[0].get("fixmedins_code") or None) if lines else None,
                    occurred_at=_occurred(inbound), received_at=received, payload=inbound.input,
                    payload_hash=inbound.payload_hash,
                    amounts={name: Decimal(data[name]) for name in RX_AMOUNTS}, lines=len(lines))


_LINE_FIELDS = ("medins_drug_no", "drug_genname", "drug_prodname", "drug_dosform", "drug_spec", "drug_totlcnt",
                "aprvno", "bchno", "fixmedins_code", "fixmedins_name", "manu_lot_num", "prdr_name", "pric",
                "total_unit", "sumamt")


def his_result(fb: Feedback) -> HisResult:
    """What HIS is told (pure): the review (its code, opinion, the reviewing pharmacy — not the pharmacists), or the
    purchase with its exact amounts and drug lines. Keyed by the prescription's HIS visit."""
    data = fb.payload.get("data") if isinstance(fb.payload.get("data"), dict) else {}
    detail: dict[str, Any] = {"hi_rxno": fb.hi_rxno, "hosp_rxno": fb.record.key, "platform_msgid": fb.msgid}
    if fb.infno == "7102":
        detail.update({"rx_chk_stas_codg": fb.status, "rx_chk_time": clock.format_datetime(fb.occurred_at),
                       "rx_chk_opnn": data.get("rx_chk_opnn") or None, "pharmacy_code": fb.pharmacy_code,
                       "pharmacy_name": data.get("fixmedins_name") or None})
        kind, setl_time, reason = "rx_reviewed", None, data.get("rx_chk_opnn") or None
    else:
        detail.update({name: str(value) for name, value in (fb.amounts or {}).items()})
        detail["setl_time"] = clock.format_datetime(fb.occurred_at)
        detail["lines"] = [{k: (str(v) if isinstance(v, Decimal) else v) for k, v in line.items() if k in _LINE_FIELDS}
                           for line in fb.payload.get("seltdelts") or [] if isinstance(line, dict)]
        kind, setl_time, reason = "rx_purchased", fb.occurred_at, None
    return HisResult(message_id=stable_id(SERVICE, "inbound", fb.msgid), his_visit_id=fb.record.his_visit_id or fb.record.key,
                     visit_kind="outpatient", kind=kind, service=SERVICE, his_request_id=fb.record.key,  # type: ignore[arg-type]
                     step_infno=fb.infno, msgid=fb.msgid, setl_time=setl_time,
                     reason=str(reason)[:2000] if reason else None, detail=detail, occurred_at=fb.received_at)


def receive(conn: Connection, inbound: Inbound, *, fixmedins_code: str, topic_prefix: str = "",
            now: _dt.datetime | None = None) -> Reply:
    """Take a validated message, in the caller's transaction: answered as before (a msgid heard before), refused (a
    hi_rxno this hospital was never given), or kept and told to HIS (the outbox of the same transaction)."""
    received = now or clock.now()
    seen = feedback_by_msgid(conn, inbound.msgid)
    if seen is not None:
        _, digest, first = seen
        if digest != inbound.payload_hash:  # the platform's bug, not the message's: answered as the first one
            log.warning("platform feedback: a msgid heard before came with other content",
                        extra={"fields": {"infno": inbound.infno, "msgid": inbound.msgid}})
        return Reply(200, platform_answer(fixmedins_code, inbound.msgid, first), "duplicate", inbound.infno,
                     inbound.msgid)
    kind = ABOUT[inbound.infno]
    record = record_by_platform_key(conn, kind, inbound.hi_rxno)
    if record is None and answer_in_flight(conn, kind):  # its 7101's answer may be on its way into the database
        err = (f"[{inbound.infno}] input.data.hi_rxno: not known yet (a {kind} answer is being recorded); send it "
               "again shortly")
        return Reply(503, platform_answer(fixmedins_code, inbound.msgid, received, err_msg=err, responded=clock.now()),
                     "not_yet", inbound.infno, inbound.msgid, "input.data.hi_rxno")
    if record is None:
        err = (f"[{inbound.infno}] input.data.hi_rxno: 医保处方编号不存在 (no prescription this hospital uploaded "
               f"with {kind} was answered with this hi_rxno)")
        return Reply(200, platform_answer(fixmedins_code, inbound.msgid, received, err_msg=err, responded=clock.now()),
                     "unknown_rx", inbound.infno, inbound.msgid, "input.data.hi_rxno")
    fb = feedback_of(inbound, record, received)
    add_feedback(conn, fb)
    result = his_result(fb)
    enqueue(conn, producer=SERVICE, topic=topic("his_results", topic_prefix), key=result.his_visit_id,
            value=result.to_json(), headers={"message_id": result.message_id, "type": "HisResult"})
    return Reply(200, platform_answer(fixmedins_code, inbound.msgid, received), "recorded", inbound.infno,
                 inbound.msgid)


# --- the endpoint ----------------------------------------------------------------------------------------------------

Db = Callable[[Callable[[Connection], Any]], Any]


class Receiver:
    """The endpoint's work, framework-free: :meth:`post` takes the headers, the peer address and a way to read the
    body (read only once the caller is believed)."""

    def __init__(self, db: Db, catalog: Any, gate: Gate, *, fixmedins_code: str, topic_prefix: str = "",
                 max_bytes: int = 256 * 1024) -> None:
        self.db, self.catalog, self.gate = db, catalog, gate
        self.fixmedins_code, self.topic_prefix, self.max_bytes = fixmedins_code, topic_prefix, max_bytes

    async def post(self, headers: Mapping[str, str], peer: str | None, read: Callable[[], Any]) -> Reply:
        reply = await self._post(headers, peer, read)
        metrics.INBOUND.labels(reply.infno, reply.outcome).inc()
        fields = {"infno": reply.infno, "outcome": reply.outcome, "msgid": reply.msgid or None}
        if reply.outcome in ("recorded", "duplicate"):
            log.info("platform feedback %s", reply.outcome, extra={"fields": fields})
        else:
            log.warning("platform feedback refused", extra={"fields": {**fields, "field": reply.field}})
        return reply

    def _refused(self, refusal: Refusal) -> Reply:
        now = clock.now()
        return Reply(refusal.status, platform_answer(self.fixmedins_code, refusal.msgid, now, err_msg=refusal.err_msg),
                     refusal.outcome, refusal.infno, refusal.msgid, refusal.field)

    async def _post(self, headers: Mapping[str, str], peer: str | None, read: Callable[[], Any]) -> Reply:
        refusal = self.gate.check(headers, peer)
        if refusal is not None:
            return self._refused(refusal)
        try:
            body = await read()
        except BadRequest as exc:
            return self._refused(Refusal(exc.status if exc.status != 400 else 200, "invalid", f"request body: {exc}"))
        inbound = read_envelope(body, catalog=self.catalog, fixmedins_code=self.fixmedins_code,
                                max_bytes=self.max_bytes)
        if isinstance(inbound, Refusal):
            return self._refused(inbound)
        for attempt in (1, 2):
            try:
                return await self.db(lambda conn: receive(conn, inbound, fixmedins_code=self.fixmedins_code,
                                                          topic_prefix=self.topic_prefix))  # type: ignore[no-any-return]
            except IntegrityError:
                if attempt == 2:  # pragma: no cover - a second race on the same msgid
                    break
                continue  # the same msgid kept meanwhile by a concurrent post: answered as that one
            except Exception as exc:  # noqa: BLE001 - the database: the platform sends again, never a 500
                log.warning("platform feedback not kept: the database is not reachable",
                            extra={"fields": {"infno": inbound.infno, "error": type(exc).__name__}})
                break
        return self._refused(Refusal(503, "unavailable", f"[{inbound.infno}] the hospital cannot keep the message "
                                                         "now; send it again (same msgid)",
                                     infno=inbound.infno, msgid=inbound.msgid))


def install(app: Any, receiver: Receiver) -> None:
    """Add ``POST /national/inbound`` to a faust app's web server."""
    from faust.web import View

    from yibao.core.web import read_body

    @app.page(INBOUND_PATH)
    class NationalInbound(View):  # type: ignore[misc]
        async def post(self, request: Any) -> Any:
            reply = await receiver.post(request.headers, request.remote,
                                        lambda: read_body(request, max_bytes=receiver.max_bytes))
            return self.bytes(jsontext.dumps(reply.body).encode("utf-8"), status=reply.status,
                              content_type="application/json")
