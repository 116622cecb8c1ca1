"""chains v2: a visit's open call on its own row (no journal query per unit of work)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_visits") as batch:
        batch.add_column(sa.Column("open_call", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
    # a call journalled by the engine before this version and never ended is open
    op.execute(
        "UPDATE chain_visits SET open_call = (SELECT min(c.id) FROM chain_calls c WHERE c.service = chain_visits.service"
        " AND c.visit_key = chain_visits.visit_key AND c.purpose = 'step' AND c.status IN ('sent', 'unknown'))"
    )


def downgrade() -> None:
    with op.batch_alter_table("chain_visits") as batch:
        batch.drop_column("open_call")
