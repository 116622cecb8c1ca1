"""The engine's ports: what it needs from a platform client and where the client puts its call records.

:class:`~yibao.envelope.client.NationalClient` is the production adapter; tests pass stand-ins with the same
shape (the simulator in-process, scripted fakes). The engine never imports a client class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from yibao.envelope.calllog import CallRecord

__all__ = ["PlatformReply", "PlatformClient", "CallLogSink", "CallLogBuffer"]


class PlatformReply(Protocol):
    @property
    def output(self) -> Any: ...


class CallLogSink(Protocol):
    """Takes the call-log record of every attempt a client makes (instead of the client writing it itself), so
    the engine writes it in the transaction that records the call's outcome."""

    def add(self, record: CallRecord, *, input_obj: Any = None, output_obj: Any = None) -> None: ...


class CallLogBuffer:
    """A :class:`CallLogSink` keeping the records in memory until the engine's transaction writes them."""

    def __init__(self) -> None:
        self.records: list[tuple[CallRecord, Any, Any]] = []

    def add(self, record: CallRecord, *, input_obj: Any = None, output_obj: Any = None) -> None:
        self.records.append((record, input_obj, output_obj))


@runtime_checkable
class PlatformClient(Protocol):
    """What the engine calls. Raises the envelope's outcome exceptions: BusinessRejection (the platform refused),
    EnvelopeValidationError (nothing sent: the input broke a catalog rule), UnknownOutcome (the answer was lost),
    anything else (nothing reached the platform)."""

    async def allocate_msgid(self) -> str: ...

    async def call(self, infno: str, input: Mapping[str, Any], *,  # noqa: A002 - the spec's name
                   visit_key: str | None = None, msgid: str | None = None, insuplc_admdvs: str | None = None,
                   read_timeout_s: float | None = None, call_log: CallLogSink | None = None) -> PlatformReply: ...

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, *, insuplc_admdvs: str | None = None,
                      visit_key: str | None = None, msgid: str | None = None,
                      call_log: CallLogSink | None = None) -> PlatformReply: ...
