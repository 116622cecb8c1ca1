"""The ingest worker's CDC subscription: what it subscribes to and what it says (services/ingest/subscription.py);
the broker's topic list is given, the resolution rules themselves are tested in tests/unit/hisevents."""

from __future__ import annotations

import logging

import pytest

from yibao.hisevents import load_mapping
from yibao.hisevents.mapping import resolve_topics
from yibao.ingest import subscription as sub_module
from yibao.ingest.subscription import CDC_TOPICS_MISSING, CdcSubscription

WANTED = ("hisdb.HIS.OUTP_REGISTER", "hisdb.HIS.YB_SETTLE_REQUEST")


def _subscription(existing: set[str]) -> CdcSubscription:
    return CdcSubscription("127.0.0.1:1", WANTED, resolve_topics(WANTED, existing))


def _gauge() -> float:
    return CDC_TOPICS_MISSING._value.get()  # type: ignore[attr-defined]


def test_missing_topics_are_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    subscription = _subscription({"hisdb.his.outp_register"})
    with caplog.at_level(logging.INFO, logger="yibao.ingest.subscription"):
        subscription.report_start()
    assert subscription.topics == ("hisdb.his.outp_register", "hisdb.HIS.YB_SETTLE_REQUEST")
    assert _gauge() == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("CDC topic does not exist (yet)" in m for m in messages)
    assert any("found under the connector's spelling" in m for m in messages)


async def test_a_topic_that_turns_up_under_another_spelling_is_an_error_until_restart(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    subscription = _subscription({"hisdb.his.outp_register"})  # settle request: subscribed upper case

    async def later(bootstrap: str, *, timeout: float = 30) -> set[str]:
        return {"hisdb.his.outp_register", "hisdb.his.yb_settle_request"}

    monkeypatch.setattr(sub_module, "list_topics", later)
    with caplog.at_level(logging.ERROR, logger="yibao.ingest.subscription"):
        assert await subscription.check() == 1
        assert await subscription.check() == 1
    assert _gauge() == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "NOT consumed until the worker restarts" in errors[0].getMessage()


async def test_a_missing_topic_that_appears_as_subscribed_clears_the_gauge(monkeypatch: pytest.MonkeyPatch) -> None:
    subscription = _subscription({"hisdb.HIS.OUTP_REGISTER"})

    async def later(bootstrap: str, *, timeout: float = 30) -> set[str]:
        return {"hisdb.HIS.OUTP_REGISTER", "hisdb.HIS.YB_SETTLE_REQUEST"}

    monkeypatch.setattr(sub_module, "list_topics", later)
    assert await subscription.check() == 0
    assert _gauge() == 0


def test_aiokafkas_error_line_for_a_subscribed_missing_topic_is_dropped_other_lines_stay() -> None:
    subscription = _subscription(set())
    subscription.report_start()
    cluster = logging.getLogger("aiokafka.cluster")
    kept = []
    handler = logging.Handler()
    handler.emit = kept.append  # type: ignore[method-assign]
    cluster.addHandler(handler)
    try:
        cluster.error("Topic %s not found in cluster metadata", "hisdb.HIS.OUTP_REGISTER")
        cluster.error("Topic %s not found in cluster metadata", "another.topic")
    finally:
        cluster.removeHandler(handler)
    assert [r.args for r in kept] == [("another.topic",)]


def test_the_shipped_mappings_name_their_topics_as_their_databases_spell_them() -> None:
    assert "hisdb.HIS.OUTP_REGISTER" in load_mapping("example-oracle-his").topics()
    postgres = load_mapping("example-postgres-his").topics()
    assert "hisdb.his.outp_register" in postgres and "hisdb.his.YB_SETTLE_REQUEST" in postgres
