"""Failure classification (yibao.core.failures): one decision per failure, made in one place.

The exceptions are the drivers' own classes (psycopg, sqlite3, SQLAlchemy, aiokafka, faust), built the way the
drivers raise them; the real outages (a stopped PostgreSQL, a restarted broker) are in tests/integration.
"""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest
from aiokafka import errors as kafka_errors
from sqlalchemy import exc as sa_exc

from yibao.core.errors import DecodeError, InputError, OutageError, PoisonOutputError, YibaoError
from yibao.core.failures import BROKER, DATABASE, FailureKind, OutageWatch, classify


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    """How SQLAlchemy raises a driver error: its own class around the driver's, ``orig`` pointing at it."""
    return sa_exc.DBAPIError.instance("SELECT 1", {}, orig, psycopg.Error, connection_invalidated=invalidated)


# --- bad input --------------------------------------------------------------------------------------------------


def test_bad_input_is_parked_at_once_with_its_own_code() -> None:
    failure = classify(DecodeError("payload: not JSON"))
    assert failure.kind is FailureKind.BAD_INPUT and failure.code == "undecodable"
    assert "payload: not JSON" in failure.summary


def test_bad_input_raised_from_a_driver_error_is_still_bad_input() -> None:
    try:
        try:
            raise ValueError("x")
        except ValueError as inner:
            raise InputError("amount: not a decimal", code="bad_amount") from inner
    except InputError as exc:
        assert classify(exc).kind is FailureKind.BAD_INPUT


# --- outages of the database ----------------------------------------------------------------------------------


@pytest.mark.parametrize("orig", [
    psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", port 5432 failed: '
                             "Connection refused"),
    psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.errors.CrashShutdown("terminating connection because of crash of another server process"),
    psycopg.errors.CannotConnectNow("the database system is starting up"),
    psycopg.errors.TooManyConnections("sorry, too many clients already"),
    psycopg.errors.ConnectionFailure("connection failure"),
    psycopg.errors.DiskFull("could not extend file"),
    psycopg.InterfaceError("the connection is closed"),
], ids=lambda e: type(e).__name__)
def test_a_database_that_cannot_be_reached_is_an_outage(orig: BaseException) -> None:
    for exc in (orig, _wrapped(orig)):
        failure = classify(exc)
        assert failure.kind is FailureKind.OUTAGE and failure.resource == DATABASE, exc


def test_a_connection_sqlalchemy_found_dead_is_an_outage() -> None:
    exc = _wrapped(psycopg.errors.QueryCanceled("whatever"), invalidated=True)
    assert classify(exc).kind is FailureKind.OUTAGE


def test_a_pool_that_gives_no_connection_in_time_is_an_outage() -> None:
    exc = sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00")
    assert classify(exc).resource == DATABASE


def test_sqlite_that_cannot_open_its_file_is_an_outage_but_a_busy_sqlite_is_transient() -> None:
    assert classify(sqlite3.OperationalError("unable to open database file")).kind is FailureKind.OUTAGE
    assert classify(sqlite3.OperationalError("database is locked")).kind is FailureKind.TRANSIENT


@pytest.mark.parametrize("orig", [
    psycopg.errors.DeadlockDetected("deadlock detected"),
    psycopg.errors.SerializationFailure("could not serialize access"),
    psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
    psycopg.errors.UniqueViolation("duplicate key value violates unique constraint"),
], ids=lambda e: type(e).__name__)
def test_a_statement_the_database_refuses_is_transient_not_an_outage(orig: BaseException) -> None:
    failure = classify(_wrapped(orig))
    assert failure.kind is FailureKind.TRANSIENT and failure.code == "exhausted"


# --- the broker -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [
    kafka_errors.KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]"),
    kafka_errors.NodeNotReadyError("node 1 not ready"),
    kafka_errors.RequestTimedOutError(),
    kafka_errors.KafkaTimeoutError(),
    kafka_errors.NotLeaderForPartitionError(),
    kafka_errors.UnknownTopicOrPartitionError(),
    kafka_errors.TopicAuthorizationFailedError(),
    kafka_errors.ProducerClosed(),
], ids=lambda e: type(e).__name__)
def test_a_broker_that_cannot_take_a_message_now_is_an_outage(exc: BaseException) -> None:
    failure = classify(exc)
    assert failure.kind is FailureKind.OUTAGE and failure.resource == BROKER


@pytest.mark.parametrize("exc, code", [
    (kafka_errors.MessageSizeTooLargeError("The message is 1600000 bytes when serialized"), "message_too_large"),
    (kafka_errors.RecordListTooLargeError(), "message_too_large"),
    (kafka_errors.InvalidTopicError(), "refused_by_broker"),
    (kafka_errors.CorruptRecordException(), "refused_by_broker"),
    (PoisonOutputError("headers: not JSON"), "poison_output"),
], ids=lambda e: type(e).__name__ if isinstance(e, BaseException) else e)
def test_a_record_the_broker_refuses_for_good_is_poison(exc: BaseException, code: str) -> None:
    failure = classify(exc)
    assert failure.kind is FailureKind.POISON and failure.code == code


def test_a_kafka_error_wrapped_by_faust_is_classified_by_its_cause() -> None:
    from faust.exceptions import ProducerSendError

    try:
        try:
            raise kafka_errors.MessageSizeTooLargeError("too large")
        except kafka_errors.KafkaError as exc:
            raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    except ProducerSendError as wrapped:
        assert classify(wrapped).kind is FailureKind.POISON


# --- the rest ---------------------------------------------------------------------------------------------------


def test_an_explicit_outage_names_its_resource() -> None:
    failure = classify(OutageError("broker: no answer in 30s", resource=BROKER))
    assert failure.kind is FailureKind.OUTAGE and failure.resource == BROKER


def test_anything_else_is_transient_and_keeps_a_yibao_code() -> None:
    assert classify(RuntimeError("bug")).kind is FailureKind.TRANSIENT
    assert classify(YibaoError("x", code="chain")).code == "chain"


def test_an_implicit_context_does_not_make_an_outage() -> None:
    """A bug raised while handling a database error is a bug, not an outage."""
    try:
        try:
            raise psycopg.OperationalError("connection refused")
        except psycopg.OperationalError:
            raise KeyError("bug in the handler")
    except KeyError as exc:
        assert classify(exc).kind is FailureKind.TRANSIENT


def test_the_summary_is_masked() -> None:
    exc = psycopg.OperationalError("connection to postgresql://yibao:hunter2@db/yibao failed for certno "
                                   "110105194912310021")
    summary = classify(exc).summary
    assert "hunter2" not in summary and "110105194912310021" not in summary


# --- waiting ----------------------------------------------------------------------------------------------------


async def test_an_outage_is_waited_out_with_a_capped_backoff_and_reported_until_it_is_over(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    watch = OutageWatch("test", backoff_s=0.5, backoff_max_s=4)
    failure = classify(psycopg.OperationalError("connection refused"))
    for _ in range(6):
        await watch.wait("consumer", failure)
    assert slept == [0.5, 1, 2, 4, 4, 4]
    [problem] = watch.problems()
    assert problem.startswith("database unreachable since ") and "consumer waiting, 6 tries" in problem
    watch.recovered("consumer")
    assert watch.problems() == [] and not watch.waiting()
