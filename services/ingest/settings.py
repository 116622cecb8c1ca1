"""Settings of the ingest worker (env prefix ``YIBAO_INGEST_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from yibao.core.kafka import TopicRequest
from yibao.core.settings import CommonSettings

__all__ = ["IngestSettings"]


class IngestSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="YIBAO_INGEST_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "ingest"
    default_web_port: ClassVar[int] = 6060

    mapping: str = Field(
        "example-oracle-his",
        description="HIS mapping: the name of a shipped mapping (libs/hisevents/mappings/<name>.yaml) or a path",
    )
    cdc_topics: list[str] | None = Field(
        None, description="CDC topics to consume (JSON list); default: the topics the mapping names. Either way "
                          "they are matched case-insensitively against the broker's topics"
    )
    cdc_topic_check_s: float = Field(
        30.0, description="how often the worker checks that its CDC topics exist (yibao_ingest_cdc_topics_missing) "
                          "and, while one is missing, how soon a topic the connector creates is consumed"
    )
    order_check_s: float = Field(
        0.2, description="while events wait for HIS commit order across tables (a backlog on some CDC topics), how "
                         "often the worker looks whether their turn came without a new message arriving"
    )
    cdc_partitions: int = Field(
        1,
        description="partitions when `yibao topics create --with-cdc` creates CDC topics. Keep 1 (Debezium's "
                    "default) so a table's rows stay in commit order, unless the connector keys rows by visit "
                    "(message.key.columns)",
    )

    def load_mapping(self):  # -> yibao.hisevents.mapping.Mapping
        from yibao.hisevents.mapping import load_mapping

        return load_mapping(self.mapping)

    def source_topics(self) -> list[str]:
        if self.cdc_topics:
            return list(self.cdc_topics)
        return sorted(self.load_mapping().topics())

    def cdc_topic_requests(self) -> list[TopicRequest]:
        return [(name, self.cdc_partitions, {}) for name in self.source_topics()]
