"""Re-sealing stored personal data under the current data key: ``yibao data reencrypt``.

After a new key was put first in ``YIBAO_DATA_KEYS`` (old keys kept after it), every sealed column listed in
:data:`SEALED_COLUMNS` is read row by row and each value sealed under an old key — or still plain, from before
encryption was switched on — is sealed again under the current key. Run it until it reports nothing left; then
the old keys can be removed. Values it cannot open (a key missing) are counted, never changed.

Every column the bridge seals (every ``DataCipher.seal`` of a stored value, wherever it is called) is listed here,
so that the command — which runs in ``yibao data`` without importing the services — re-seals all of them; a test
(tests/integration/core/test_reseal_columns.py) finds the sealing calls in the source and fails on one whose column
is not listed. :func:`register` remains for parts that add a column at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Engine, Table, and_, select, tuple_, update

from yibao.core.atrest import SealedDataError
from yibao.core.db.schema import (
    chain_visits,
    counter_batch_rows,
    counter_slips,
    counter_visits,
    ingest_held,
    outbox,
    parked_work,
    rx_feedback,
    upload_records,
)
from yibao.core.deployment import Deployment

__all__ = ["SealedColumn", "SEALED_COLUMNS", "register", "reseal", "ResealReport"]


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    column: str
    #: the column naming the deployment's scoped producer/service (rows of other deployments are left alone)
    scope: str | None = None

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"


SEALED_COLUMNS: list[SealedColumn] = [
    SealedColumn(outbox, "payload", "producer"),  # messages waiting for the relay (yibao.core.messaging.outbox)
    SealedColumn(parked_work, "payload", "service"),  # dead letters and parked rows (messaging.deadletter)
    SealedColumn(chain_visits, "state", "service"),  # chain states: settlement, upload lanes, mobile pay (chains)
    SealedColumn(upload_records, "payload", "scope"),  # records HIS gave the upload scheduler
    SealedColumn(rx_feedback, "payload", "scope"),  # 7102/7103 as the prescription centre posted them
    SealedColumn(counter_batch_rows, "payload", "scope"),  # the counter's imported batch rows
    SealedColumn(counter_slips, "payload", "scope"),  # the counter's settlement slips
    SealedColumn(counter_visits, "payload", "scope"),  # the counter's slip headers (names)
    SealedColumn(ingest_held, "payload", "producer"),  # ingest's events waiting for HIS commit order
]


def register(column: SealedColumn) -> None:
    if all(c.name != column.name for c in SEALED_COLUMNS):
        SEALED_COLUMNS.append(column)


@dataclass
class ResealReport:
    resealed: int = 0
    current: int = 0
    unreadable: int = 0


def reseal(engine: Engine, *, dry_run: bool = False, batch: int = 500) -> dict[str, ResealReport]:
    """Seal every stored value of :data:`SEALED_COLUMNS` under the current key; returns what was done per column."""
    deployment = Deployment.of(engine)
    cipher = deployment.cipher
    reports: dict[str, ResealReport] = {}
    for sealed in SEALED_COLUMNS:
        report = reports[sealed.name] = ResealReport()
        table = sealed.table
        value_col: Column = table.c[sealed.column]
        keys = list(table.primary_key.columns)
        condition = value_col.is_not(None)
        if sealed.scope and deployment.prefix:
            condition = and_(condition, table.c[sealed.scope].startswith(deployment.prefix, autoescape=True))
        last: tuple | None = None
        while True:
            query = select(*keys, value_col).where(condition).order_by(*keys).limit(batch)
            if last is not None:
                query = query.where(tuple_(*keys) > tuple_(*last))
            with engine.begin() as conn:
                rows = conn.execute(query).all()
                if not rows:
                    break
                for row in rows:
                    pk = tuple(row[:len(keys)])
                    stored = row[len(keys)]
                    if not cipher.needs_reseal(stored):
                        report.current += 1
                        continue
                    try:
                        fresh = cipher.reseal(stored)
                    except SealedDataError:
                        report.unreadable += 1
                        continue
                    report.resealed += 1
                    if not dry_run:
                        conn.execute(update(table).where(and_(*(k == v for k, v in zip(keys, pk))))
                                     .values({sealed.column: fresh}))
                last = tuple(rows[-1][:len(keys)])
    return reports
