"""testcontainers, for machines with a Docker engine (a developer laptop, a CI with Docker).

Selected automatically when the engine answers a ping; these machines have only the docker *client*, so the
check is on the engine, not on the command.
"""

from __future__ import annotations

from typing import Any

__all__ = ["docker_engine_available", "start_kafka", "start_postgres"]


def docker_engine_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


def start_kafka() -> tuple[Any, str]:
    from testcontainers.kafka import KafkaContainer

    container = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    container.start()
    return container, container.get_bootstrap_server()


def start_postgres() -> tuple[Any, str]:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver="psycopg")
    container.start()
    return container, container.get_connection_url()
