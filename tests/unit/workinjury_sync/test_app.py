"""The worker's wiring: settings under its prefix and port, the agent on its three input topics, the engine that
binds lost serials, the realtime endpoints on its web port."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from yibao.workinjury_sync.settings import WorkInjurySyncSettings


def test_settings_use_the_workinjury_sync_prefix_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_WORKINJURY_SYNC_POLL_INTERVAL_S", "600")
    settings = WorkInjurySyncSettings()
    assert settings.poll_interval_s == 600 and settings.port == 6064 and settings.page_size == 500


def test_a_page_over_500_records_and_an_unknown_stream_are_refused_at_start() -> None:
    with pytest.raises(ValidationError):
        WorkInjurySyncSettings(page_size=501)
    with pytest.raises(ValidationError, match="unknown download streams"):
        WorkInjurySyncSettings(streams=["GYD999"])


def test_the_worker_serves_the_realtime_checks_and_absorbs_its_topics(tmp_path: Path) -> None:
    from yibao.workinjury_sync.app import build
    from yibao.workinjury_sync.http import CHECKS

    runtime = build(WorkInjurySyncSettings(database_url=f"sqlite:///{tmp_path / 'w.sqlite'}"))
    paths = set(runtime.app.web.views)
    assert set(CHECKS) | {"/metrics", "/readyz", "/workinjury/downloads/{infno}/{action}"} <= paths
    assert "workinjury-absorb" in runtime.app.agents
