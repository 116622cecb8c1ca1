"""A broker that wants its clients to authenticate (SASL SCRAM-SHA-512, as the Strimzi KafkaUser of each service
is): the workers and the command line connect as the service's user, a wrong password is refused with an error
that names the user and the mechanism but never the password, and settings that ask for SASL without a user are
refused before anything starts.

The broker is the test's own (a second listener with SCRAM users), never the session's."""

from __future__ import annotations

import datetime as _dt
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.kafka import consume, produce
from support.outages import require
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.core.errors import StackError
from yibao.core.kafka import KafkaAccess, KafkaSecurity, create_topics
from yibao.core.settings import CommonSettings
from yibao.core.topics import topic
from yibao.fakedata.cdc import CdcShape
from yibao.fakedata.his import generate_day
from yibao.hisevents import Ingestor, load_mapping
from yibao.stack import Stack, kafka_kraft

pytestmark = [pytest.mark.integration]

USER, PASSWORD = "yibao-ingest", "scram-password-of-ingest-0123456789"
PREFIX = "sasl."


@pytest.fixture(scope="module")
def broker() -> Iterator[kafka_kraft.KafkaBroker]:
    ok, why = kafka_kraft.available()
    require("a Kafka broker of the test's own", ok, why)
    broker = kafka_kraft.KafkaBroker(workdir=Path(tempfile.mkdtemp(prefix="yibao-kafka-sasl-")),
                                     scram_users={USER: PASSWORD}).start()
    yield broker
    broker.stop()


def _access(broker: kafka_kraft.KafkaBroker, password: str = PASSWORD) -> KafkaAccess:
    return KafkaAccess(broker.sasl_bootstrap, KafkaSecurity(protocol="SASL_PLAINTEXT", username=USER,
                                                            password=password))


async def test_a_client_with_the_services_scram_user_creates_topics_and_round_trips(broker) -> None:
    access = _access(broker)
    await create_topics(access, [("sasl.roundtrip", 1, {})])
    await produce(access, [("sasl.roundtrip", b"k", b"v")])
    records = await consume(access, ["sasl.roundtrip"], count=1, timeout=30)
    assert [(r.key, r.value) for r in records] == [(b"k", b"v")]


async def test_a_wrong_password_is_refused_naming_the_user_and_never_the_password(broker) -> None:
    wrong = "not-the-password-of-ingest-42"
    with pytest.raises(StackError) as refused:
        await create_topics(_access(broker, wrong), [("sasl.never", 1, {})], timeout=10)
    message = str(refused.value)
    assert USER in message and "SCRAM-SHA-512" in message
    assert wrong not in message and PASSWORD not in message
    assert wrong not in repr(_access(broker, wrong))


def test_settings_asking_for_sasl_without_a_user_are_refused_when_kafka_is_reached(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    settings = CommonSettings()  # yibao db upgrade needs no Kafka user
    with pytest.raises(ValueError, match="kafka_sasl_username and kafka_sasl_password"):
        settings.kafka_access


def test_the_common_password_file_serves_a_service_without_its_own(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    from yibao.settlement.settings import SettlementSettings

    (tmp_path / "yibao_kafka_sasl_password").write_text("common-secret\n")
    monkeypatch.setenv("YIBAO_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("YIBAO_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("YIBAO_KAFKA_SASL_USERNAME", "yibao-common")
    assert SettlementSettings().kafka_access.security.password == "common-secret"
    (tmp_path / "yibao_settlement_kafka_sasl_password").write_text("own-secret")
    assert SettlementSettings().kafka_access.security.password == "own-secret"


def test_a_services_own_user_wins_over_the_common_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from yibao.settlement.settings import SettlementSettings

    monkeypatch.setenv("YIBAO_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("YIBAO_KAFKA_SASL_USERNAME", "yibao-common")
    monkeypatch.setenv("YIBAO_KAFKA_SASL_PASSWORD", "common-secret")
    monkeypatch.setenv("YIBAO_SETTLEMENT_KAFKA_SASL_USERNAME", "yibao-settlement")
    monkeypatch.setenv("YIBAO_SETTLEMENT_KAFKA_SASL_PASSWORD", "settlement-secret")
    access = SettlementSettings().kafka_access
    assert access.security.username == "yibao-settlement" and access.security.tls
    assert "settlement-secret" not in repr(access) and "settlement-secret" not in access.describe()


async def test_the_ingest_worker_consumes_and_publishes_as_its_scram_user(broker, stack: Stack,
                                                                          tmp_path: Path) -> None:
    mapping = load_mapping("example-oracle-his")
    cdc_topics = [PREFIX + t for t in mapping.topics()]
    access = _access(broker)
    await create_topics(access, [(t, 1, {}) for t in cdc_topics])
    worker = WorkerProcess("ingest", {
        "KAFKA_BOOTSTRAP": broker.sasl_bootstrap, "DATABASE_URL": new_database(stack, tmp_path),
        "YIBAO_TOPIC_PREFIX": PREFIX, "YIBAO_INGEST_CDC_TOPICS": json.dumps(cdc_topics),
        "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "YIBAO_INGEST_KAFKA_SASL_USERNAME": USER, "YIBAO_INGEST_KAFKA_SASL_PASSWORD": PASSWORD,
    }, tmp_path / "ingest.log").start()
    try:
        messages = generate_day(303, day=_dt.date(2026, 5, 1), outpatients=1, inpatients=0,
                                shape=CdcShape(decimal_mode="string"))
        ingestor = Ingestor(mapping)
        expected = {e.event_id for m in messages if not m.expect_error
                    for e in ingestor.ingest(PREFIX + m.topic, 0, 0, m.key, m.value).events}
        await produce(access, [(PREFIX + m.topic, m.key, m.value) for m in messages])
        records = await consume(access, [topic("his_events", PREFIX)], timeout=60,
                                until=lambda rs: expected <= {json.loads(r.value)["event_id"] for r in rs})
        assert expected <= {json.loads(r.value)["event_id"] for r in records}
        assert PASSWORD not in worker.log_path.read_text(errors="replace")
    finally:
        worker.stop()


def test_a_broker_without_a_sasl_listener_says_so() -> None:
    broker = kafka_kraft.KafkaBroker(workdir=Path(tempfile.mkdtemp(prefix="yibao-kafka-none-")))
    with pytest.raises(StackError, match="no SASL listener"):
        broker.sasl_bootstrap
