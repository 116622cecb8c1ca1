"""PlatformSettings: env prefix YIBAO_PLATFORM_, secrets hidden, defaults aimed at the local simulator."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from yibao.envelope.settings import PlatformSettings


def test_defaults_point_at_the_simulator_on_loopback():
    settings = PlatformSettings()
    assert settings.base_url == "http://127.0.0.1:7070"
    assert settings.call_path == "/fsi/api/rsfComIfsService/callService"
    assert settings.upload_path == "/fsi/api/fileupload/upload"
    assert settings.download_path == "/fsi/api/fileupload/download"
    assert settings.gateway == "none"


def test_settings_come_from_the_yibao_platform_environment(monkeypatch):
    monkeypatch.setenv("YIBAO_PLATFORM_GATEWAY", "tif")
    monkeypatch.setenv("YIBAO_PLATFORM_TIF_TOKEN", "very-secret")
    monkeypatch.setenv("YIBAO_PLATFORM_FIXMEDINS_CODE", "H36010000001")
    monkeypatch.setenv("YIBAO_PLATFORM_SETTLEMENT_INFNOS", '["2207"]')
    settings = PlatformSettings()
    assert settings.gateway == "tif" and settings.fixmedins_code == "H36010000001"
    assert settings.settlement_infnos == ["2207"]
    assert settings.tif_token.get_secret_value() == "very-secret"
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings.model_dump())


def test_secrets_are_read_from_the_secrets_directory(monkeypatch, tmp_path):
    (tmp_path / "yibao_platform_api_secret").write_text("from-a-file")
    monkeypatch.setenv("YIBAO_SECRETS_DIR", str(tmp_path))
    assert PlatformSettings().api_secret.get_secret_value() == "from-a-file"


def test_gateway_may_be_written_as_underscore_api():
    assert PlatformSettings(gateway="_api").gateway == "api"


def test_fixmedins_code_must_have_twelve_characters():
    with pytest.raises(ValidationError):
        PlatformSettings(fixmedins_code="H123")


def test_msgid_slots_must_divide_ten_thousand():
    with pytest.raises(ValidationError):
        PlatformSettings(msgid_slots=3)


def test_settlements_get_their_own_read_timeout():
    settings = PlatformSettings(read_timeout_s=10, settlement_read_timeout_s=90)
    assert settings.read_timeout_for("2207") == 90 and settings.read_timeout_for("1101") == 10


def test_an_institution_name_of_up_to_200_characters_is_accepted():
    # 定点医药机构名称 is 200 characters (national-platform.md); a 20-character limit locked out real hospitals
    assert len(PlatformSettings(fixmedins_name="某" * 200).fixmedins_name) == 200


def test_envelope_fields_longer_than_the_spec_are_refused_at_startup():
    with pytest.raises(ValidationError):
        PlatformSettings(fixmedins_name="一" * 201)
    with pytest.raises(ValidationError):
        PlatformSettings(recer_sys_code="X" * 11)
