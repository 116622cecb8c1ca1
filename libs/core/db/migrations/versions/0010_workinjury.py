"""work injury: the deadline watch of workinjury-sync (workinjury_watch)

Revision ID: 0010_workinjury
Revises: 0009_counter
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.types import ShanghaiDateTime

revision = "0010_workinjury"
down_revision = "0009_counter"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workinjury_watch",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("case_key", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("item", sa.String(10), nullable=False),
        sa.Column("since", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "case_key", "kind", "item", name="pk_workinjury_watch"),
    )
    op.create_index("ix_workinjury_watch_scope", "workinjury_watch", ["scope", "kind", "item"])


def downgrade() -> None:
    op.drop_index("ix_workinjury_watch_scope", table_name="workinjury_watch")
    op.drop_table("workinjury_watch")
