"""ingest order: canonical events held back until HIS changes committed before them on other tables (their own
CDC topics) are handed on — HIS commit order across tables while ingest works through a backlog

Revision ID: 0017_ingest_order
Revises: 0016_catalog_one_index
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.schema import Id
from yibao.core.db.types import ShanghaiDateTime

revision = "0017_ingest_order"
down_revision = "0016_catalog_one_index"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "ingest_held",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("producer", sa.String(64), nullable=False),
        sa.Column("order_key", sa.String(400), nullable=False),
        sa.Column("source_topic", sa.String(249), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("msg_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("held_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_held"),
    )
    op.create_index("ix_ingest_held_producer", "ingest_held", ["producer", "id"])


def downgrade() -> None:
    op.drop_index("ix_ingest_held_producer", table_name="ingest_held")
    op.drop_table("ingest_held")
