"""The chain's configuration, resolved once from the settings (so decisions never read the environment)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from yibao.envelope.mobilepay.settings import DEFAULT_ORD_STAS

__all__ = ["ChainConfig"]


@dataclass(frozen=True)
class ChainConfig:
    org_codg: str = "H44010600001"
    order_ttl: _dt.timedelta = _dt.timedelta(seconds=900)
    registration_wait: _dt.timedelta = _dt.timedelta(seconds=300)
    callback_wait: _dt.timedelta = _dt.timedelta(seconds=30)
    confirm_poll: _dt.timedelta = _dt.timedelta(seconds=5)
    confirm_max_polls: int = 20
    wechat_enabled: bool = False
    wechat_cash_wait: _dt.timedelta = _dt.timedelta(seconds=900)
    wechat_appid: str = ""
    wechat_city_id: str = ""
    wechat_med_inst_no: str = ""
    wechat_med_inst_name: str = ""
    wechat_order_type: str = "DIAG_PAY"
    wechat_notify_url: str = ""
    #: ordStas → uploaded | paying | settled | refunded | revoked | failed (MobilePaySettings.ord_stas)
    ord_stas: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ORD_STAS))

    def meaning(self, ord_stas: object) -> str | None:
        return self.ord_stas.get(str(ord_stas).strip()) if ord_stas not in (None, "") else None

    @classmethod
    def from_settings(cls, settings: object, platform: object, wechat: object = None) -> ChainConfig:
        """From a :class:`~yibao.mobilepay.settings.MobilepaySettings`, the client's
        :class:`~yibao.envelope.mobilepay.settings.MobilePaySettings` and (WeChat channels)
        :class:`~yibao.envelope.mobilepay.wechat.WeChatSettings`."""
        seconds = lambda name: _dt.timedelta(seconds=float(getattr(settings, name)))  # noqa: E731
        wx = {} if wechat is None else {
            "wechat_appid": str(getattr(wechat, "appid")), "wechat_city_id": str(getattr(wechat, "city_id")),
            "wechat_med_inst_no": str(getattr(wechat, "med_inst_no")),
            "wechat_med_inst_name": str(getattr(wechat, "med_inst_name")),
            "wechat_order_type": str(getattr(wechat, "order_type")),
            "wechat_notify_url": str(getattr(wechat, "notify_url"))}
        return cls(**wx, org_codg=str(getattr(platform, "org_codg")), order_ttl=seconds("order_ttl_s"),
                   registration_wait=seconds("registration_wait_s"), callback_wait=seconds("callback_wait_s"),
                   confirm_poll=seconds("confirm_poll_s"), confirm_max_polls=int(getattr(settings, "confirm_max_polls")),
                   wechat_enabled=bool(getattr(settings, "wechat_enabled")),
                   wechat_cash_wait=seconds("wechat_cash_wait_s"), ord_stas=dict(getattr(platform, "ord_stas")))
