"""The KRaft cluster id handed to the storage tool."""

from __future__ import annotations

import base64
import uuid

import pytest

from yibao.stack import kafka_kraft


def test_a_cluster_id_never_begins_with_a_dash_which_the_storage_tool_would_read_as_an_option(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # base64url of 0xf8… begins with '-'
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    draws = iter([dashed, uuid.UUID(int=1)])
    monkeypatch.setattr(kafka_kraft.uuid, "uuid4", lambda: next(draws))
    assert kafka_kraft._cluster_id() == base64.urlsafe_b64encode(uuid.UUID(int=1).bytes).rstrip(b"=").decode()


def test_a_cluster_id_is_a_22_character_base64url_uuid() -> None:
    cluster_id = kafka_kraft._cluster_id()
    assert len(cluster_id) == 22
    assert uuid.UUID(bytes=base64.urlsafe_b64decode(cluster_id + "=="))
