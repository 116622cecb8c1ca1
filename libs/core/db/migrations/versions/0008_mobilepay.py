"""mobile pay: the order index (channel order → platform order, payOrdId → visit), the visits by patient with
their pending fees, the audit of channel requests, and the scope of reconciliation runs (national | mobile)

Revision ID: 0006_mobilepay
Revises: 0005_finance_auth
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.schema import Id
from yibao.core.db.types import Money, ShanghaiDateTime

revision = "0008_mobilepay"
down_revision = "0007_chain_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mobilepay_orders",
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("his_visit_id", sa.String(80), nullable=False),
        sa.Column("his_patient_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("channel_order_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(6), nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("pay_ord_id", sa.String(40), nullable=True),
        sa.Column("med_org_ord", sa.String(40), nullable=True),
        sa.Column("total", Money(), nullable=False),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_mobilepay_orders"),
        sa.UniqueConstraint("channel", "channel_order_id", name="uq_mobilepay_orders_channel_channel_order_id"),
    )
    op.create_index("ix_mobilepay_orders_pay_ord_id", "mobilepay_orders", ["pay_ord_id"])
    op.create_index("ix_mobilepay_orders_visit", "mobilepay_orders", ["his_visit_id"])
    op.create_index("ix_mobilepay_orders_phase", "mobilepay_orders", ["phase", "updated_at"])
    op.create_table(
        "mobilepay_visits",
        sa.Column("his_visit_id", sa.String(80), nullable=False),
        sa.Column("his_patient_id", sa.String(64), nullable=False),
        sa.Column("pending_lines", sa.Integer(), nullable=False),
        sa.Column("pending_total", Money(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("his_visit_id", name="pk_mobilepay_visits"),
    )
    op.create_index("ix_mobilepay_visits_patient", "mobilepay_visits", ["his_patient_id"])
    op.create_table(
        "mobilepay_audit",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", ShanghaiDateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("operator", sa.String(64), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mobilepay_audit"),
    )
    op.create_index("ix_mobilepay_audit_at", "mobilepay_audit", ["at"])
    op.create_index("ix_mobilepay_audit_order", "mobilepay_audit", ["order_id"])
    with op.batch_alter_table("recon_runs") as batch:  # the daily mobile-pay reconciliation's runs beside 3201/3202
        batch.add_column(sa.Column("scope", sa.String(12), nullable=False, server_default="national"))


def downgrade() -> None:
    with op.batch_alter_table("recon_runs") as batch:
        batch.drop_column("scope")
    op.drop_index("ix_mobilepay_audit_order", table_name="mobilepay_audit")
    op.drop_index("ix_mobilepay_audit_at", table_name="mobilepay_audit")
    op.drop_table("mobilepay_audit")
    op.drop_index("ix_mobilepay_visits_patient", table_name="mobilepay_visits")
    op.drop_table("mobilepay_visits")
    op.drop_index("ix_mobilepay_orders_phase", table_name="mobilepay_orders")
    op.drop_index("ix_mobilepay_orders_visit", table_name="mobilepay_orders")
    op.drop_index("ix_mobilepay_orders_pay_ord_id", table_name="mobilepay_orders")
    op.drop_table("mobilepay_orders")
