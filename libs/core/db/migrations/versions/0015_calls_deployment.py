"""platform_calls.deployment: the deployment (topic prefix) whose connection logged a call, so that two deployments
sharing one database reconcile only their own national calls (3201/3202, repairs: yibao.reconciliation.truth).

Existing rows were written by the default deployment (no topic prefix): they get "" (the column's server default;
the call log writes every row's deployment itself).

Revision ID: 0015_calls_deployment
Revises: 0014_rx_feedback
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_calls_deployment"
down_revision = "0014_rx_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("platform_calls") as batch:
        batch.add_column(sa.Column("deployment", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("platform_calls") as batch:
        batch.drop_column("deployment")
