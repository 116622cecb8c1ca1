"""The worker's wiring: settings, the agent on both input topics, and the 诊查费 endpoints on its web port."""

from __future__ import annotations

from pathlib import Path

import pytest

from yibao.registration.consultation_fee import ConsultationFeeRulesError
from yibao.registration.settings import RegistrationSettings


def test_settings_use_the_registration_prefix_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_REGISTRATION_TREATMENT_CHECK", "true")
    settings = RegistrationSettings()
    assert settings.treatment_check is True and settings.port == 6061


def test_the_worker_serves_the_consultation_fee_endpoints(tmp_path: Path) -> None:
    from yibao.registration.app import build

    runtime = build(RegistrationSettings(database_url=f"sqlite:///{tmp_path / 'r.sqlite'}"))
    paths = set(runtime.app.web.views)
    assert {"/consultation-fee/quote", "/consultation-fee/rules", "/metrics", "/readyz"} <= paths
    assert "registration-absorb" in runtime.app.agents


def test_a_wrong_rules_file_stops_the_worker_at_start(tmp_path: Path) -> None:
    from yibao.registration.app import build

    bad = tmp_path / "rules.yaml"
    bad.write_text("version: x\nrules:\n  - {id: a, ratio: 2}\n", encoding="utf-8")
    with pytest.raises(ConsultationFeeRulesError):
        build(RegistrationSettings(database_url=f"sqlite:///{tmp_path / 'r.sqlite'}",
                                   consultation_fee_rules=str(bad)))
