"""Settings of the results-to-HIS writer (env prefix ``YIBAO_HIS_WRITER_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from yibao.core.settings import CommonSettings

__all__ = ["HisWriterSettings"]


class HisWriterSettings(CommonSettings):
    """The HIS database the results go to, and the table they go into."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_HIS_WRITER_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "his-writer"
    default_web_port: ClassVar[int] = 6067

    his_database_url: SecretStr = Field(
        SecretStr(""),
        description="SQLAlchemy URL of the HIS database the results are written to (postgresql+psycopg://…, "
                    "mysql+pymysql://…, oracle+oracledb://…, mssql+pyodbc://… with that driver installed); a "
                    "secret: it holds the HIS account's password",
    )
    results_schema: str | None = Field(None, description="schema (Oracle: owner) of the results table in the HIS "
                                                         "database; default: the connection's own")
    results_table: str = Field("yb_result", min_length=1, description="the results table in the HIS database")
    create_table: bool = Field(
        True, description="create the results table (and its index) at start when it does not exist; switch off "
                          "where the HIS account may not create tables and the DBA has created it",
    )
