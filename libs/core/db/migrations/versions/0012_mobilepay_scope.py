"""mobile pay: its orders, visits and audit belong to a deployment (``scope``), as chain visits and the counter's,
work injury's and the upload scheduler's rows do — two deployments sharing one database never see each other's

Existing rows were written by the default deployment (no topic prefix): they get the bare service name (the
column's server default, as 0007 gave fee_lines; the service writes every row's scope itself).

Also: ``recon_differences.diff_class`` holds 32 characters (the mobile reconciliation's class names, such as
``mp_refund_not_on_platform`` and ``mp_wechat_refund_not_on_wechat``, are longer than 24).

Revision ID: 0012_mobilepay_scope
Revises: 0011_uploads
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_mobilepay_scope"
down_revision = "0011_uploads"
branch_labels = None
depends_on = None

_DEFAULT = "mobilepay"  # the default deployment's scoped name of the service (yibao.mobilepay.store.SERVICE_NAME)


def upgrade() -> None:
    op.drop_index("ix_mobilepay_orders_pay_ord_id", table_name="mobilepay_orders")
    op.drop_index("ix_mobilepay_orders_visit", table_name="mobilepay_orders")
    op.drop_index("ix_mobilepay_orders_phase", table_name="mobilepay_orders")
    with op.batch_alter_table("mobilepay_orders", recreate="always") as batch:
        batch.add_column(sa.Column("scope", sa.String(64), nullable=False, server_default=_DEFAULT))
        batch.drop_constraint("uq_mobilepay_orders_channel_channel_order_id", type_="unique")
        batch.drop_constraint("pk_mobilepay_orders", type_="primary")
        batch.create_primary_key("pk_mobilepay_orders", ["scope", "order_id"])
        batch.create_unique_constraint("uq_mobilepay_orders_channel_order", ["scope", "channel", "channel_order_id"])
    op.create_index("ix_mobilepay_orders_pay_ord_id", "mobilepay_orders", ["scope", "pay_ord_id"])
    op.create_index("ix_mobilepay_orders_visit", "mobilepay_orders", ["scope", "his_visit_id"])
    op.create_index("ix_mobilepay_orders_phase", "mobilepay_orders", ["scope", "phase", "updated_at"])

    op.drop_index("ix_mobilepay_visits_patient", table_name="mobilepay_visits")
    with op.batch_alter_table("mobilepay_visits", recreate="always") as batch:
        batch.add_column(sa.Column("scope", sa.String(64), nullable=False, server_default=_DEFAULT))
        batch.drop_constraint("pk_mobilepay_visits", type_="primary")
        batch.create_primary_key("pk_mobilepay_visits", ["scope", "his_visit_id"])
    op.create_index("ix_mobilepay_visits_patient", "mobilepay_visits", ["scope", "his_patient_id"])

    op.drop_index("ix_mobilepay_audit_at", table_name="mobilepay_audit")
    op.drop_index("ix_mobilepay_audit_order", table_name="mobilepay_audit")
    with op.batch_alter_table("mobilepay_audit") as batch:
        batch.add_column(sa.Column("scope", sa.String(64), nullable=False, server_default=_DEFAULT))
    op.create_index("ix_mobilepay_audit_at", "mobilepay_audit", ["scope", "at"])
    op.create_index("ix_mobilepay_audit_order", "mobilepay_audit", ["scope", "order_id"])
    with op.batch_alter_table("recon_differences") as batch:
        batch.alter_column("diff_class", existing_type=sa.String(24), type_=sa.String(32), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("recon_differences") as batch:
        batch.alter_column("diff_class", existing_type=sa.String(32), type_=sa.String(24), existing_nullable=False)
    op.drop_index("ix_mobilepay_audit_order", table_name="mobilepay_audit")
    op.drop_index("ix_mobilepay_audit_at", table_name="mobilepay_audit")
    with op.batch_alter_table("mobilepay_audit") as batch:
        batch.drop_column("scope")
    op.create_index("ix_mobilepay_audit_at", "mobilepay_audit", ["at"])
    op.create_index("ix_mobilepay_audit_order", "mobilepay_audit", ["order_id"])

    op.drop_index("ix_mobilepay_visits_patient", table_name="mobilepay_visits")
    with op.batch_alter_table("mobilepay_visits", recreate="always") as batch:
        batch.drop_constraint("pk_mobilepay_visits", type_="primary")
        batch.create_primary_key("pk_mobilepay_visits", ["his_visit_id"])
        batch.drop_column("scope")
    op.create_index("ix_mobilepay_visits_patient", "mobilepay_visits", ["his_patient_id"])

    op.drop_index("ix_mobilepay_orders_phase", table_name="mobilepay_orders")
    op.drop_index("ix_mobilepay_orders_visit", table_name="mobilepay_orders")
    op.drop_index("ix_mobilepay_orders_pay_ord_id", table_name="mobilepay_orders")
    with op.batch_alter_table("mobilepay_orders", recreate="always") as batch:
        batch.drop_constraint("uq_mobilepay_orders_channel_order", type_="unique")
        batch.drop_constraint("pk_mobilepay_orders", type_="primary")
        batch.create_primary_key("pk_mobilepay_orders", ["order_id"])
        batch.create_unique_constraint("uq_mobilepay_orders_channel_channel_order_id", ["channel", "channel_order_id"])
        batch.drop_column("scope")
    op.create_index("ix_mobilepay_orders_phase", "mobilepay_orders", ["phase", "updated_at"])
    op.create_index("ix_mobilepay_orders_visit", "mobilepay_orders", ["his_visit_id"])
    op.create_index("ix_mobilepay_orders_pay_ord_id", "mobilepay_orders", ["pay_ord_id"])
