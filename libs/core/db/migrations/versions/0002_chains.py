"""chains: visit state and leases, the call journal, settlement's fee lines

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.schema import Id
from yibao.core.db.types import Money, ShanghaiDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_visits",
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("visit_key", sa.String(80), nullable=False),
        sa.Column("visit_kind", sa.String(12), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", ShanghaiDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(120), nullable=True),
        sa.Column("lease_until", ShanghaiDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("service", "visit_key", name="pk_chain_visits"),
    )
    op.create_index("ix_chain_visits_due", "chain_visits", ["service", "status", "next_attempt_at"])
    op.create_table(
        "chain_calls",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("visit_key", sa.String(80), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("infno", sa.String(10), nullable=False),
        sa.Column("msgid", sa.String(40), nullable=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("resolution", sa.String(40), nullable=True),
        sa.Column("err_msg", sa.Text(), nullable=True),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chain_calls"),
    )
    op.create_index("ix_chain_calls_visit", "chain_calls", ["service", "visit_key", "status"])
    op.create_table(
        "fee_lines",
        sa.Column("visit_key", sa.String(80), nullable=False),
        sa.Column("feedetl_sn", sa.String(30), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("init_feedetl_sn", sa.String(30), nullable=True),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("upload_msgid", sa.String(40), nullable=True),
        sa.Column("setl_id", sa.String(30), nullable=True),
        sa.Column("received_at", ShanghaiDateTime(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("visit_key", "feedetl_sn", name="pk_fee_lines"),
    )
    op.create_index("ix_fee_lines_status", "fee_lines", ["visit_key", "status"])


def downgrade() -> None:
    op.drop_index("ix_fee_lines_status", table_name="fee_lines")
    op.drop_table("fee_lines")
    op.drop_index("ix_chain_calls_visit", table_name="chain_calls")
    op.drop_table("chain_calls")
    op.drop_index("ix_chain_visits_due", table_name="chain_visits")
    op.drop_table("chain_visits")
