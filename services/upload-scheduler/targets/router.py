"""The client the chain engine holds (a :class:`~yibao.chains.ports.PlatformClient`): each call goes to the
platform its transaction belongs to — national infnos to the national client, a target's (``ZF.*``, ``YMT.*``,
``DRG.*``, ``YQ.*``, ``FLU.*``, ``FEVER.*``) to that target's adapter. msgids come from the national allocator
(unique by construction: the institution code, the second, a per-second sequence) and serve as every target's
request id."""

from __future__ import annotations


import logging
from collections.abc import Mapping
from typing import Any

from yibao.envelope.errors import EnvelopeValidationError
from yibao.upload_scheduler.targets.adapters import BearerAdapter, HmacAdapter, RegisterAdapter, TokenAdapter
from yibao.upload_scheduler.targets.catalog import load_targets, target_of
from yibao.upload_scheduler.targets.http import TargetAdapter

__all__ = ["RoutingClient", "build_client", "build_adapters"]

log = logging.getLogger(__name__)


class RoutingClient:
    platform = "national"

    def __init__(self, national: Any, adapters: Mapping[str, TargetAdapter]) -> None:
        self.national = national
        self.adapters = dict(adapters)

    async def allocate_msgid(self) -> str:
        return await self.national.allocate_msgid()

    def _for(self, infno: str) -> Any:
        target = target_of(infno)
        if target == "national":
            return self.national
        adapter = self.adapters.get(target)
        if adapter is None:
            raise EnvelopeValidationError(infno, "", "target not enabled",
                                          f"{target} is not in YIBAO_UPLOAD_SCHEDULER_TARGETS_ENABLED")
        return adapter

    async def call(self, infno: str, input: Mapping[str, Any], **kw: Any) -> Any:  # noqa: A002
        return await self._for(infno).call(infno, input, **kw)

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, **kw: Any) -> Any:
        return await self.national.reverse(psn_no, omsgid, oinfno, **kw)

    async def download(self, file_qury_no: str, filename: str, **kw: Any) -> bytes:
        return await self.national.download(file_qury_no, filename, **kw)

    def __getattr__(self, name: str) -> Any:  # download_to, sign_in … of the national client when it has them
        return getattr(self.national, name)

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            try:
                await adapter.aclose()
            except Exception:
                log.warning("closing a target adapter failed", extra={"fields": {"target": adapter.platform}})
        close = getattr(self.national, "aclose", None)
        if close is not None:
            await close()


def build_adapters(settings: Any, catalog: Any, org_code: str, *, http: Any = None) -> dict[str, TargetAdapter]:
    """The adapters of the enabled targets, from the settings (urls, credentials) and targets.yaml."""
    specs = load_targets(getattr(settings, "targets_file", None))
    enabled = set(settings.targets_enabled) - {"national"}
    out: dict[str, TargetAdapter] = {}
    common = {"org_code": org_code, "catalog": catalog, "timeout_s": settings.target_timeout_s, "http": http}
    for name in sorted(enabled):
        spec = specs[name]
        url = getattr(settings, f"{name}_url")
        if spec.auth == "hmac":
            out[name] = HmacAdapter(name, spec, url=url, app_id=settings.zifei_app_id,
                                    secret=settings.zifei_app_secret.get_secret_value(), **common)
        elif spec.auth == "token":
            out[name] = TokenAdapter(name, spec, url=url, app_id=settings.yimatong_app_id,
                                     secret=settings.yimatong_app_secret.get_secret_value(), **common)
        elif spec.auth == "register":
            out[name] = RegisterAdapter(name, spec, url=url, app_key=settings.drg_app_key,
                                        secret=settings.drg_app_secret.get_secret_value(), **common)
        else:
            token = getattr(settings, f"{name}_token").get_secret_value()
            out[name] = BearerAdapter(name, spec, url=url, token=token, **common)
    return out


def build_client(runtime: Any, settings: Any, platform: Any, catalog: Any) -> RoutingClient:
    from yibao.envelope.client import NationalClient

    national = NationalClient(platform, engine=runtime.engine, service=runtime.name, catalog=catalog)
    return RoutingClient(national, build_adapters(settings, catalog, platform.fixmedins_code))


