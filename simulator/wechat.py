"""WeChat Pay's side of 医保移动支付 (API v3), written independently of the bridge's client: 医保自费混合收款下单,
its query, the payment notification, refunds of the cash part and their query, the daily trade bill, and the
patient's 免密授权 (assumed path).

Rules:

* every request's ``Authorization`` (WECHATPAY2-SHA256-RSA2048) is verified with the hospital's public key when one
  is configured (``wx_merchant_public_key_pem``); answers and notifications are signed with WeChat's key
  (``Wechatpay-Timestamp/Nonce/Signature/Serial``), notifications' resource sealed with the APIv3 key
  (AEAD_AES_256_GCM);
* an order names a mobile-pay order (``pay_order_id``) whose medOrgOrd is its ``serial_no``; its amounts (fen) must
  be that order's split: ``med_ins_gov_fee`` the fund, ``med_ins_self_fee`` the personal account,
  ``med_ins_cash_fee`` = ``wechat_pay_cash_fee`` the patient's cash part; CASH_ONLY has no insurance part (and no
  mobile-pay order), INSURANCE_ONLY no cash; the same out_trade_no again with the same content is the same order,
  with other content a refusal;
* the patient pays the cash part ``wx_autopay_s`` after the order (fault ``wechat:abandon``: never), then WeChat
  posts the notification (fault ``wechat:partial_notify``: without mix_pay_status), retried until acknowledged;
* a refund takes at most what remains of the cash part; out_refund_no is its identity.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import secrets
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from yibao.core import clock

from .deliveries import Deliveries
from .faults import FaultPlan

if TYPE_CHECKING:
    from .mobilepay import MobilePlatform

__all__ = ["WeChatPlatform", "rsa_keypair_pem"]

PLATFORM_SERIAL = "PUB_KEY_ID_SIMULATOR0001"


def rsa_keypair_pem() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh RSA-2048 key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def _fen(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class WeChatPlatform(Deliveries):
    def __init__(self, settings: Any, mobile: MobilePlatform, faults: FaultPlan) -> None:
        super().__init__()
        self.settings = settings
        self.mobile = mobile
        self.faults = faults
        private = settings.wx_platform_private_key_pem
        if not private:
            private, public = rsa_keypair_pem()
        else:
            key = serialization.load_pem_private_key(private.encode(), password=None)
            public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.private_pem, self.public_pem = private, public
        self._private = serialization.load_pem_private_key(private.encode(), password=None)
        self._merchant = (serialization.load_pem_public_key(settings.wx_merchant_public_key_pem.encode())
                          if settings.wx_merchant_public_key_pem else None)
        self.base_url = ""
        self.reset()

    def reset(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.authorizations: dict[str, str] = {}
        self.notifications: list[dict[str, Any]] = []

    # --- signatures ---------------------------------------------------------------------------------------------

    def _sign(self, message: str) -> str:
        assert isinstance(self._private, rsa.RSAPrivateKey)
        return base64.b64encode(self._private.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()

    def signed_headers(self, body: str) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        return {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": PLATFORM_SERIAL,
                "Wechatpay-Signature": self._sign(f"{timestamp}\n{nonce}\n{body}\n"),
                "Content-Type": "application/json"}

    def _check_authorization(self, method: str, path: str, headers: Any, body: str) -> None:
        if self._merchant is None:
            return
        value = headers.get("Authorization", "")
        if not value.startswith("WECHATPAY2-SHA256-RSA2048 "):
            raise _Refused(401, "SIGN_ERROR", "Authorization: WECHATPAY2-SHA256-RSA2048 expected")
        fields = dict(part.strip().split("=", 1) for part in value.split(" ", 1)[1].split(",") if "=" in part)
        fields = {k: v.strip('"') for k, v in fields.items()}
        message = f"{method}\n{path}\n{fields.get('timestamp')}\n{fields.get('nonce_str')}\n{body}\n"
        try:
            assert isinstance(self._merchant, rsa.RSAPublicKey)
            self._merchant.verify(base64.b64decode(fields.get("signature", "")), message.encode(), padding.PKCS1v15(),
                                  hashes.SHA256())
        except (InvalidSignature, ValueError, AssertionError):
            raise _Refused(401, "SIGN_ERROR", "签名错误: the request's signature does not verify") from None
        if not str(fields.get("timestamp", "")).isdigit() or abs(time.time() - int(fields["timestamp"])) > 300:
            raise _Refused(401, "SIGN_ERROR", "timestamp: more than 5 minutes away")

    # --- the API ---------------------------------------------------------------------------------------------------

    def handle(self, method: str, path_qs: str, headers: Any, body: str) -> tuple[int, Any]:
        """(HTTP status, JSON answer) of one request."""
        try:
            self._check_authorization(method, path_qs, headers, body)
            path, _, query = path_qs.partition("?")
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            with self.mobile.ledger.lock:
                if method == "POST" and path == "/v3/med-ins/orders":
                    return 200, self._order(json.loads(body, parse_float=Decimal))
                if method == "GET" and path.startswith("/v3/med-ins/orders/out-trade-no/"):
                    return 200, self._get(path.rsplit("/", 1)[1])
                if method == "POST" and path == "/v3/refund/domestic/refunds":
                    return 200, self._refund(json.loads(body, parse_float=Decimal))
                if method == "GET" and path.startswith("/v3/refund/domestic/refunds/"):
                    refund = self.refunds.get(path.rsplit("/", 1)[1])
                    if refund is None:
                        raise _Refused(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
                    return 200, refund
                if method == "GET" and path == "/v3/bill/tradebill":
                    day = params.get("bill_date", "")
                    return 200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(self.bill(day).encode()).hexdigest(),
                                 "download_url": f"{self.base_url}/v3/billdownload/file?bill_date={day}"}
                if method == "POST" and path == "/v3/med-ins/authorizations":
                    return 200, self._authorize(json.loads(body))
            raise _Refused(404, "NOT_FOUND", f"no such WeChat Pay API: {method} {path}")
        except _Refused as exc:
            return exc.status, {"code": exc.code, "message": exc.message}
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"code": "PARAM_ERROR", "message": f"参数错误: {type(exc).__name__}"}

    def _authorize(self, data: dict[str, Any]) -> dict[str, Any]:
        code = str(data.get("auth_code") or "")
        person = self.mobile.ledger.find_person(code.removeprefix("AUTH-")) if code else None
        if person is None:
            raise _Refused(400, "INVALID_REQUEST", "auth_code: not a valid authorisation (授权码无效)")
        pay_auth_no = self.authorizations.setdefault(code, "PAN" + hashlib.sha256(code.encode()).hexdigest()[:20])
        return {"pay_auth_no": pay_auth_no, "city_id": self.settings.admdvs,
                "user_card_digest": hashlib.md5(person.certno.encode()).hexdigest().upper()}

    def _order(self, data: dict[str, Any]) -> dict[str, Any]:
        out_trade_no = str(data["out_trade_no"])
        kind = str(data.get("mix_pay_type") or "")
        if kind not in ("CASH_ONLY", "INSURANCE_ONLY", "CASH_AND_INSURANCE"):
            raise _Refused(400, "PARAM_ERROR", "mix_pay_type: CASH_ONLY, INSURANCE_ONLY or CASH_AND_INSURANCE")
        fees = {k: int(data.get(k) or 0) for k in ("total_fee", "med_ins_gov_fee", "med_ins_self_fee",
                                                   "med_ins_other_fee", "med_ins_cash_fee", "wechat_pay_cash_fee")}
        known = self.orders.get(out_trade_no)
        if known is not None:
            if known["mix_pay_type"] == kind and known["fees"] == fees and known["serial_no"] == data.get("serial_no"):
                return self.view(known)
            raise _Refused(400, "INVALID_REQUEST", "out_trade_no: used by another order (商户订单号重复)")
        insurance = fees["med_ins_gov_fee"] + fees["med_ins_self_fee"] + fees["med_ins_other_fee"]
        if fees["total_fee"] != insurance + fees["med_ins_cash_fee"] + (
                fees["wechat_pay_cash_fee"] if kind == "CASH_ONLY" else 0):
            raise _Refused(400, "PARAM_ERROR", "total_fee: not the sum of the insurance and cash fees")
        if kind == "CASH_ONLY":
            if insurance or not fees["wechat_pay_cash_fee"]:
                raise _Refused(400, "PARAM_ERROR", "CASH_ONLY: no insurance fee, a cash fee")
        else:
            order = self.mobile.ledger.orders.get(str(data.get("pay_order_id") or ""))
            if order is None or order.status not in ("4",) or order.med_org_ord != data.get("serial_no"):
                raise _Refused(400, "INVALID_REQUEST", "pay_order_id/serial_no: no settled mobile-pay order with "
                                                       "this medOrgOrd")
            a = order.amounts
            if (fees["med_ins_gov_fee"], fees["med_ins_self_fee"], fees["med_ins_cash_fee"]) != (
                    _fen(a["fundPay"]), _fen(a["psnAcctPay"]), _fen(a["ownPayAmt"])):
                raise _Refused(400, "PARAM_ERROR", "med_ins_*_fee: not the mobile-pay order's split")
            if kind == "INSURANCE_ONLY" and fees["wechat_pay_cash_fee"]:
                raise _Refused(400, "PARAM_ERROR", "INSURANCE_ONLY: no cash fee")
            if kind == "CASH_AND_INSURANCE" and (not fees["wechat_pay_cash_fee"]
                                                 or fees["wechat_pay_cash_fee"] != fees["med_ins_cash_fee"]):
                raise _Refused(400, "PARAM_ERROR", "CASH_AND_INSURANCE: wechat_pay_cash_fee = med_ins_cash_fee > 0")
            order.wechat = {"out_trade_no": out_trade_no}
        now = clock.now()
        cash = fees["wechat_pay_cash_fee"]
        record = {"out_trade_no": out_trade_no, "mix_trade_no": "MIX" + secrets.token_hex(10), "mix_pay_type": kind,
                  "serial_no": data.get("serial_no"), "pay_order_id": data.get("pay_order_id"), "fees": fees,
                  "callback_url": data.get("callback_url") or "", "attach": data.get("attach"),
                  "created": now, "paid_time": None, "cash_refunded": 0,
                  "mix_pay_status": "MIX_PAY_CREATED" if cash else "MIX_PAY_SUCCESS",
                  "self_pay_status": "SELF_PAY_CREATED" if cash else "NO_SELF_PAY",
                  "med_ins_pay_status": "MED_INS_PAY_SUCCESS" if insurance or kind != "CASH_ONLY" else "NO_MED_INS_PAY"}
        if not cash:
            record["paid_time"] = now
        self.orders[out_trade_no] = record
        decision = self.faults.decide("wechat")
        if cash and not decision.abandon:
            self._later(self._pay(record, partial=decision.partial_notify))
        elif not cash:
            self._later(self._notify(record, partial=decision.partial_notify))
        return self.view(record)

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"mix_trade_no": record["mix_trade_no"], "mix_pay_status": record["mix_pay_status"],
                "self_pay_status": record["self_pay_status"], "med_ins_pay_status": record["med_ins_pay_status"],
                "mix_pay_type": record["mix_pay_type"], "out_trade_no": record["out_trade_no"],
                "serial_no": record["serial_no"], "pay_order_id": record["pay_order_id"],
                **record["fees"], "paid_time": clock.format_datetime(record["paid_time"]) if record["paid_time"] else "",
                "attach": record["attach"]}

    def _get(self, out_trade_no: str) -> dict[str, Any]:
        record = self.orders.get(out_trade_no)
        if record is None:
            raise _Refused(404, "ORDER_NOT_EXIST", "订单不存在")
        return self.view(record)

    def _refund(self, data: dict[str, Any]) -> dict[str, Any]:
        sn = str(data["out_refund_no"])
        record = self.orders.get(str(data.get("out_trade_no") or ""))
        if record is None:
            raise _Refused(404, "ORDER_NOT_EXIST", "订单不存在")
        amount = data.get("amount") or {}
        refund_fen = int(amount.get("refund") or 0)
        known = self.refunds.get(sn)
        if known is not None:
            if known["amount"]["refund"] == refund_fen:
                return known
            raise _Refused(400, "INVALID_REQUEST", "out_refund_no: used by another refund")
        cash = record["fees"]["wechat_pay_cash_fee"]
        if record["self_pay_status"] not in ("SELF_PAY_SUCCESS",) or refund_fen <= 0 or \
                refund_fen > cash - record["cash_refunded"]:
            raise _Refused(400, "INVALID_REQUEST", "amount.refund: more than the cash part left (退款金额超过可退金额)")
        record["cash_refunded"] += refund_fen
        if record["cash_refunded"] == cash:
            record["self_pay_status"] = "SELF_PAY_REFUND"
        refund = {"refund_id": "R" + secrets.token_hex(10), "out_refund_no": sn, "out_trade_no": record["out_trade_no"],
                  "status": "SUCCESS", "success_time": clock.format_datetime(clock.now()),
                  "amount": {"refund": refund_fen, "total": cash, "currency": "CNY"}}
        self.refunds[sn] = refund
        return refund

    def bill(self, day: str) -> str:
        """The day's trades (CSV): paid cash parts and refunds, as 下载账单 answers them. A refund's line names its
        order (商户订单号, the mixed order, its type and 医保订单号) and itself (商户退款单号 = out_refund_no); its
        现金金额 is the cash refunded."""
        lines = ["交易时间,商户订单号,医保自费混合订单号,类型,混合支付类型,现金金额(分),医保订单号,附加数据,商户退款单号"]
        for record in self.orders.values():
            paid = record["paid_time"]
            if paid is not None and clock.format_date(paid) == day:
                lines.append(f"{clock.format_datetime(paid)},{record['out_trade_no']},{record['mix_trade_no']},PAY,"
                             f"{record['mix_pay_type']},{record['fees']['wechat_pay_cash_fee']},"
                             f"{record['pay_order_id'] or ''},{record['attach'] or ''},")
        for refund in self.refunds.values():
            if refund["success_time"][:10] == day:
                order = self.orders.get(refund["out_trade_no"]) or {}
                lines.append(f"{refund['success_time']},{refund['out_trade_no']},{order.get('mix_trade_no') or ''},"
                             f"REFUND,{order.get('mix_pay_type') or ''},{refund['amount']['refund']},"
                             f"{order.get('pay_order_id') or ''},,{refund['out_refund_no']}")
        return "\n".join(lines) + "\n"

    # --- the patient pays, WeChat notifies -------------------------------------------------------------------------

    def _later(self, coro: Any) -> None:
        try:
            self._start(coro)
        except RuntimeError:  # no running loop: nobody to notify
            coro.close()

    async def _pay(self, record: dict[str, Any], *, partial: bool) -> None:
        await asyncio.sleep(self.settings.wx_autopay_s)
        with self.mobile.ledger.lock:
            record["paid_time"] = clock.now()
            record["mix_pay_status"], record["self_pay_status"] = "MIX_PAY_SUCCESS", "SELF_PAY_SUCCESS"
        await self._notify(record, partial=partial)

    def notification(self, record: dict[str, Any], *, partial: bool = False) -> tuple[str, dict[str, str]]:
        """The payment notification of an order as WeChat posts it: its body (the resource AES-GCM encrypted with
        the APIv3 key) and its signed headers."""
        resource = dict(self.view(record))
        if partial:
            resource.pop("mix_pay_status")
        nonce = secrets.token_hex(6)
        text = json.dumps(resource, ensure_ascii=False, default=str).encode()
        cipher = AESGCM(self.settings.wx_api_v3_key.encode()).encrypt(nonce.encode(), text, b"medical_insurance")
        body = json.dumps({"id": secrets.token_hex(12), "create_time": dt.datetime.now().astimezone().isoformat(),
                           "resource_type": "encrypt-resource", "event_type": "MEDICAL_INSURANCE.SUCCESS",
                           "summary": "医保自费混合收款成功", "resource": {
                               "algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(cipher).decode(),
                               "associated_data": "medical_insurance", "original_type": "mix_order",
                               "nonce": nonce}}, ensure_ascii=False)
        return body, self.signed_headers(body)

    async def _notify(self, record: dict[str, Any], *, partial: bool) -> None:
        url = record["callback_url"]
        if not url:
            return
        body, headers = self.notification(record, partial=partial)
        delay = self.settings.callback_retry_initial_s
        for attempt in range(1, self.settings.callback_max_attempts + 1):
            entry: dict[str, Any] = {"out_trade_no": record["out_trade_no"], "attempt": attempt, "partial": partial}
            try:
                r = await self._http.post(url, content=body.encode(), headers=headers)
                entry["http_status"] = r.status_code
                ok = r.status_code in (200, 204)
            except httpx.HTTPError as exc:
                entry["error"] = type(exc).__name__
                ok = False
            entry["acknowledged"] = ok
            self.notifications.append(entry)
            if ok:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.callback_retry_max_s)
