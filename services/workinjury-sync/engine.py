"""The chain engine as this service runs it: :class:`~yibao.chains.engine.ChainEngine`, with the lost call's serial
put into its GYD053 lookup.

The work-injury platform recovers a lost answer by the serial (transNo) of the lost call (GYD053 通用交易查询), and
that serial is the engine's — journalled before the call was sent — not the chain's: a decision cannot know it. A
step's :class:`~yibao.chains.model.Lookup` therefore names it with the placeholder
:data:`~yibao.workinjury_sync.steps.common.LOST_SERIAL`, and this engine replaces the placeholder with the journalled
serial when it journals the lookup. Nothing else differs. (Proposed for yibao.chains itself: ``Lookup.input`` built
from the lost msgid; this subclass goes once the engine does it.)
"""

from __future__ import annotations

from typing import Any

from yibao.chains.engine import ChainEngine
from yibao.workinjury_sync.steps.common import LOST_SERIAL

__all__ = ["WorkInjuryEngine", "bind_lost_serial"]


def bind_lost_serial(body: Any, serial: str) -> Any:
    """``body`` with every :data:`LOST_SERIAL` replaced by ``serial``."""
    if isinstance(body, dict):
        return {k: bind_lost_serial(v, serial) for k, v in body.items()}
    if isinstance(body, list):
        return [bind_lost_serial(v, serial) for v in body]
    return serial if body == LOST_SERIAL else body


class WorkInjuryEngine(ChainEngine[Any]):
    def _journal(self, u: Any, purpose: Any, call: Any, infno: str, body: dict[str, Any], msgid: str, *,
                 pending: Any = None) -> None:
        if purpose == "query" and pending is not None and pending.msgid:
            body = bind_lost_serial(body, pending.msgid)
        super()._journal(u, purpose, call, infno, body, msgid, pending=pending)
