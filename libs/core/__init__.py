"""yibao.core: what every service and library of yibao-bridge stands on.

Settings, the exception hierarchy, Asia/Shanghai time, Decimal money, structured logging with personal data
masked, Prometheus metrics and health, the database (schema and migrations), and the Kafka plumbing
(topic catalog, inbox, outbox, dead letters).
"""

__all__: list[str] = []
