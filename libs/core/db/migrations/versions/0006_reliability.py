"""reliability: outbox rows the broker refused are marked parked; inbox rows findable by age (retention)

Revision ID: 0006_reliability
Revises: 0005_finance_auth
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.types import ShanghaiDateTime

revision = "0006_reliability"
down_revision = "0005_finance_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("parked_at", ShanghaiDateTime(), nullable=True))
    op.create_index("ix_inbox_received_at", "inbox", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_received_at", table_name="inbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("parked_at")
