"""Who may call the channel API: the hospital's channels, each with a token, a kind, an order version and rights.

A secret YAML/JSON file (``YIBAO_MOBILEPAY_CHANNELS_FILE``, mounted from a Kubernetes Secret) lists them::

    channels:
      - {channel: wechat-oa,  kind: wechat, version: "2.0", rights: [read, pay, refund, identity],
         token_sha256: "<sha256 hex of its token>"}
      - {channel: app-legacy, kind: app,    version: "1.0", rights: [read, pay], token: "<32+ characters>"}
      - {channel: his-window, kind: window, version: "2.0", rights: [read, refund, identity], token_sha256: "…"}

A request carries ``Authorization: Bearer <token>``; the token names the channel (compared in constant time, never
logged). The channel is the actor of every audit row, with the ``operator`` the request names (a cashier at the
window); its rights decide what it may do: ``read`` (pending fees, its orders), ``pay`` (orders, confirm, withdraw),
``refund``, ``identity`` (settlement types, 医保区划). ``version`` makes every order of the channel a 1.0 or a 2.0
order (1.0 and 2.0 side by side, per channel); ``kind`` ``wechat`` makes the cash part go through WeChat Pay.
The file is read again when it changes, so adding a channel needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from yibao.core.errors import ConfigurationError

__all__ = ["Channel", "Channels", "RIGHTS", "ChannelEntry"]

RIGHTS = ("read", "pay", "refund", "identity")
Kind = Literal["wechat", "app", "mini", "kiosk", "window", "finance", "other"]


class ChannelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Kind = "app"
    version: Literal["2.0", "1.0"] = "2.0"
    rights: list[Literal["read", "pay", "refund", "identity"]] = Field(default_factory=lambda: ["read", "pay"])
    token: str | None = Field(None, min_length=16, repr=False)
    token_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _one_token(self) -> "ChannelEntry":
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of token or token_sha256")
        return self

    def digest(self) -> str:
        return (self.token_sha256 or hashlib.sha256((self.token or "").encode()).hexdigest()).lower()


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[ChannelEntry]


@dataclass(frozen=True)
class Channel:
    """An authenticated channel."""

    name: str
    kind: str
    version: str
    rights: frozenset[str]

    def may(self, right: str) -> bool:
        return right in self.rights


class Channels:
    """The channels file, read again when it changes. With no file, nobody is let in."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._by_digest: dict[str, Channel] = {}
        if path is not None:
            self._reload()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def _reload(self) -> None:
        assert self.path is not None
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            raise ConfigurationError(f"channels file {self.path}: cannot be read ({exc.strerror})") from None
        if mtime == self._mtime:
            return
        text = self.path.read_text(encoding="utf-8")
        try:
            raw = json.loads(text) if self.path.suffix == ".json" else yaml.safe_load(text)
            parsed = _File.model_validate(raw)
        except (ValueError, yaml.YAMLError, ValidationError) as exc:
            what = exc.errors(include_input=False)[0]["loc"] if isinstance(exc, ValidationError) else type(exc).__name__
            raise ConfigurationError(f"channels file {self.path}: not a valid channels file ({what})") from None
        names = [c.channel for c in parsed.channels]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"channels file {self.path}: a channel is listed twice")
        self._by_digest = {c.digest(): Channel(c.channel, c.kind, c.version, frozenset(c.rights))
                           for c in parsed.channels}
        self._mtime = mtime

    def authenticate(self, token: str | None) -> Channel | None:
        """The channel a bearer token names, or None."""
        if self.path is None or not token:
            return None
        with self._lock:
            try:
                self._reload()
            except ConfigurationError:
                pass  # keep the channels read last; the worker said so at start
            digest = hashlib.sha256(token.encode()).hexdigest()
            found = None
            for known, channel in self._by_digest.items():
                if hmac.compare_digest(known, digest):
                    found = channel
            return found
