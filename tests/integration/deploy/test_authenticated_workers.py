"""The authenticated way of deploy/k8s/options/authenticated-workers, run: processes configured exactly as their
manifests configure them — the ConfigMap's settings as environment, the files their projected Secret volume holds
as the secrets directory, nothing from the machine — on a broker whose SCRAM users are the bridge's KafkaUsers.

The prepare Job migrates and creates the topics as yibao-ops; a worker starts and becomes ready as its own user;
with a wrong password in its file it does not start, and its log says why in the words of deploy/k8s/README.md.
The broker is the test's own (the session's has no SCRAM listener); the cluster's address in the ConfigMap stands
for it."""

from __future__ import annotations

import asyncio
import os
import secrets as random_secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from integration.deploy.live import poll
from support.outages import require
from support.stack import new_database
from support.workers import WorkerProcess
from unit.deploy.ops_support import (
    SERVICES,
    TEST_OVERLAYS,
    config_generator_data,
    env_prefix_of,
    pod_templates,
    projected_secret_files,
    resource_documents,
)
from yibao.core.kafka import KafkaAccess, KafkaSecurity, catalog_topics
from yibao.stack import Stack, kafka_kraft

pytestmark = [pytest.mark.integration]

#: the base with every service component and the option, as the unit tests render it
OVERLAY = TEST_OVERLAYS / "authenticated-workers"
#: the worker this test runs: the one that moves money
SERVICE = "settlement"
#: the bridge's KafkaUsers (deploy/k8s/strimzi) with the passwords Strimzi would have generated
PASSWORDS = {user: random_secrets.token_urlsafe(24) for user in ["yibao-ops", *(f"yibao-{s}" for s in SERVICES)]}


def _password_key(user: str) -> str:
    """The key of a user's password in the Secret yibao-kafka (deploy/k8s/secret-template.yaml)."""
    if user == "yibao-ops":
        return "yibao_kafka_sasl_password"
    return (env_prefix_of(user.removeprefix("yibao-")) + "KAFKA_SASL_PASSWORD").lower()


@pytest.fixture(scope="module")
def broker() -> Iterator[kafka_kraft.KafkaBroker]:
    ok, why = kafka_kraft.available()
    require("a Kafka broker of the test's own", ok, why)
    broker = kafka_kraft.KafkaBroker(workdir=Path(tempfile.mkdtemp(prefix="yibao-kafka-authn-")),
                                     scram_users=PASSWORDS).start()
    yield broker
    broker.stop()


def _pod(kind_name: str) -> dict[str, Any]:
    (pod,) = [pod for name, pod in pod_templates(resource_documents(OVERLAY)) if name == kind_name]
    return pod


def _as_in_the_pod(monkeypatch: pytest.MonkeyPatch, pod: dict[str, Any], container: dict[str, Any],
                   broker: kafka_kraft.KafkaBroker, database_url: str, secrets_dir: Path,
                   kafka_secret: dict[str, str]) -> dict[str, str]:
    """This process's environment cleared of every yibao setting, the secrets directory filled as the kubelet fills
    the pod's; returns the container's environment (the ConfigMap, its own env), the broker's address for the
    cluster's."""
    for key in list(os.environ):
        if key.upper().startswith(("YIBAO_", "KAFKA_BOOTSTRAP", "DATABASE_URL")):
            monkeypatch.delenv(key)
    files = projected_secret_files(pod, container, {
        "yibao-database": {"database_url": database_url}, "yibao-platform": {}, "yibao-his": {},
        "yibao-kafka": kafka_secret})
    secrets_dir.mkdir(parents=True)
    for name, content in files.items():
        (secrets_dir / name).write_text(content, encoding="utf-8")
    config = config_generator_data(OVERLAY)
    assert config["KAFKA_BOOTSTRAP"].endswith(":9093")  # the cluster's SCRAM listener, which the broker stands for
    env = {**config, **{e["name"]: e["value"] for e in container.get("env", [])},
           "KAFKA_BOOTSTRAP": broker.sasl_bootstrap, "YIBAO_SECRETS_DIR": str(secrets_dir)}
    return {key: value for key, value in env.items() if not key.endswith("_WEB_HOST")}  # loopback, not 0.0.0.0


def _filled_secret() -> dict[str, str]:
    return {_password_key(user): password for user, password in PASSWORDS.items()}


async def _topics(access: KafkaAccess) -> set[str]:
    admin = AIOKafkaAdminClient(**access.client_options())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_the_prepare_job_migrates_and_creates_the_topics_as_yibao_ops(
        broker, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = _pod("Job/yibao-prepare")
    database_url = new_database(stack, tmp_path)
    for container in pod["initContainers"] + pod["containers"]:  # in the order the Job runs them
        env = _as_in_the_pod(monkeypatch, pod, container, broker, database_url, tmp_path / container["name"],
                             _filled_secret())
        command = container["command"]
        assert command[0] == "yibao"
        result = subprocess.run([sys.executable, "-m", "yibao.cli.main", *command[1:]], capture_output=True,
                                text=True, timeout=180, env={**os.environ, **env})
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    ops = KafkaAccess(broker.sasl_bootstrap, KafkaSecurity(protocol="SASL_PLAINTEXT", username="yibao-ops",
                                                           password=PASSWORDS["yibao-ops"]))
    assert {name for name, _, _ in catalog_topics()} <= asyncio.run(_topics(ops))


def test_a_worker_becomes_ready_as_its_own_kafka_user(
        broker, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = _pod(f"Deployment/yibao-{SERVICE}")
    env = _as_in_the_pod(monkeypatch, pod, pod["containers"][0], broker, new_database(stack, tmp_path),
                         tmp_path / "secrets", _filled_secret())
    worker = WorkerProcess(SERVICE, env, tmp_path / f"{SERVICE}.log").start(timeout=180)
    try:
        log = worker.log_path.read_text(errors="replace")
        assert not any(password in log for password in PASSWORDS.values())
    finally:
        worker.stop()


def test_a_worker_with_a_wrong_password_does_not_start_and_says_as_whom(
        broker, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = _pod(f"Deployment/yibao-{SERVICE}")
    wrong = random_secrets.token_urlsafe(24)
    kafka_secret = {**_filled_secret(), _password_key(f"yibao-{SERVICE}"): wrong}
    env = _as_in_the_pod(monkeypatch, pod, pod["containers"][0], broker, new_database(stack, tmp_path),
                         tmp_path / "secrets", kafka_secret)
    worker = WorkerProcess(SERVICE, env, tmp_path / f"{SERVICE}.log").start(wait=False)
    try:
        poll("the worker gives up", lambda: worker.proc.poll() is not None, timeout=180)
    finally:
        worker.stop()
    assert worker.proc.returncode != 0
    log = worker.log_path.read_text(errors="replace")
    # the two lines deploy/k8s/README.md ("A wrong or missing password") tells ops to look for
    assert "SaslAuthenticationFailed" in log
    assert f"cannot reach Kafka at {broker.sasl_bootstrap} (SASL_PLAINTEXT SCRAM-SHA-512 as yibao-{SERVICE})" in log
    assert wrong not in log and not any(password in log for password in PASSWORDS.values())
