"""Typed settings shared by every service (pydantic-settings).

Each service defines its own ``Settings(CommonSettings)`` with its own env prefix (``YIBAO_INGEST_``,
``YIBAO_SETTLEMENT_`` …). Any setting may also be given once for every service with the global prefix
(``YIBAO_TOPIC_PREFIX``, ``YIBAO_LOG_LEVEL``); the service's own variable wins over the global one. The two
connection settings everyone shares are read from the names operators already use, ``KAFKA_BOOTSTRAP`` and
``DATABASE_URL``, and always win over anything the local stack would choose.

Secrets: a field typed ``SecretStr`` may also be given as a file named after the environment variable in the
secrets directory (``YIBAO_SECRETS_DIR``, default ``/run/secrets/yibao``, the usual Kubernetes mount), so keys
and passwords need never sit in the environment or in a manifest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    EnvSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

if TYPE_CHECKING:
    from yibao.core.kafka import KafkaAccess

__all__ = ["YibaoSettings", "CommonSettings", "AccessSettings", "DEFAULT_DATABASE_URL", "secrets_dir"]

DEFAULT_DATABASE_URL = "sqlite:///yibao.sqlite"
GLOBAL_PREFIX = "YIBAO_"
#: JWT signature algorithms an OIDC login may use: asymmetric only (never none or HS*)
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})


def _hide_url_password(text: str) -> str:
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return text


def secrets_dir() -> Path | None:
    path = Path(os.environ.get("YIBAO_SECRETS_DIR", "/run/secrets/yibao"))
    return path if path.is_dir() else None


class YibaoSettings(BaseSettings):
    """Base of the yibao settings classes: where they read their values, first wins — the caller's arguments, the
    environment, then the files of the secrets directory (``YIBAO_SECRETS_DIR``). A class whose
    :meth:`env_fallback_prefix` names a prefix also reads the environment and the secret files under it, after its
    own (:class:`CommonSettings`: ``YIBAO_``)."""

    @classmethod
    def env_fallback_prefix(cls) -> str | None:
        return None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        fallback = getattr(settings_cls, "env_fallback_prefix", cls.env_fallback_prefix)()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if fallback:
            sources.append(EnvSettingsSource(settings_cls, env_prefix=fallback))
        directory = secrets_dir()
        if directory is not None:
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=directory))
            if fallback:
                sources.append(SecretsSettingsSource(settings_cls, secrets_dir=directory, env_prefix=fallback))
        return tuple(sources)


class CommonSettings(YibaoSettings):
    """Settings every worker has. Subclasses set ``model_config = SettingsConfigDict(env_prefix=...)``."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_", extra="ignore", case_sensitive=False)

    #: the service name, used in the consumer group id, metrics and logs
    service_name: ClassVar[str] = "yibao"
    #: default port of the worker's HTTP endpoint (metrics, health)
    default_web_port: ClassVar[int] = 6060

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "kafka_bootstrap"),
        description="Kafka bootstrap servers, host:port[,host:port]",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        "PLAINTEXT", description="how the worker connects to Kafka: PLAINTEXT, SASL_PLAINTEXT, SASL_SSL (SCRAM "
                                 "user of the service, as its Strimzi KafkaUser), SSL")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (Strimzi's scram-sha-512 users: SCRAM-SHA-512)")
    kafka_sasl_username: str | None = Field(None, description="SASL user of this service (e.g. yibao-settlement)")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="its password (secret file kafka_sasl_password, or the Strimzi user Secret's "
                          "'password' key mapped to YIBAO_<SERVICE>_KAFKA_SASL_PASSWORD)")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle of the broker's certificate (SSL, SASL_SSL; "
                                                           "unset: the system's)")
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="SQLAlchemy URL: postgresql+psycopg://… in production, sqlite:///… embedded",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR")
    log_json: bool = Field(True, description="one JSON object per log line (false: human-readable)")
    web_host: str = Field("127.0.0.1", description="address of the metrics/health endpoint")
    web_port: int | None = Field(None, description="port of the metrics/health endpoint (default per service)")
    topic_prefix: str = Field("", description="prefix for every yibao topic name and consumer group (one "
                                              "cluster, many hospitals)")
    topic_replication_factor: int = Field(1, ge=1, description="replication factor of the topics yibao creates "
                                                               "(3 on a production cluster)")
    session_timeout_s: float = Field(10.0, description="Kafka consumer group session timeout, seconds")
    retry_attempts: int = Field(5, description="attempts at a transient failure before the work is parked")
    retry_backoff_s: float = Field(0.5, description="first retry delay; doubles each attempt")
    outage_backoff_s: float = Field(0.5, gt=0, description="while the database or broker is unreachable: first "
                                                           "wait before looking again; doubles each time")
    outage_backoff_max_s: float = Field(10.0, gt=0, description="longest wait between two looks at an unreachable "
                                                                "database or broker")
    broker_request_timeout_s: float = Field(30.0, gt=0, description="a send the broker has not acknowledged after "
                                                                    "this long fails (and is retried: an outage)")
    data_keys: SecretStr | None = Field(
        None, validation_alias=AliasChoices("YIBAO_DATA_KEYS", "yibao_data_keys"), description="keys sealing personal data at rest (SM4-GCM): '<id>:<32 hex digits>' entries, comma-"
                          "separated; the first seals, all open (rotation: put a new key first, run `yibao data "
                          "reencrypt`). One value for every process (secret file yibao_data_keys). Unset: stored unencrypted (the "
                          "demo), as /readyz says")
    retention_days: int = Field(30, ge=0, description="personal data older than this is purged: published outbox "
                                                       "rows, inbox rows, parked work replayed this long ago (0: "
                                                       "keep everything)")
    retention_interval_s: float = Field(3600.0, gt=0, description="how often a worker applies the retention "
                                                                  "policy")
    readiness_interval_s: float = Field(5.0, gt=0, description="how often the worker checks its own readiness "
                                                              "for yibao_worker_ready (besides each /readyz)")
    dlq_depth_interval_s: float = Field(30.0, gt=0, description="how often the worker measures the dead letters "
                                                               "waiting for replay (yibao_dlq_depth)")

    @property
    def port(self) -> int:
        return self.web_port if self.web_port is not None else self.default_web_port

    @property
    def kafka_access(self) -> "KafkaAccess":
        """Where the broker is and how this service connects to it (yibao.core.kafka). Checked when asked for, not
        when the settings load: ``yibao db upgrade`` never talks to Kafka and needs no Kafka user."""
        from yibao.core.kafka import KafkaAccess, KafkaSecurity

        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        return KafkaAccess(self.kafka_bootstrap, KafkaSecurity(
            protocol=self.kafka_security_protocol, mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username, password=password, cafile=self.kafka_ssl_cafile))

    @classmethod
    def env_fallback_prefix(cls) -> str | None:
        """YIBAO_<FIELD> (and the secret file yibao_<field>) sets a value for every service; YIBAO_<SERVICE>_<FIELD>
        (its own file) wins over it."""
        prefix = cls.model_config.get("env_prefix", "")
        return GLOBAL_PREFIX if prefix and prefix.upper() != GLOBAL_PREFIX else None

    def __repr_args__(self):  # type: ignore[no-untyped-def]
        """repr()/str() hide a password inside a URL (SecretStr fields hide themselves)."""
        for key, value in super().__repr_args__():
            yield key, _hide_url_password(value) if isinstance(value, str) else value

    def public_dict(self) -> dict[str, Any]:
        """Settings as shown to operators: secrets stay hidden, and so does a password inside a URL."""
        return {key: _hide_url_password(str(value)) if value is not None else None
                for key, value in self.model_dump().items()}


class AccessSettings(CommonSettings):
    """Settings of a service people log in to (reconciliation's finance, the counter's lab): the two ways an identity
    is proven, as :meth:`yibao.core.access.Authenticator.from_settings` reads them. The roles are the service's own
    (its :class:`~yibao.core.access.Policy`)."""

    auth_static_tokens_file: Path | None = Field(
        None, description="static-token mode: a secret YAML/JSON file of users, each {user, roles (the service's), "
        "token or token_sha256}; unset: static tokens off (see the service README)")
    oidc_issuer: str = Field("", description="OIDC mode: the identity provider's issuer (iss); empty: OIDC off")
    oidc_audience: str = Field("", description="OIDC mode: the audience (aud) tokens must be issued for")
    oidc_jwks_url: str = Field("", description="OIDC mode: the provider's JWKS URL (keys fetched and cached)")
    oidc_jwks_file: Path | None = Field(None, description="OIDC mode: a local JWKS file instead of the URL")
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        description="signature algorithms accepted (RS256/384/512, PS256/384/512, ES256/384/512); never none or HS*")
    oidc_leeway_s: float = Field(60.0, ge=0, le=600, description="clock leeway for exp / nbf / iat, seconds")
    oidc_user_claim: str = Field("preferred_username", description="claim naming the user (falls back to sub)")
    oidc_roles_claim: str = Field(
        "roles", description="claim holding the user's roles, a dotted path (Keycloak: realm_access.roles)")
    oidc_role_map: dict[str, str] = Field(
        default_factory=dict, description="provider role/group → one of the service's roles (JSON object); empty: "
        "the provider's names are used as they are")
    oidc_jwks_cache_s: float = Field(300.0, gt=0, description="how long fetched JWKS keys are kept")

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        wrong = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if wrong:
            raise ValueError(f"oidc_algorithms: {wrong} not accepted; allowed: {sorted(ASYMMETRIC_ALGORITHMS)}")
        return value
