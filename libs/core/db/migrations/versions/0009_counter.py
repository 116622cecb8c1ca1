"""counter: 核酸 batches and their rows (settled once per person × test date × item), settlement slips, the visits
they print, the counter's audit

Revision ID: 0009_counter
Revises: 0008_mobilepay
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.schema import Id
from yibao.core.db.types import Money, ShanghaiDateTime

revision = "0009_counter"
down_revision = "0008_mobilepay"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counter_batches",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("imported_by", sa.String(128), nullable=False),
        sa.Column("imported_at", ShanghaiDateTime(), nullable=False),
        sa.Column("rows_total", sa.Integer, nullable=False),
        sa.Column("rows_bad", sa.Integer, nullable=False),
        sa.UniqueConstraint("scope", "file_sha256", name="uq_counter_batches_file"),
    )
    op.create_table(
        "counter_batch_rows",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("row_key", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(40), nullable=False),
        sa.Column("row_no", sa.Integer, nullable=False),
        sa.Column("his_visit_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("mdtrt_id", sa.String(64), nullable=True),
        sa.Column("setl_id", sa.String(64), nullable=True),
        sa.Column("medfee_sumamt", Money(), nullable=True),
        sa.Column("fund_pay_sumamt", Money(), nullable=True),
        sa.Column("psn_cash_pay", Money(), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
    )
    op.create_index("ix_counter_batch_rows_batch", "counter_batch_rows", ["scope", "batch_id", "row_no"])
    op.create_index("ix_counter_batch_rows_visit", "counter_batch_rows", ["scope", "his_visit_id"])
    op.create_table(
        "counter_batch_rejects",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("row_no", sa.Integer, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "counter_slips",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("setl_id", sa.String(64), primary_key=True),
        sa.Column("his_visit_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
    )
    op.create_index("ix_counter_slips_visit", "counter_slips", ["scope", "his_visit_id"])
    op.create_table(
        "counter_visits",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("his_visit_id", sa.String(64), primary_key=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
    )
    op.create_table(
        "counter_audit",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("at", ShanghaiDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("batch_id", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_counter_audit_at", "counter_audit", ["scope", "at"])


def downgrade() -> None:
    op.drop_index("ix_counter_audit_at", table_name="counter_audit")
    op.drop_table("counter_audit")
    op.drop_table("counter_visits")
    op.drop_index("ix_counter_slips_visit", table_name="counter_slips")
    op.drop_table("counter_slips")
    op.drop_table("counter_batch_rejects")
    op.drop_index("ix_counter_batch_rows_visit", table_name="counter_batch_rows")
    op.drop_index("ix_counter_batch_rows_batch", table_name="counter_batch_rows")
    op.drop_table("counter_batch_rows")
    op.drop_table("counter_batches")
