"""What happens to work that failed: the one place where failures are classified.

Every exception that stops a unit of work — ours, a database driver's, Kafka's — is sorted into one of four
kinds by :func:`classify`; the runtime (:meth:`yibao.core.runtime.ServiceRuntime.process`), the outbox relay
and the parking of dead letters act on the kind, never on exception types of their own:

================  =========================================================  ====================================
kind              what it is                                                 what happens
================  =========================================================  ====================================
``bad_input``     :class:`~yibao.core.errors.InputError` and its subclasses  parked at once (retrying cannot fix
                  (undecodable bytes, an unmappable change, a field          it); the reason names the field
                  breaking a rule)
``poison``        the broker refuses one output record for good:             the outbox row is parked with its
                  :class:`~yibao.core.errors.PoisonOutputError`, Kafka's     payload and never tried again; the
                  MessageSizeTooLarge, RecordTooLarge, RecordListTooLarge,   rows behind it flow
                  InvalidTopic, CorruptRecord … — every non-retriable
                  produce error except those about the connection, the
                  credentials or the producer itself (those are outages)
``outage``        the database or the broker is unreachable:                 the work waits (capped backoff),
                  :class:`~yibao.core.errors.OutageError`; connection        readiness says why, nothing is
                  refused/reset/closed, PostgreSQL SQLSTATE class 08,        parked, no attempt is spent; it
                  57P01-57P03 (admin/crash shutdown, cannot connect now),    resumes by itself when the resource
                  53xxx (too many connections, disk or memory full), 58xxx,  is back
                  a connection SQLAlchemy found dead, the pool timing out;
                  SQLite unable to open its file; retriable Kafka errors,
                  Kafka timeouts, no broker available, authorization
                  refused
``transient``     anything else (a deadlock, a serialization failure, a      retried with exponential backoff;
                  lock timeout, a bug)                                       parked as ``exhausted`` (or with the
                                                                             error's own code) when the attempts
                                                                             run out
================  =========================================================  ====================================

The cause chain is followed (``raise … from``, SQLAlchemy's ``.orig``), so a driver error wrapped by SQLAlchemy
or faust is classified by what it really is. Implicit exception context (an error raised while handling
another) is not followed: it says nothing about the error that escaped.

:class:`OutageWatch` keeps what a worker is waiting for, for ``/readyz`` and the ``yibao_outage`` metric, and
gives the capped backoff of the waits.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import enum
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

from yibao.core import clock
from yibao.core.errors import InputError, OutageError, PoisonOutputError, YibaoError

__all__ = ["FailureKind", "Failure", "classify", "describe", "OutageWatch", "DATABASE", "BROKER"]

log = logging.getLogger(__name__)

DATABASE = "database"
BROKER = "broker"


class FailureKind(str, enum.Enum):
    BAD_INPUT = "bad_input"
    POISON = "poison"
    TRANSIENT = "transient"
    OUTAGE = "outage"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    #: the reason code a parked message gets (``yibao_dead_letters_total{reason_code}``)
    code: str
    #: ``database`` or ``broker`` for an outage, else None
    resource: str | None
    #: the error in one masked line: its type and the first line of its text
    summary: str


def describe(exc: BaseException, *, limit: int = 300) -> str:
    """``Type: first line of the text``, masked (personal data and secrets), at most ``limit`` characters."""
    from yibao.core.privacy import mask_text

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return mask_text(line)[:limit]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what it was raised from (``__cause__``, SQLAlchemy's ``orig``), without cycles."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


# --- the database ---------------------------------------------------------------------------------------------

#: PostgreSQL SQLSTATEs (and classes) meaning the server, not the statement, is the problem
_PG_OUTAGE_STATES = ("57P01", "57P02", "57P03", "57P04", "57P05")
_PG_OUTAGE_CLASSES = ("08", "53", "58")
_SQLITE_OUTAGE_TEXT = ("unable to open database file", "disk i/o error", "database or disk is full",
                       "database disk image is malformed", "readonly database")


def _database_outage(exc: BaseException) -> bool:
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        sa_exc = None
    if sa_exc is not None:
        if isinstance(exc, sa_exc.TimeoutError):  # the pool had no connection to give within pool_timeout
            return True
        if isinstance(exc, sa_exc.DisconnectionError):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        psycopg = None
    if psycopg is not None and isinstance(exc, psycopg.Error):
        if isinstance(exc, psycopg.InterfaceError):  # "the connection is closed", "connection lost"
            return True
        state = getattr(exc, "sqlstate", None)
        if state is None:
            # no SQLSTATE: the failure happened on the connection itself (refused, reset, server gone)
            return isinstance(exc, psycopg.OperationalError)
        return state in _PG_OUTAGE_STATES or state[:2] in _PG_OUTAGE_CLASSES
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(marker in text for marker in _SQLITE_OUTAGE_TEXT)
    return False


# --- the broker -----------------------------------------------------------------------------------------------

def _kafka_kind(exc: BaseException) -> FailureKind | None:
    try:
        from aiokafka import errors as ke
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, ke.KafkaError):
        return None
    if getattr(exc, "retriable", False):
        return FailureKind.OUTAGE
    about_the_connection = (
        ke.KafkaTimeoutError, ke.KafkaUnavailableError, ke.BrokerNotAvailableError, ke.ReplicaNotAvailableError,
        ke.ProducerClosed, ke.ProducerFenced, ke.IllegalStateError, ke.KafkaConfigurationError,
        ke.AuthenticationFailedError, ke.AuthenticationMethodNotSupported, ke.SaslAuthenticationFailed,
        ke.IllegalSaslStateError, ke.UnsupportedSaslMechanismError, ke.TopicAuthorizationFailedError,
        ke.ClusterAuthorizationFailedError, ke.TransactionalIdAuthorizationFailed, ke.IncompatibleBrokerVersion,
        ke.UnsupportedVersionError, ke.UnrecognizedBrokerVersion, ke.QuotaViolationError,
        ke.InvalidProducerEpoch, ke.UnknownProducerId, ke.OutOfOrderSequenceNumber, ke.DuplicateSequenceNumber,
        ke.InvalidTxnState, ke.ConcurrentTransactions, ke.TransactionCoordinatorFenced,
    )
    if isinstance(exc, about_the_connection):
        return FailureKind.OUTAGE
    return FailureKind.POISON


def _poison_code(exc: BaseException) -> str:
    name = type(exc).__name__
    if name in ("MessageSizeTooLargeError", "RecordTooLargeError", "RecordListTooLargeError"):
        return "message_too_large"
    return "refused_by_broker"


# --- the one decision -----------------------------------------------------------------------------------------

def classify(exc: BaseException) -> Failure:
    """The kind of a failure, its reason code and, for an outage, the resource that is away."""
    for link in _chain(exc):
        if isinstance(link, OutageError):
            return Failure(FailureKind.OUTAGE, link.code, link.resource, describe(link))
        if isinstance(link, PoisonOutputError):
            return Failure(FailureKind.POISON, link.code, None, describe(link))
        if isinstance(link, InputError):
            return Failure(FailureKind.BAD_INPUT, link.code, None, describe(link))
        if _database_outage(link):
            return Failure(FailureKind.OUTAGE, "database_unreachable", DATABASE, describe(link))
        kafka = _kafka_kind(link)
        if kafka is FailureKind.OUTAGE:
            return Failure(kafka, "broker_unreachable", BROKER, describe(link))
        if kafka is FailureKind.POISON:
            return Failure(kafka, _poison_code(link), None, describe(link))
    code = exc.code if isinstance(exc, YibaoError) else "exhausted"
    return Failure(FailureKind.TRANSIENT, code, None, describe(exc))


# --- waiting out an outage ------------------------------------------------------------------------------------

@dataclass
class _Waiting:
    resource: str
    since: _dt.datetime
    summary: str
    waits: int = 0


@dataclass
class OutageWatch:
    """What a worker is waiting for, and how long to wait before looking again.

    Each waiter (``consumer``, ``relay``, ``park`` …) reports the outage it meets with :meth:`wait` and clears it
    with :meth:`recovered` once its work went through. :meth:`problems` lists them for ``/readyz``.
    """

    service: str
    backoff_s: float = 0.5
    backoff_max_s: float = 10.0
    _waiting: dict[str, _Waiting] = field(default_factory=dict)

    async def wait(self, waiter: str, failure: Failure) -> None:
        """Record that ``waiter`` met ``failure`` (an outage) and sleep the next capped backoff."""
        from yibao.core import metrics

        resource = failure.resource or "unknown"
        entry = self._waiting.get(waiter)
        if entry is None or entry.resource != resource:
            entry = self._waiting[waiter] = _Waiting(resource, clock.now(), failure.summary)
            metrics.OUTAGES.labels(self.service, resource).inc()
            log.error("resource unreachable; waiting for it (nothing is parked, no attempt is spent)",
                      extra={"fields": {"service": self.service, "waiter": waiter, "resource": resource,
                                        "error": failure.summary}})
        entry.summary = failure.summary
        entry.waits += 1
        self._set_gauges()
        delay = min(self.backoff_max_s, self.backoff_s * 2 ** min(entry.waits - 1, 30))
        await asyncio.sleep(delay)

    def recovered(self, waiter: str) -> None:
        entry = self._waiting.pop(waiter, None)
        if entry is not None:
            seconds = (clock.now() - entry.since).total_seconds()
            log.warning("resource back; work resumed", extra={"fields": {
                "service": self.service, "waiter": waiter, "resource": entry.resource,
                "waited_s": round(seconds, 1), "waits": entry.waits}})
            self._set_gauges()

    def waiting(self, resource: str | None = None) -> bool:
        return any(resource is None or e.resource == resource for e in self._waiting.values())

    def problems(self) -> list[str]:
        return [f"{e.resource} unreachable since {e.since.isoformat(timespec='seconds')} ({waiter} waiting, "
                f"{e.waits} tries): {e.summary}" for waiter, e in sorted(self._waiting.items())]

    def _set_gauges(self) -> None:
        from yibao.core import metrics

        for resource in (DATABASE, BROKER):
            metrics.OUTAGE.labels(self.service, resource).set(1 if self.waiting(resource) else 0)
