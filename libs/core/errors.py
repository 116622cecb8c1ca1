"""The documented exception hierarchy of yibao-bridge.

Every exception the project raises on purpose derives from :class:`YibaoError`, so a caller can always tell
"ours, with a reason" from "a bug". The tree (libraries add leaves under these branches)::

    YibaoError
    ├── ConfigurationError        settings or data files are wrong; fix the deployment, not the input
    ├── StackError                a local broker/database could not be started or reached
    ├── OutageError               the database or the broker is unreachable: wait for it; never the work's fault
    ├── PoisonOutputError         the broker refuses one output row for good (too large, invalid): park the row
    ├── InputError                bad input from outside (HIS events, files, requests); parked, never dropped
    │   ├── DecodeError           bytes that are not a change event we can read
    │   └── UnmappableEventError  a readable change event the HIS mapping cannot turn into a canonical event
    ├── PlatformError             talking to a 医保 platform (defined in yibao.envelope.errors)
    │   ├── EnvelopeValidationError   refused locally before sending; nothing was sent
    │   ├── BusinessRejection         the platform answered infcode -1 (err_msg kept)
    │   ├── TransportError            nothing reached the platform (safe to retry)
    │   └── UnknownOutcome            sent, but the answer never arrived or cannot be read: resolve by
    │                                 query or 冲正 (2601); never resend blindly
    ├── ChainError                a 医保 chain refused a request (wrong order, wrong state)
    └── ReconciliationError       a reconciliation run could not complete

Messages name what is wrong (field, rule, value kind) but never carry personal data or secrets.

What happens to work that failed is decided in one place, :mod:`yibao.core.failures`, which sorts any
exception (ours or a driver's) into bad input, poison output, transient or outage.
"""

from __future__ import annotations

__all__ = [
    "YibaoError",
    "ConfigurationError",
    "StackError",
    "OutageError",
    "PoisonOutputError",
    "InputError",
    "DecodeError",
    "UnmappableEventError",
    "PlatformError",
    "ChainError",
    "ReconciliationError",
]


class YibaoError(Exception):
    """Base of every deliberate error in yibao-bridge."""

    #: a short, stable machine-readable code (used in dead letters, metrics labels and HIS results)
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        return str(self)


class ConfigurationError(YibaoError):
    code = "configuration"


class StackError(YibaoError):
    code = "stack"


class OutageError(YibaoError):
    """A resource the work needs is unreachable (``resource``: ``database`` or ``broker``). Work that meets it
    waits until the resource is back; it spends no attempt and is never parked for it."""

    code = "outage"

    def __init__(self, message: str, *, resource: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.resource = resource


class PoisonOutputError(YibaoError):
    """The broker refuses one output message for good (too large, invalid record or topic): the row is parked
    with this reason and the rows behind it flow."""

    code = "poison_output"


class InputError(YibaoError):
    code = "bad_input"

    #: the key its dead letter goes out under when the raiser could read a better one than the message's own
    #: (ingest: the HIS visit id of an unmappable CDC row, instead of Debezium's key JSON)
    dlq_key: str | None = None


class DecodeError(InputError):
    code = "undecodable"


class UnmappableEventError(InputError):
    code = "unmappable"


class PlatformError(YibaoError):
    code = "platform"


class ChainError(YibaoError):
    code = "chain"


class ReconciliationError(YibaoError):
    code = "reconciliation"
