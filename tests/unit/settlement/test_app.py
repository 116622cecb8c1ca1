"""The worker's wiring and settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from yibao.settlement.settings import SettlementSettings


def test_settings_use_the_settlement_prefix_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_SETTLEMENT_DETAIL_BATCH_SIZE", "20")
    monkeypatch.setenv("YIBAO_CHAIN_MAX_ATTEMPTS", "3")  # the global fallback
    settings = SettlementSettings()
    assert (settings.detail_batch_size, settings.chain_max_attempts, settings.port) == (20, 3, 6062)
    assert SettlementSettings.service_name == "settlement"


def test_the_worker_absorbs_his_events_and_visit_facts(tmp_path: Path) -> None:
    from yibao.settlement.app import build

    runtime = build(SettlementSettings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", topic_prefix="x."))
    assert runtime.name == "settlement"
    agent = runtime.app.agents["settlement-absorb"]
    assert {t for t in agent.channel.topics} == {"x.yibao.his.events.v1", "x.yibao.visits.v1"}
