"""The Debezium connector configurations shipped beside the mapping files agree with those mappings."""

from __future__ import annotations

import re

import pytest

from yibao.core.errors import StackError
from yibao.hisevents import available_mappings, load_mapping
from yibao.stack.connect import connector_config, shipped_connectors

CONNECTORS = shipped_connectors()


def test_every_database_flavour_has_a_connector_configuration():
    classes = {connector_config(name)["connector.class"].rsplit(".", 1)[-1] for name in CONNECTORS}
    assert {"PostgresConnector", "MySqlConnector", "OracleConnector", "SqlServerConnector"} <= classes


def test_every_mapping_file_has_a_connector_configuration():
    for mapping in available_mappings():
        assert any(name.split(".")[0] == mapping for name in CONNECTORS), mapping


@pytest.mark.parametrize("name", CONNECTORS)
def test_a_connector_captures_exactly_the_tables_its_mapping_describes(name: str):
    config = connector_config(name)
    mapping = load_mapping(name.split(".")[0])
    captured = {t.replace("\\.", ".").casefold() for t in config["table.include.list"].split(",")}
    assert captured == {t.name.casefold() for t in mapping.tables}


@pytest.mark.parametrize("name", CONNECTORS)
def test_a_connector_uses_the_json_converter_keeps_one_partition_and_its_secrets_out_of_the_file(name: str):
    config = connector_config(name)
    assert config["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert config["topic.creation.default.partitions"] == "1"  # a table's rows stay in commit order
    assert config["database.password"] == "${env:HIS_DB_PASSWORD}"
    assert not any(key.startswith("//") for key in config)


def test_placeholders_are_filled_from_the_values_given_and_a_missing_one_is_named():
    values = {"HIS_DB_HOST": "h", "HIS_DB_PORT": "5432", "HIS_DB_USER": "u", "HIS_DB_PASSWORD": "p",
              "HIS_DB_NAME": "his", "HIS_TOPIC_PREFIX": "hisdb", "HIS_SLOT_NAME": "s",
              "HIS_TOPIC_REPLICATION_FACTOR": "3"}
    config = connector_config("example-postgres-his", values)
    assert config["database.hostname"] == "h" and not any(re.search(r"\$\{env:", v) for v in config.values())
    with pytest.raises(StackError, match=r"no value for \$\{env:HIS_DB_HOST\}"):
        connector_config("example-postgres-his", {k: v for k, v in values.items() if k != "HIS_DB_HOST"})
