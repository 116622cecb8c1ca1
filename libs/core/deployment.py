"""One deployment's view of a database that several deployments may share.

A *deployment* is one bridge installation: its topic prefix (``YIBAO_TOPIC_PREFIX``) and its data cipher
(:mod:`yibao.core.atrest`). Two deployments may share one PostgreSQL database (a test and a training
installation of one hospital, or two small hospitals): their inbox and outbox rows must never mix. This is
done here and only here:

* :func:`bind` attaches a :class:`Deployment` to an engine (SQLAlchemy execution options travel with every
  connection taken from it); :class:`~yibao.core.runtime.ServiceRuntime` binds its engine at start, so
  everything a worker does through ``runtime.engine`` or ``runtime.db`` is scoped;
* :meth:`Deployment.of` reads it back from a connection (an unbound connection is the default deployment:
  no prefix, plain cipher);
* :meth:`Deployment.scoped` is the name the inbox (``inbox.consumer``), the outbox (``outbox.producer``), the
  relay and ``parked_work.service`` use: ``<prefix><name>``. ``yibao.core.messaging`` calls it; callers keep
  passing their bare names.

With an empty prefix the names are the bare names, exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from yibao.core.atrest import PLAIN, DataCipher
from yibao.core.errors import ConfigurationError

__all__ = ["Deployment", "bind", "NAME_MAX"]

_OPTION = "yibao_deployment"
#: inbox.consumer, outbox.producer and parked_work.service hold 64 characters
NAME_MAX = 64


@dataclass(frozen=True)
class Deployment:
    prefix: str = ""
    cipher: DataCipher = field(default=PLAIN, compare=False)

    def scoped(self, name: str) -> str:
        """The deployment's name for a consumer/producer/service: ``<prefix><name>``."""
        scoped = f"{self.prefix}{name}"
        if len(scoped) > NAME_MAX:
            raise ConfigurationError(f"topic prefix + name '{scoped[:20]}…' is longer than {NAME_MAX} characters; "
                                     "use a shorter YIBAO_TOPIC_PREFIX")
        return scoped

    @classmethod
    def of(cls, conn: Connection | Engine | Any) -> "Deployment":
        """The deployment a connection (or engine) was bound to; the default one when it was not."""
        getter = getattr(conn, "get_execution_options", None)
        found = getter().get(_OPTION) if getter is not None else None
        return found if isinstance(found, Deployment) else DEFAULT

    @classmethod
    def from_settings(cls, settings: Any) -> "Deployment":
        return cls(prefix=getattr(settings, "topic_prefix", "") or "", cipher=DataCipher.from_settings(settings))


DEFAULT = Deployment()


def bind(engine: Engine, deployment: Deployment) -> Engine:
    """The engine, sharing its pool, with ``deployment`` on every connection it gives."""
    return engine.execution_options(**{_OPTION: deployment})
