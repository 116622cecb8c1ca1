"""yibao.stack: the local broker and database, chosen automatically and reported.

Used by ``yibao stack up``, ``yibao demo`` and the test suite — never by a service (services only read
``KAFKA_BOOTSTRAP`` and ``DATABASE_URL``). See :mod:`yibao.stack.select` for the order of preference.
"""

from yibao.stack.select import Stack, StackInfo, start_stack

__all__ = ["Stack", "StackInfo", "start_stack"]
