"""The adapters of the other targets — each the shared envelope (:mod:`.http`) with its own authentication
(configuration; targets.yaml ``auth``):

* :class:`HmacAdapter` (自费 platform) — ``X-App-Id``, ``X-Timestamp``, ``X-Nonce``, ``X-Signature`` = hex
  HMAC-SHA256(secret, app_id + timestamp + nonce + hex SHA-256 of the body);
* :class:`TokenAdapter` (一码通 身份令牌) — ``POST <url>/auth/token`` with ``data: {app_id, app_secret}`` (the
  shared envelope) → ``{token, expires_in}``,
  then ``Authorization: Bearer <token>``; renewed before it expires and after a 401;
* :class:`RegisterAdapter` (DRG 机构认证注册) — ``POST <url>/org/register`` with ``data: {org_code, app_key,
  app_secret}`` →
  ``{org_token}`` (registering again answers the same token), then ``X-Org-Token``; registered again after a 401;
* :class:`BearerAdapter` (疫情, 流感/发热) — a fixed bearer token.

Secrets come from the settings (SecretStr, secret files): never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from typing import Any

from yibao.envelope.errors import BusinessRejection
from yibao.envelope.national import jsontext
from yibao.upload_scheduler.targets.http import TargetAdapter

__all__ = ["HmacAdapter", "TokenAdapter", "RegisterAdapter", "BearerAdapter"]


class HmacAdapter(TargetAdapter):
    def __init__(self, *args: Any, app_id: str, secret: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.app_id, self._secret = app_id, secret

    async def headers(self, body: bytes) -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(8)
        text = self.app_id + ts + nonce + hashlib.sha256(body).hexdigest()
        sig = hmac.new(self._secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        return {"X-App-Id": self.app_id, "X-Timestamp": ts, "X-Nonce": nonce, "X-Signature": sig}


class _Credential(TargetAdapter):
    """A credential fetched from the target and kept until it expires (or the target refuses it)."""

    endpoint = ""
    header = "Authorization"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._value: str | None = None
        self._until = 0.0
        self._lock = asyncio.Lock()

    def _request(self) -> dict[str, Any]:
        raise NotImplementedError

    def _read(self, data: dict[str, Any]) -> tuple[str, float]:
        raise NotImplementedError

    async def _fetch(self) -> None:
        body = jsontext.dumps_bytes({"request_id": None, "org_code": self.org_code, "data": self._request()})
        reply = await self._http.post(self.url + self.endpoint, content=body,
                                      headers={"Content-Type": "application/json;charset=UTF-8"})
        try:
            answer = jsontext.loads(reply.content)
        except (ValueError, UnicodeDecodeError):
            answer = None
        if reply.status_code != 200 or not isinstance(answer, dict) or str(answer.get("code")) != "0":
            message = answer.get("message") if isinstance(answer, dict) else f"HTTP {reply.status_code}"
            raise BusinessRejection(self.endpoint, f"{self.platform}: credentials refused: {message}", infcode="401")
        value, ttl = self._read(answer.get("data") or {})
        self._value, self._until = value, time.monotonic() + max(30.0, ttl - 60.0)

    async def _current(self) -> str:
        async with self._lock:
            if self._value is None or time.monotonic() >= self._until:
                await self._fetch()
            assert self._value is not None
            return self._value

    async def renew(self) -> None:
        async with self._lock:
            self._value = None

    def _format(self, value: str) -> str:
        return value

    async def headers(self, body: bytes) -> dict[str, str]:
        return {self.header: self._format(await self._current())}


class TokenAdapter(_Credential):
    endpoint = "/auth/token"

    def __init__(self, *args: Any, app_id: str, secret: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.app_id, self._secret = app_id, secret

    def _request(self) -> dict[str, Any]:
        return {"app_id": self.app_id, "app_secret": self._secret}

    def _read(self, data: dict[str, Any]) -> tuple[str, float]:
        return str(data.get("token") or ""), float(data.get("expires_in") or 3600)

    def _format(self, value: str) -> str:
        return f"Bearer {value}"


class RegisterAdapter(_Credential):
    endpoint = "/org/register"
    header = "X-Org-Token"

    def __init__(self, *args: Any, app_key: str, secret: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.app_key, self._secret = app_key, secret

    def _request(self) -> dict[str, Any]:
        return {"org_code": self.org_code, "app_key": self.app_key, "app_secret": self._secret}

    def _read(self, data: dict[str, Any]) -> tuple[str, float]:
        return str(data.get("org_token") or ""), float(data.get("expires_in") or 86400)


class BearerAdapter(TargetAdapter):
    def __init__(self, *args: Any, token: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._token = token

    async def headers(self, body: bytes) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}
