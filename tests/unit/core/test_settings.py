"""Typed settings (yibao.core.settings and the classes built on it): prefixes, shared names, secrets.

The autouse fixture ``clean_env`` (conftest.py) removes every YIBAO_* variable, KAFKA_BOOTSTRAP and DATABASE_URL
and points YIBAO_SECRETS_DIR at an empty directory of the test's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from yibao.core.settings import DEFAULT_DATABASE_URL, CommonSettings
from yibao.envelope.settings import PlatformSettings
from yibao.ingest.settings import IngestSettings

SECRET = "s3cr3t-Value-9f2c"
DB_PASSWORD = "pw-Xq7-secret"
DB_URL = f"postgresql+psycopg://yibao:{DB_PASSWORD}@db.internal:5432/yibao"


class _SettingsWithSecret(CommonSettings):
    """A service-like settings class holding a secret, as a service would declare one."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_TESTSVC_", extra="ignore", case_sensitive=False)

    api_password: SecretStr = Field(SecretStr(""), description="a password")


def test_the_defaults_need_no_environment() -> None:
    settings = IngestSettings()
    assert settings.kafka_bootstrap == "127.0.0.1:9092" and settings.database_url == DEFAULT_DATABASE_URL


def test_a_services_env_prefix_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_INGEST_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("YIBAO_INGEST_MAPPING", "/etc/yibao/his.yaml")
    settings = IngestSettings()
    assert settings.log_level == "DEBUG" and settings.mapping == "/etc/yibao/his.yaml"


def test_another_services_prefix_does_not_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_SETTLEMENT_LOG_LEVEL", "ERROR")
    assert IngestSettings().log_level == "INFO"


def test_the_global_prefix_applies_to_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_TOPIC_PREFIX", "hospital1.")
    assert IngestSettings().topic_prefix == "hospital1." and CommonSettings().topic_prefix == "hospital1."


def test_a_services_own_variable_wins_over_the_global_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("YIBAO_INGEST_LOG_LEVEL", "DEBUG")
    assert IngestSettings().log_level == "DEBUG"


def test_env_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("yibao_ingest_cdc_partitions", "12")
    assert IngestSettings().cdc_partitions == 12


@pytest.mark.parametrize("settings_class", [CommonSettings, IngestSettings])
def test_kafka_bootstrap_and_database_url_are_read_without_prefix(monkeypatch: pytest.MonkeyPatch,
                                                                  settings_class: type[CommonSettings]) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    settings = settings_class()
    assert settings.kafka_bootstrap == "kafka-0:9092,kafka-1:9092" and settings.database_url == DB_URL


def test_a_secret_is_read_from_a_file_in_the_secrets_dir(clean_env: Path) -> None:
    (clean_env / "YIBAO_PLATFORM_API_SECRET").write_text(SECRET + "\n", encoding="utf-8")
    settings = PlatformSettings()
    # the trailing newline of `echo … > file` (and of most Kubernetes secrets) is not part of the secret
    assert settings.api_secret.get_secret_value() == SECRET


def test_a_secret_never_shows_in_repr_or_str_or_a_dump(clean_env: Path) -> None:
    (clean_env / "YIBAO_PLATFORM_SM4_KEY").write_text(SECRET, encoding="utf-8")
    settings = PlatformSettings()
    assert settings.sm4_key.get_secret_value() == SECRET
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.sm4_key)):
        assert SECRET not in shown


def test_a_secret_never_shows_in_public_dict(clean_env: Path) -> None:
    (clean_env / "YIBAO_TESTSVC_API_PASSWORD").write_text(SECRET, encoding="utf-8")
    settings = _SettingsWithSecret()
    assert settings.api_password.get_secret_value() == SECRET
    shown = settings.public_dict()
    assert "api_password" in shown and SECRET not in repr(shown)


def test_public_dict_hides_a_password_inside_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    shown = IngestSettings().public_dict()
    assert DB_PASSWORD not in repr(shown)
    assert shown["database_url"].startswith("postgresql+psycopg://") and "db.internal:5432/yibao" in shown["database_url"]


def test_public_dict_shows_the_other_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_INGEST_LOG_LEVEL", "DEBUG")
    shown = IngestSettings().public_dict()
    assert shown["log_level"] == "DEBUG" and shown["kafka_bootstrap"] == "127.0.0.1:9092"


def test_the_database_password_never_shows_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    settings = IngestSettings()
    assert DB_PASSWORD not in repr(settings) and DB_PASSWORD not in str(settings)


def test_a_services_default_port_is_its_own_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert IngestSettings().port == IngestSettings.default_web_port
    monkeypatch.setenv("YIBAO_INGEST_WEB_PORT", "9100")
    assert IngestSettings().port == 9100
