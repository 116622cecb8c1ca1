"""The mobile-pay worker's HTTP face (on its own port, next to /metrics and /healthz): the channels' API and the
platform's settlement-result callback. Framework-free handlers (:class:`MobilePayApi`), mounted on faust's web
server by :func:`install`, so each is tested on its own.

Channels (``Authorization: Bearer <channel token>``, see :mod:`yibao.mobilepay.channels`):

==============================================  =======  ===========================================================
``GET  /mobilepay/patients/{id}/pending``       read     the patient's visits with pending fees (lines, totals)
``POST /mobilepay/orders``                      pay      pay a visit's pending fees (:class:`~.models.OrderBody`):
                                                         201 a new order, 200 the same channel order again (one
                                                         platform order, however often the channel retries),
                                                         409 refused (the reason: fee not pending, 自费 visit …)
``GET  /mobilepay/orders/{order_id}``           read     the order: status, amounts, refunds (``?wait_s=`` up to
                                                         30 s for it to move on)
``POST /mobilepay/orders/{order_id}/pay``       pay      the patient confirms: 6202
``POST /mobilepay/orders/{order_id}/cancel``    pay      withdraw an order not paid (6401 if uploaded)
``POST /mobilepay/orders/{order_id}/refunds``   refund   refund a paid order: ALL, CASH or HI (6203)
``POST /mobilepay/identity``                    identity check a settlement type against 1101 (seed 003)
``GET  /mobilepay/admdvs``                      identity 医保区划 from the 1901 dictionary (``?parent=440000``)
==============================================  =======  ===========================================================

WeChat Pay (``wechat_enabled``): ``POST /mobilepay/wechat/notify`` — the payment notification, verified with WeChat
Pay's key and decrypted with the APIv3 key before it is believed; ``POST /mobilepay/wechat/authorize`` (right
``pay``) — 免密授权: the patient's authorisation code → pay_auth_no.

The platform: ``POST /mobilepay/callback`` (setting ``callback_path``) — the signature is verified and encData
decrypted before anything is believed; a forged or tampered message (``bad_signature``, ``undecryptable``), a
replay of a message received before (``replayed``), a stale one (``stale``, its signed timestamp more than
``callback_max_age_s`` away) or one naming no order of ours (``unknown_order``) is refused with a clear error and
counted (``yibao_mobilepay_callbacks_total{outcome}``), and changes nothing. The same event delivered again with a
fresh signature (the platform retrying: same payOrdId + ordStas + traceTime) is one event: acknowledged, counted
``duplicate``, nothing changes. Accepted: ``{"code": 0, "message": "success"}``.

Errors answer ``{"error": code, "message": …}`` naming the field and the rule: 400 bad body, 401 no or unknown
token, 403 a right the channel lacks, 404 unknown order, 409 refused, 413 too large. No body gets a 500. Every
request a channel makes is audited (``mobilepay_audit``): who (the channel, the operator it names), what, which
order, how it ended — a money-moving one in the transaction that decides it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as _dt
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.chains.model import Absorption
from yibao.core import clock
from yibao.core.messaging.inbox import first_time
from yibao.core.money import ZERO
from yibao.envelope.crypto.canonical import loads_exact
from yibao.envelope.errors import BusinessRejection, CryptoError, SignatureError
from yibao.envelope.mobilepay.models import SettlementNotice
from yibao.hisevents.models import validation_reason
from yibao.mobilepay import absorb, store
from yibao.mobilepay.channels import Channel, Channels
from yibao.mobilepay.chain import refund_amounts
from yibao.mobilepay.models import CallbackReceived, CancelBody, IdentityBody, OrderBody, PayBody, RefundBody
from yibao.mobilepay.results import CALLBACKS, CHANNEL_REQUESTS
from yibao.mobilepay.state import MobilePayState, Order, Refund, order_id_for, refund_id_for

__all__ = ["Answer", "Request", "MobilePayApi", "install", "order_view", "STATUS_OF_PHASE"]

log = logging.getLogger(__name__)

#: what a channel shows the patient, by order phase
STATUS_OF_PHASE = {
    "requested": "pending", "new": "uploading", "uploaded": "awaiting_payment", "paid": "paying",
    "confirming": "paying", "wechat_ordering": "paying", "wechat_pending": "awaiting_cash",
    "wechat_confirming": "paying", "settled": "paid", "revoking": "cancelling", "revoked": "cancelled",
    "refused": "refused", "failed": "failed",
}
_MAX_WAIT_S = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    def encoded(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, default=str).encode("utf-8")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)  #: lower-case names
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    remote: str = "-"

    def bearer(self) -> str | None:
        value = self.headers.get("authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": code, "message": message})


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = loads_exact(body or b"null")
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Refused(_error(400, "bad_request", "the body is not JSON")) from None
    if not isinstance(data, dict):
        raise _Refused(_error(400, "bad_request", "expected a JSON object"))
    return data


def _body(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate(_json_object(body))
    except ValidationError as exc:
        raise _Refused(_error(400, "bad_request", validation_reason(exc))) from None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def order_view(st: MobilePayState, o: Order) -> dict[str, Any]:
    """What a channel sees of an order: never a personal field, never the patient's authorisation."""
    view: dict[str, Any] = {
        "order_id": o.id, "channel_order_id": o.channel_order_id, "his_visit_id": None, "version": o.version,
        "status": STATUS_OF_PHASE.get(o.phase, o.phase), "phase": o.phase, "pay_type": o.pay_type,
        "total": _money(o.total), "lines": list(o.sns), "pay_ord_id": o.pay_ord_id,
        "med_org_ord": o.med_org_ord if o.phase != "requested" else None,
        "reason_code": o.reason_code, "reason": o.reason or (o.revoke_reason if o.phase == "revoking" else None),
        "created_at": clock.format_datetime(o.created_at), "updated_at": clock.format_datetime(o.updated_at),
    }
    if o.fee_sumamt is not None:
        view["split"] = {"fee_sumamt": _money(o.fee_sumamt), "fund_pay": _money(o.fund_pay),
                         "psn_acct_pay": _money(o.psn_acct_pay), "own_pay_amt": _money(o.own_pay_amt)}
    if o.phase == "settled":
        view.update(hi_doc_sn=o.hi_doc_sn, setl_time=clock.format_datetime(o.setl_time) if o.setl_time else None,
                    settled_by=o.settled_by)
    if o.wechat is not None:
        w = o.wechat
        view["wechat"] = {"mix_pay_type": w.mix_pay_type, "out_trade_no": w.out_trade_no, "status": w.status,
                          "cash_fee": _money(w.cash_fee), "insurance_fee": _money(w.insurance_fee),
                          "mix_trade_no": w.mix_trade_no}
    view["refunds"] = [{"refund_request_id": r.request_id, "refund_id": r.id, "refd_type": r.refd_type,
                        "status": r.phase, "cash": _money(r.cash), "acct": _money(r.acct), "fund": _money(r.fund),
                        "reason": r.reason} for r in o.refunds]
    return view


class CallbackEnvelope(BaseModel):
    """The callback's envelope: what must be there before anything is verified."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    appId: str = Field(min_length=1, max_length=64)
    encType: str = Field(min_length=1, max_length=10)
    signType: str = Field(min_length=1, max_length=10)
    timestamp: str | int
    encData: str = Field(min_length=1, max_length=2_000_000)
    signData: str = Field(min_length=1, max_length=512)
    version: str | None = None


def _signature_key(sign_data: str) -> str:
    """The replay key of a message: its signature's bytes (a re-encoding of the same Base64 — other padding bits,
    whitespace — is the same message)."""
    try:
        raw = base64.b64decode(sign_data.strip(), validate=False)
    except (ValueError, binascii.Error):
        raw = sign_data.encode()
    return hashlib.sha256(raw).hexdigest()[:40]


def _signed_time(value: str | int) -> _dt.datetime | None:
    text = str(value).strip()
    if not text.isdigit():
        return None
    try:
        if len(text) == 14:
            return clock.parse_datetime(text)
        return clock.from_epoch_ms(int(text))
    except (ValueError, OverflowError, OSError):
        return None


Db = Callable[[Callable[[Any], Any]], Awaitable[Any]]


class MobilePayApi:
    """The handlers. ``db`` runs one transaction; ``engine`` is the chain engine (absorbing in that transaction)."""

    def __init__(self, *, db: Db, engine: Any, channels: Channels, codec: Any, settings: Any,
                 identity: Any = None, wechat: Any = None) -> None:
        self.db = db
        self.engine = engine
        self.channels = channels
        self.codec = codec
        self.settings = settings
        self.identity = identity
        self.wechat = wechat  #: a WeChatPayClient (notifications, 免密授权) when WeChat channels are enabled

    # --- plumbing ------------------------------------------------------------------------------------------

    def _channel(self, request: Request, right: str) -> Channel:
        channel = self.channels.authenticate(request.bearer())
        if channel is None:
            raise _Refused(_error(401, "unauthenticated", "a channel token is needed (Authorization: Bearer …)"))
        if not channel.may(right):
            raise _Refused(_error(403, "forbidden", f"channel {channel.name} lacks the right '{right}'"))
        return channel

    async def _absorb(self, absorption: Absorption[MobilePayState], audit: dict[str, Any]) -> bool:
        """Absorb the request into its visit and write its audit row, in one transaction; True when new."""

        def unit(conn: Any) -> tuple[list[bool], list[Callable[[], None]]]:
            flags, after = self.engine.absorb_in(conn, [absorption])
            store.audit(conn, **audit)
            return flags, after

        flags, after = await self.db(unit)
        for fn in after:  # a visit made ready is handed to a driver (or the scheduler woken)
            fn()
        return flags[0]

    async def _load(self, order_id: str, channel: Channel | None = None
                    ) -> tuple[store.OrderRow, MobilePayState, Order]:
        def read(conn: Any) -> tuple[store.OrderRow | None, MobilePayState | None]:
            row = store.order_row(conn, order_id)
            return row, (store.load_state(conn, row.his_visit_id) if row is not None else None)

        row, st = await self.db(read)
        order = st.order(order_id) if st is not None else None
        if row is None or st is None or order is None or (channel is not None and row.channel != channel.name):
            raise _Refused(_error(404, "not_found", f"no order {order_id} of this channel"))
        return row, st, order

    async def _audit(self, **values: Any) -> None:
        await self.db(lambda conn: store.audit(conn, **values))

    async def handle(self, action: str, fn: Callable[[], Awaitable[Answer]]) -> Answer:
        """Run a handler: refusals become their answers, anything unexpected a 503 (never a 500 with a trace)."""
        try:
            answer = await fn()
        except _Refused as refused:
            answer = refused.answer
        except Exception as exc:  # noqa: BLE001 - a request never takes the worker down
            log.error("mobile-pay request failed", extra={"fields": {"action": action, "error": type(exc).__name__}})
            answer = _error(503, "unavailable", f"the request could not be served now ({type(exc).__name__}); "
                                                "send it again")
        outcome = "ok" if answer.status < 400 else {401: "denied", 403: "denied"}.get(answer.status, "refused")
        CHANNEL_REQUESTS.labels(action, outcome).inc()
        return answer

    # --- pending fees ----------------------------------------------------------------------------------------

    async def pending(self, request: Request, his_patient_id: str) -> Answer:
        channel = self._channel(request, "read")

        def read(conn: Any) -> list[tuple[str, MobilePayState]]:
            out = []
            for visit_id, _, _ in store.visits_of_patient(conn, his_patient_id):
                st = store.load_state(conn, visit_id)
                if st is not None:
                    out.append((visit_id, st))
            return out

        visits = await self.db(read)
        body = []
        for visit_id, st in visits:
            lines = st.pending_lines()
            if not lines:
                continue
            body.append({"his_visit_id": visit_id, "total": str(st.pending_total()), "dept_name": st.patient.dept_name,
                         "settle_choice": st.patient.settle_choice, "registered": st.patient.registered,
                         "lines": [{"feedetl_sn": line.feedetl_sn, "amount": str(line.amount),
                                    "name": line.medins_list_name, "cnt": str(line.cnt), "pric": str(line.pric),
                                    "fee_ocur_time": clock.format_datetime(line.fee_ocur_time)} for line in lines]})
        await self._audit(actor=channel.name, role="read", action="pending_fees", outcome="ok",
                          source=request.remote, status=200)
        return Answer(200, {"his_patient_id": his_patient_id, "visits": body})

    # --- orders ------------------------------------------------------------------------------------------------

    async def create_order(self, request: Request) -> Answer:
        channel = self._channel(request, "pay")
        body: OrderBody = _body(OrderBody, request.body)
        order_id = order_id_for(channel.name, body.channel_order_id)
        now = clock.now()
        order = Order(id=order_id, channel=channel.name, channel_kind=channel.kind,
                      channel_order_id=body.channel_order_id, his_patient_id=body.his_patient_id,
                      message_id=f"order:{order_id}", version=channel.version,  # type: ignore[arg-type]
                      pay_type=body.pay_type, asked_sns=body.feedetl_sns, asked_total=body.total,
                      acct_used_flag=body.acct_used_flag, pay_auth_no=body.pay_auth_no, ec_token=body.ec_token,
                      auto_pay=body.pay_now, operator=body.operator, created_at=now, updated_at=now)
        absorption = absorb.order_requested(visit_key=body.his_visit_id, order=order)

        def unit(conn: Any) -> tuple[Answer | None, bool, MobilePayState | None, list[Callable[[], None]]]:
            """One transaction: the checks, the order absorbed (and decided), its audit row, the order read back."""
            existing = store.order_row(conn, order_id)
            if existing is not None and existing.his_visit_id != body.his_visit_id:
                return _error(409, "order_id_reused", "channel_order_id names another visit's order"), False, None, []
            if existing is None:
                visit = store.load_state(conn, body.his_visit_id)
                if visit is None or not visit.known:
                    return _error(404, "unknown_visit", "no such outpatient visit (HIS has not registered it, or "
                                                        "not yet): ask again in a moment"), False, None, []
            written: dict[str, MobilePayState] = {}
            flags, after = self.engine.absorb_in(conn, [absorption], states=written)
            store.audit(conn, actor=channel.name, operator=body.operator, role="pay", action="order",
                        order_id=order_id, outcome="ok", source=request.remote,
                        detail=f"{body.pay_type}, {channel.version}")
            st = written.get(body.his_visit_id)
            if st is None:  # a repeat of the request: the visit as stored
                st = store.load_state(conn, body.his_visit_id)
            return None, flags[0], st, after

        refused, fresh, st, after = await self.db(unit)
        if refused is not None:
            return refused
        for fn in after:  # a visit made ready is handed to a driver (or the scheduler woken)
            fn()
        stored = st.order(order_id) if st is not None else None
        if st is None or stored is None:
            raise _Refused(_error(503, "unavailable", "the order could not be read back; ask for it again"))
        view = order_view(st, stored)
        view["his_visit_id"] = body.his_visit_id
        if stored.phase == "refused":
            return Answer(409, {"error": stored.reason_code or "refused", "message": stored.reason, "order": view})
        return Answer(201 if fresh else 200, {"order": view})

    async def get_order(self, request: Request, order_id: str) -> Answer:
        channel = self._channel(request, "read")
        try:
            wait_s = min(_MAX_WAIT_S, max(0.0, float(request.query.get("wait_s", "0") or 0)))
        except ValueError:
            raise _Refused(_error(400, "bad_request", "wait_s: a number of seconds")) from None
        deadline = time.monotonic() + wait_s
        row, st, order = await self._load(order_id, channel)
        start_phase = order.phase
        while wait_s and not order.final and order.phase == start_phase and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            row, st, order = await self._load(order_id, channel)
        view = order_view(st, order)
        view["his_visit_id"] = row.his_visit_id
        return Answer(200, {"order": view})

    async def pay(self, request: Request, order_id: str) -> Answer:
        channel = self._channel(request, "pay")
        body: PayBody = _body(PayBody, request.body)
        row, st, order = await self._load(order_id, channel)
        if order.final or order.phase not in ("requested", "new", "uploaded"):
            raise _Refused(_error(409, "not_payable", f"the order is {STATUS_OF_PHASE.get(order.phase, order.phase)}"))
        if order.cancel_requested:
            raise _Refused(_error(409, "not_payable", "the order was withdrawn"))
        await self._absorb(absorb.pay_requested(visit_key=row.his_visit_id, order_id=order_id,
                                                request_id=body.request_id, acct_used_flag=body.acct_used_flag,
                                                pay_auth_no=body.pay_auth_no, operator=body.operator),
                           dict(actor=channel.name, operator=body.operator, role="pay", action="pay",
                                order_id=order_id, outcome="ok", source=request.remote))
        _, st, order = await self._load(order_id, channel)
        return Answer(202, {"order": order_view(st, order)})

    async def cancel(self, request: Request, order_id: str) -> Answer:
        channel = self._channel(request, "pay")
        body: CancelBody = _body(CancelBody, request.body)
        row, st, order = await self._load(order_id, channel)
        if order.final or order.pay_requested:
            raise _Refused(_error(409, "not_cancellable",
                                  "the order is being paid or is over: refund it once paid" if not order.final
                                  else f"the order is {STATUS_OF_PHASE.get(order.phase, order.phase)}"))
        await self._absorb(absorb.cancel_requested(visit_key=row.his_visit_id, order_id=order_id),
                           dict(actor=channel.name, operator=body.operator, role="pay", action="cancel",
                                order_id=order_id, outcome="ok", source=request.remote))
        _, st, order = await self._load(order_id, channel)
        return Answer(202, {"order": order_view(st, order)})

    async def refund(self, request: Request, order_id: str) -> Answer:
        channel = self._channel(request, "refund")
        body: RefundBody = _body(RefundBody, request.body)
        row, st, order = await self._load(order_id, None)
        if row.channel != channel.name and channel.kind not in ("window", "finance"):
            raise _Refused(_error(404, "not_found", f"no order {order_id} of this channel"))
        refund_id = refund_id_for(order_id, channel.name, body.refund_request_id)
        if order.refund(refund_id) is None:
            if not order.settled:
                raise _Refused(_error(409, "not_refundable",
                                      f"the order is {STATUS_OF_PHASE.get(order.phase, order.phase)}, not paid"))
            cash, acct, fund = refund_amounts(order, body.refd_type)
            if cash + acct + fund == ZERO:
                raise _Refused(_error(409, "nothing_to_refund", f"nothing left to refund ({body.refd_type})"))
        else:
            cash = acct = fund = ZERO
        refund = Refund(id=refund_id, request_id=body.refund_request_id, channel=channel.name,
                        operator=body.operator, message_id=f"refund:{refund_id}", refd_type=body.refd_type,
                        cash=cash, acct=acct, fund=fund, pay_auth_no=body.pay_auth_no, ec_token=body.ec_token,
                        asked_at=clock.now())
        fresh = await self._absorb(absorb.refund_requested(visit_key=row.his_visit_id, order_id=order_id,
                                                           refund=refund),
                                   dict(actor=channel.name, operator=body.operator, role="refund", action="refund",
                                        order_id=order_id, outcome="ok", source=request.remote,
                                        detail=f"{body.refd_type} {body.reason or ''}".strip()))
        _, st, order = await self._load(order_id, None)
        view = order_view(st, order)
        return Answer(202 if fresh else 200, {"order": view, "refund_id": refund_id})

    # --- the platform's callback ---------------------------------------------------------------------------------

    async def callback(self, request: Request) -> Answer:
        """See the module docstring. Answers the platform in its own terms: code 0 acknowledged, -1 refused."""

        def refuse(status: int, outcome: str, message: str) -> Answer:
            CALLBACKS.labels(outcome).inc()
            log.warning("mobile-pay callback refused", extra={"fields": {"outcome": outcome, "source": request.remote}})
            return Answer(status, {"code": -1, "success": False, "message": message, "error": outcome})

        try:
            raw = _json_object(request.body)
        except _Refused:
            return refuse(400, "malformed", "the body is not a JSON object")
        try:
            envelope = CallbackEnvelope.model_validate(raw)
        except ValidationError as exc:
            return refuse(400, "malformed", f"envelope: {validation_reason(exc)}")
        try:
            data = self.codec.verify_callback(raw)
        except SignatureError as exc:
            return refuse(401, "bad_signature", f"not believed: {exc}")
        except CryptoError as exc:
            return refuse(400, "undecryptable", f"not believed: {exc}")
        try:
            notice = SettlementNotice.model_validate(data if isinstance(data, dict) else {})
        except ValidationError as exc:
            return refuse(400, "malformed", f"data: {validation_reason(exc)}")
        signed_at = _signed_time(envelope.timestamp)
        age = abs((clock.now() - signed_at).total_seconds()) if signed_at is not None else None
        if age is None or age > self.settings.callback_max_age_s:
            return refuse(400, "stale", "timestamp: unreadable or older than the callback window (stale)"
                          if age is None else f"timestamp: {age:.0f} s away from now (stale; at most "
                                              f"{self.settings.callback_max_age_s:g} s)")
        signature = "cbsig:" + _signature_key(envelope.signData)
        received = CallbackReceived(
            message_id=absorb.callback_message_id(notice.payOrdId, notice.ordStas, notice.traceTime),
            pay_ord_id=notice.payOrdId, ord_stas=notice.ordStas, trace_time=notice.traceTime,
            med_org_ord=notice.medOrgOrd, call_type=notice.callType, fee_sumamt=notice.feeSumamt,
            ownpay_amt=notice.ownpayAmt, psn_acct_pay=notice.psnAcctPay, fund_pay=notice.fundPay,
            hi_doc_sn=notice.hiDocSn, hi_rgst_sn=notice.hiRgstSn, hi_chrg_time=notice.hiChrgTime,
            setl_type=notice.setlType, version=envelope.version)

        def unit(conn: Any) -> tuple[str, list[Callable[[], None]]]:
            row = store.order_by_pay_ord_id(conn, notice.payOrdId) or \
                store.order_by_med_org_ord(conn, notice.medOrgOrd or "")
            if row is None or (row.pay_ord_id not in (None, notice.payOrdId)):
                return "unknown_order", []
            if not first_time(conn, "mobilepay", signature):
                store.audit(conn, actor="platform", role="callback", action="callback", order_id=row.order_id,
                            outcome="refused", source=request.remote, status=409, detail="replayed")
                return "replayed", []
            flags, after = self.engine.absorb_in(conn, [absorb.callback_received(visit_key=row.his_visit_id,
                                                                                 notice=received)])
            outcome = "accepted" if flags[0] else "duplicate"
            store.audit(conn, actor="platform", role="callback", action="callback", order_id=row.order_id,
                        outcome="ok", source=request.remote, status=200,
                        detail=f"ordStas {notice.ordStas} ({outcome})")
            return outcome, after

        outcome, after = await self.db(unit)
        if outcome == "unknown_order":
            return refuse(404, "unknown_order", "payOrdId: not an order of this hospital")
        if outcome == "replayed":
            return refuse(409, "replayed", "replayed: this very message was received before")
        for fn in after:  # a visit made ready is handed to a driver (or the scheduler woken)
            fn()
        CALLBACKS.labels(outcome).inc()
        return Answer(200, {"code": 0, "success": True,
                            "message": "success" if outcome == "accepted" else "already received"})

    # --- WeChat Pay ---------------------------------------------------------------------------------------------

    async def wechat_notify(self, request: Request) -> Answer:
        """WeChat Pay's payment notification: verified (Wechatpay-Signature) and decrypted (APIv3 key) before
        anything is believed; answered as WeChat expects (200 SUCCESS, else FAIL with the reason)."""

        def refuse(status: int, outcome: str, message: str) -> Answer:
            CALLBACKS.labels(f"wechat_{outcome}").inc()
            return Answer(status, {"code": "FAIL", "message": message})

        if self.wechat is None:
            return refuse(404, "unknown_order", "WeChat Pay is not configured here")
        try:
            data = self.wechat.verify_notification(request.headers, request.body)
        except SignatureError as exc:
            return refuse(401, "bad_signature", f"not believed: {exc}")
        except CryptoError as exc:
            return refuse(400, "undecryptable", f"not believed: {exc}")
        out_trade_no = str(data.get("out_trade_no") or "") if isinstance(data, dict) else ""
        order_id = out_trade_no[:-1] if out_trade_no.endswith("W") else out_trade_no
        try:
            envelope = json.loads(request.body)
        except ValueError:
            envelope = {}
        notification_id = str(envelope.get("id") or out_trade_no + str(data.get("mix_pay_status")))

        def unit(conn: Any) -> tuple[str, list[Callable[[], None]]]:
            row = store.order_row(conn, order_id)
            if row is None:
                return "unknown_order", []
            flags, after = self.engine.absorb_in(conn, [absorb.wechat_notified(
                visit_key=row.his_visit_id, order_id=order_id, notification_id=notification_id,
                mix_pay_status=data.get("mix_pay_status"), self_pay_status=data.get("self_pay_status"))])
            store.audit(conn, actor="wechat", role="notify", action="wechat_notify", order_id=order_id, outcome="ok",
                        source=request.remote, status=200, detail=str(data.get("mix_pay_status") or "no status"))
            return ("accepted" if flags[0] else "duplicate"), after

        outcome, after = await self.db(unit)
        if outcome == "unknown_order":
            return refuse(404, "unknown_order", "out_trade_no: not an order of this hospital")
        for fn in after:  # a visit made ready is handed to a driver (or the scheduler woken)
            fn()
        CALLBACKS.labels(f"wechat_{outcome}").inc()
        return Answer(200, {"code": "SUCCESS", "message": "成功"})

    async def wechat_authorize(self, request: Request) -> Answer:
        """免密授权: the patient's authorisation code (from the channel's 医保 authorisation page) → pay_auth_no."""
        channel = self._channel(request, "pay")
        if self.wechat is None:
            raise _Refused(_error(404, "not_configured", "WeChat Pay is not configured here"))
        body = _json_object(request.body)
        code = body.get("auth_code")
        if not isinstance(code, str) or not code.strip() or len(code) > 256:
            raise _Refused(_error(400, "bad_request", "auth_code: the authorisation code (text) is required"))
        try:
            reply = await self.wechat.call("8801", {"data": {"auth_code": code.strip(), "appid": body.get("appid")}})
        except BusinessRejection as exc:
            await self._audit(actor=channel.name, role="pay", action="authorize", outcome="refused",
                              source=request.remote, status=409, detail=exc.err_msg[:200])
            raise _Refused(_error(409, "not_authorized", exc.err_msg[:200])) from None
        await self._audit(actor=channel.name, role="pay", action="authorize", outcome="ok", source=request.remote,
                          status=200)
        return Answer(200, {"pay_auth_no": reply.output.get("pay_auth_no"), "city_id": reply.output.get("city_id")})

    # --- identity -------------------------------------------------------------------------------------------------

    async def check_identity(self, request: Request) -> Answer:
        channel = self._channel(request, "identity")
        body: IdentityBody = _body(IdentityBody, request.body)
        if self.identity is None:
            raise _Refused(_error(503, "unavailable", "identity checks are not configured"))
        verdict = await self.identity.check(body)
        await self._audit(actor=channel.name, operator=body.operator, role="identity", action="identity",
                          outcome="ok" if verdict.get("verified") else "refused", source=request.remote,
                          status=200, detail=f"{body.settle_type}: {verdict.get('reason_code') or 'verified'}")
        return Answer(200, verdict)

    async def admdvs(self, request: Request) -> Answer:
        self._channel(request, "identity")
        if self.identity is None:
            raise _Refused(_error(503, "unavailable", "医保区划 is not configured"))
        parent = request.query.get("parent") or None
        if parent is not None and not (parent.isdigit() and len(parent) == 6):
            raise _Refused(_error(400, "bad_request", "parent: a 6-digit 区划 code"))
        return Answer(200, await self.identity.admdvs(parent))


# --- mounting on faust's web server ----------------------------------------------------------------------------------


async def _read_body(request: Any, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def install(app: Any, api: MobilePayApi) -> None:
    """Mount the handlers on a faust app's web server."""
    from aiohttp import web
    from faust.web import View

    limit = api.settings.max_body_bytes

    def mount(path: str, name: str, action: str, **methods: Callable[..., Awaitable[Answer]]) -> None:
        async def serve(self: View, request: Any, **params: str) -> Any:
            body = b""
            if request.method == "POST":
                read = await _read_body(request, limit)
                if read is None:
                    return web.json_response({"error": "too_large", "message": f"the body is larger than {limit} "
                                                                               "bytes"}, status=413)
                body = read
            req = Request(request.method, request.path, {k.lower(): v for k, v in request.headers.items()}, body,
                          dict(request.query), request.remote or "-")
            handler = methods[request.method.lower()]
            answer = await api.handle(action, lambda: handler(req, **params))
            return web.Response(body=answer.encoded(), status=answer.status, content_type="application/json",
                                headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

        app.page(path, name=name)(type(f"View_{name}", (View,), {m: serve for m in methods}))

    mount("/mobilepay/patients/{his_patient_id}/pending", "mp_pending", "pending", get=api.pending)
    mount("/mobilepay/orders", "mp_orders", "order", post=api.create_order)
    mount("/mobilepay/orders/{order_id}", "mp_order", "read", get=api.get_order)
    mount("/mobilepay/orders/{order_id}/pay", "mp_pay", "pay", post=api.pay)
    mount("/mobilepay/orders/{order_id}/cancel", "mp_cancel", "cancel", post=api.cancel)
    mount("/mobilepay/orders/{order_id}/refunds", "mp_refund", "refund", post=api.refund)
    mount("/mobilepay/identity", "mp_identity", "identity", post=api.check_identity)
    mount("/mobilepay/admdvs", "mp_admdvs", "admdvs", get=api.admdvs)
    mount(api.settings.callback_path, "mp_callback", "callback", post=api.callback)
    mount("/mobilepay/wechat/notify", "mp_wechat_notify", "wechat_notify", post=api.wechat_notify)
    mount("/mobilepay/wechat/authorize", "mp_wechat_authorize", "authorize", post=api.wechat_authorize)
