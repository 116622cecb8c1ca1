"""chains: charge lines belong to a deployment (fee_lines.scope), as chain visits and calls do

Revision ID: 0007_chain_scope
Revises: 0006_reliability
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_chain_scope"
down_revision = "0006_reliability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_fee_lines_status", table_name="fee_lines")
    with op.batch_alter_table("fee_lines", recreate="always") as batch:
        batch.add_column(sa.Column("scope", sa.String(64), nullable=False, server_default="settlement"))
        batch.drop_constraint("pk_fee_lines", type_="primary")
        batch.create_primary_key("pk_fee_lines", ["scope", "visit_key", "feedetl_sn"])
    op.create_index("ix_fee_lines_status", "fee_lines", ["scope", "visit_key", "status"])


def downgrade() -> None:
    op.drop_index("ix_fee_lines_status", table_name="fee_lines")
    with op.batch_alter_table("fee_lines", recreate="always") as batch:
        batch.drop_constraint("pk_fee_lines", type_="primary")
        batch.create_primary_key("pk_fee_lines", ["visit_key", "feedetl_sn"])
        batch.drop_column("scope")
    op.create_index("ix_fee_lines_status", "fee_lines", ["visit_key", "status"])
