"""The Strimzi resources agree with the code: generated from it, a topic per catalog topic, ACLs that let each
service touch only its own topics and group, a connector that writes exactly the topics ingest reads, and a
cluster the workers' settings point at."""

from __future__ import annotations

import functools
import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from unit.deploy.ops_support import (
    BASE,
    K8S,
    SERVICES,
    WORKER_SERVICES,
    config_generator_data,
    load_yaml_documents,
    of_kind,
    resource_documents,
)
from yibao.core.topics import CATALOG
from yibao.hisevents import load_mapping

STRIMZI = K8S / "strimzi"


@functools.cache
def _generator() -> ModuleType:
    path = STRIMZI / "generate_strimzi.py"
    spec = importlib.util.spec_from_file_location("yibao_deploy_generate_strimzi", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def strimzi() -> list[dict[str, Any]]:
    return resource_documents(STRIMZI)


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = of_kind(docs, kind)
    return doc


def _users(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {u["metadata"]["name"]: u for u in of_kind(docs, "KafkaUser")}


def _acls(user: dict[str, Any], resource: str, operation: str) -> set[tuple[str, str]]:
    """(patternType, name) of the user's rules allowing ``operation`` on ``resource``s."""
    return {(rule["resource"].get("patternType", "literal"), rule["resource"]["name"])
            for rule in user["spec"]["authorization"]["acls"]
            if rule["resource"]["type"] == resource and operation in rule["operations"]}


def test_the_committed_files_are_what_the_generator_writes() -> None:
    stale = [str(path.relative_to(STRIMZI)) for path in _generator().write_all(check=True)]
    assert not stale, f"stale: {stale} — run .venv/bin/python deploy/k8s/strimzi/generate_strimzi.py"


def test_kafka_runs_in_kraft_mode_with_controller_and_broker_node_pools(strimzi: list[dict[str, Any]]) -> None:
    kafka = _one(strimzi, "Kafka")
    assert "zookeeper" not in kafka["spec"]
    pools = of_kind(strimzi, "KafkaNodePool")
    roles = {role for pool in pools for role in pool["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    for pool in pools:
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    assert controllers % 2 == 1, "a KRaft quorum needs an odd number of controllers"


def test_topic_durability_matches_the_brokers(strimzi: list[dict[str, Any]]) -> None:
    config = _one(strimzi, "Kafka")["spec"]["kafka"]["config"]
    brokers = sum(p["spec"]["replicas"] for p in of_kind(strimzi, "KafkaNodePool") if "broker" in p["spec"]["roles"])
    assert config["auto.create.topics.enable"] is False
    assert 2 <= config["min.insync.replicas"] < config["default.replication.factor"] <= brokers


def test_every_catalog_topic_has_a_kafka_topic_as_the_catalog_says(strimzi: list[dict[str, Any]]) -> None:
    topics = {t["spec"]["topicName"]: t for t in of_kind(strimzi, "KafkaTopic")}
    assert sorted(topics) == sorted(spec.name for spec in CATALOG)
    for spec in CATALOG:
        topic = topics[spec.name]
        assert topic["spec"]["partitions"] == spec.partitions, spec.name
        config = topic["spec"].get("config", {})
        assert config.get("retention.ms") == spec.retention_ms, spec.name
        assert (config.get("cleanup.policy") == "compact") == spec.compacted, spec.name


def test_every_service_with_a_worker_has_a_kafka_user_and_the_others_wait_in_components(
        strimzi: list[dict[str, Any]]) -> None:
    users = _users(strimzi)
    assert {f"yibao-{s}" for s in WORKER_SERVICES} <= set(users)
    for service in set(SERVICES) - set(WORKER_SERVICES):
        assert f"yibao-{service}" not in users
        component = STRIMZI / "components" / service
        assert [u["metadata"]["name"] for u in of_kind(resource_documents(component), "KafkaUser")] == \
            [f"yibao-{service}"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_reads_only_what_it_consumes_and_writes_only_what_it_produces(service: str) -> None:
    user = _generator().service_user(service)
    consumed = {("literal", spec.name) for spec in CATALOG if service in spec.consumers}
    produced = {("literal", spec.name) for spec in CATALOG if service in spec.producers or "*" in spec.producers}
    cdc = {("prefix", f"{load_mapping(_generator().MAPPING).topic_prefix}.")} if service == "ingest" else set()
    assert _acls(user, "topic", "Read") == consumed | cdc
    assert _acls(user, "topic", "Write") == produced
    assert _acls(user, "group", "Read") == {("literal", f"yibao-{service}")}
    assert not _acls(user, "topic", "Create") and not _acls(user, "topic", "Delete")
    assert not _acls(user, "cluster", "Describe") and not _acls(user, "topic", "All")


def test_the_connector_writes_exactly_the_cdc_topics_ingest_reads(strimzi: list[dict[str, Any]]) -> None:
    connector = _one(strimzi, "KafkaConnector")["spec"]["config"]
    mapping = load_mapping(_generator().MAPPING)
    assert connector["topic.prefix"] == mapping.topic_prefix
    captured = {name.replace("\\.", ".") for name in connector["table.include.list"].split(",")}
    assert captured == {t.name for t in mapping.tables}
    # ingest subscribes to <topic.prefix>.<SCHEMA>.<TABLE>: the topics Debezium names after the captured tables
    assert {f"{connector['topic.prefix']}.{name}" for name in captured} == set(mapping.topics())
    assert ("prefix", f"{mapping.topic_prefix}.") in _acls(_users(strimzi)["yibao-ingest"], "topic", "Read")


def test_the_connector_is_configured_for_what_ingest_decodes(strimzi: list[dict[str, Any]]) -> None:
    connector = _one(strimzi, "KafkaConnector")
    config = connector["spec"]["config"]
    assert connector["spec"]["class"] == "io.debezium.connector.postgresql.PostgresConnector"
    mapping = load_mapping(_generator().MAPPING)
    # the mapping reads decimals the way the connector sends them ("auto" reads text, i.e. string mode)
    expected = {"auto": "string"}.get(mapping.decimal_mode, mapping.decimal_mode)
    assert config["decimal.handling.mode"] == expected, f"the mapping {mapping.vendor} reads {mapping.decimal_mode}"
    assert config["value.converter"].endswith("JsonConverter")
    assert str(config["topic.creation.default.partitions"]) == "1"  # each table's rows in commit order
    assert connector["metadata"]["labels"]["strimzi.io/cluster"] == _one(strimzi, "KafkaConnect")["metadata"]["name"]
    assert "password" not in str({k: v for k, v in config.items() if not str(v).startswith("${secrets:")})


def test_connect_may_use_its_group_and_topics_and_nothing_else(strimzi: list[dict[str, Any]]) -> None:
    connect = _one(strimzi, "KafkaConnect")["spec"]
    user = _users(strimzi)[connect["authentication"]["username"]]
    assert _acls(user, "group", "Read") == {("literal", connect["groupId"])}
    internal = {connect[k] for k in ("configStorageTopic", "offsetStorageTopic", "statusStorageTopic")}
    assert {name for _, name in _acls(user, "topic", "Read")} == internal
    prefix = _one(strimzi, "KafkaConnector")["spec"]["config"]["topic.prefix"]
    assert ("prefix", f"{prefix}.") in _acls(user, "topic", "Write")
    assert not any(name.startswith("yibao.") for _, name in _acls(user, "topic", "Write"))


def test_connect_authenticates_on_the_listener_that_requires_it(strimzi: list[dict[str, Any]]) -> None:
    kafka = _one(strimzi, "Kafka")
    connect = _one(strimzi, "KafkaConnect")["spec"]
    port = int(connect["bootstrapServers"].rsplit(":", 1)[1])
    (listener,) = [lst for lst in kafka["spec"]["kafka"]["listeners"] if lst["port"] == port]
    assert listener["authentication"]["type"] == connect["authentication"]["type"] == "scram-sha-512"
    assert connect["bootstrapServers"].startswith(f"{kafka['metadata']['name']}-kafka-bootstrap")


def test_the_workers_kafka_bootstrap_is_the_strimzi_cluster(strimzi: list[dict[str, Any]]) -> None:
    kafka = _one(strimzi, "Kafka")
    plain = [lst for lst in kafka["spec"]["kafka"]["listeners"] if "authentication" not in lst]
    expected = {f"{kafka['metadata']['name']}-kafka-bootstrap.kafka.svc:{lst['port']}" for lst in plain}
    assert config_generator_data(BASE)["KAFKA_BOOTSTRAP"] in expected
    # only the bridge's pods reach the listener that asks no password
    for listener in plain:
        (peer,) = listener["networkPolicyPeers"]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "yibao-bridge"}
        assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "yibao-bridge"}


def test_authenticated_workers_leave_no_listener_without_authentication() -> None:
    component = load_yaml_documents(STRIMZI / "components" / "authenticated-workers" / "kustomization.yaml")[0]
    assert component["kind"] == "Component"
    from unit.deploy.ops_support import check_overlay_dirs, render

    (folder,) = [p for p in check_overlay_dirs() if "strimzi" in p.name]
    kafka = _one(render(folder), "Kafka")
    assert all("authentication" in lst for lst in kafka["spec"]["kafka"]["listeners"])
    assert "superUsers" not in kafka["spec"]["kafka"]["authorization"]
