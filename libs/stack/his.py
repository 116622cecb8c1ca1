"""A PostgreSQL database standing in for a hospital's HIS, captured by Debezium's PostgreSQL connector.

It holds the tables of the shipped example (``mappings/example-postgres-his.sql``) on the local PostgreSQL
cluster (which runs ``wal_level=logical``); :meth:`StandInHis.connector_config` fills the shipped connector
configuration (``example-postgres-his.connector.json``) for it. Used by ``yibao stack up --with-connect`` and
the CDC end-to-end test — the bridge itself never touches a HIS database except through the his-writer.
"""

from __future__ import annotations

from dataclasses import dataclass

from yibao.core.errors import StackError
from yibao.stack.connect import connector_config

__all__ = ["EXAMPLE", "StandInHis"]

#: the shipped example HIS: <EXAMPLE>.sql (tables), <EXAMPLE>.yaml (mapping), <EXAMPLE>.connector.json
EXAMPLE = "example-postgres-his"


@dataclass(frozen=True)
class StandInHis:
    host: str
    port: int
    user: str
    dbname: str
    password: str = ""

    @property
    def dsn(self) -> str:
        dsn = f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"
        return dsn + (f" password={self.password}" if self.password else "")

    @property
    def url(self) -> str:
        """SQLAlchemy URL (for the his-writer)."""
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.dbname}"

    @classmethod
    def create(cls, server: object, name: str) -> StandInHis:
        """A new database ``name`` on a :class:`~yibao.stack.postgres.PostgresServer`, with the example's tables."""
        from yibao.stack.postgres import PostgresServer

        if not isinstance(server, PostgresServer):
            raise StackError("a stand-in HIS needs the private PostgreSQL cluster (wal_level=logical)")
        server.create_database(name)
        his = cls("127.0.0.1", server.port, server.user, name)
        his.create_tables()
        return his

    def create_tables(self) -> None:
        import psycopg

        from yibao.hisevents.mapping import MAPPINGS_DIR

        ddl = (MAPPINGS_DIR / f"{EXAMPLE}.sql").read_text(encoding="utf-8")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            level = conn.execute("SHOW wal_level").fetchone()
            if not level or level[0] != "logical":
                raise StackError(f"the HIS database's server runs wal_level={level[0] if level else '?'}; "
                                 "Debezium needs wal_level=logical")
            conn.execute(ddl)

    def connector_config(self, *, topic_prefix: str, slot: str, replication_factor: int = 1,
                         **overrides: str) -> dict[str, str]:
        """The shipped connector configuration filled for this database; ``overrides`` replace or add keys
        (dots written as ``__``: ``value__converter__schemas__enable="true"``)."""
        config = connector_config(EXAMPLE, {
            "HIS_DB_HOST": self.host, "HIS_DB_PORT": str(self.port), "HIS_DB_USER": self.user,
            "HIS_DB_PASSWORD": self.password, "HIS_DB_NAME": self.dbname, "HIS_TOPIC_PREFIX": topic_prefix,
            "HIS_SLOT_NAME": slot, "HIS_TOPIC_REPLICATION_FACTOR": str(replication_factor),
        })
        config.update({k.replace("__", "."): v for k, v in overrides.items()})
        return config
