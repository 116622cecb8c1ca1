"""finance: the audit table of reconciliation actions, nonces of signed commands, console sessions

Revision ID: 0005_finance_auth
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.schema import Id
from yibao.core.db.types import ShanghaiDateTime

revision = "0005_finance_auth"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recon_audit",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", ShanghaiDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=True),
        sa.Column("difference_ids", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recon_audit"),
    )
    op.create_index("ix_recon_audit_at", "recon_audit", ["at"])
    op.create_index("ix_recon_audit_run", "recon_audit", ["run_id"])
    op.create_table(
        "recon_command_nonces",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("command_id", sa.String(80), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("seen_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_recon_command_nonces"),
    )
    op.create_index("ix_recon_command_nonces_seen", "recon_command_nonces", ["seen_at"])
    op.create_table(
        "recon_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("roles", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("last_seen_at", ShanghaiDateTime(), nullable=False),
        sa.Column("expires_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_recon_sessions"),
    )
    op.create_index("ix_recon_sessions_expires", "recon_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_recon_sessions_expires", table_name="recon_sessions")
    op.drop_table("recon_sessions")
    op.drop_index("ix_recon_command_nonces_seen", table_name="recon_command_nonces")
    op.drop_table("recon_command_nonces")
    op.drop_index("ix_recon_audit_run", table_name="recon_audit")
    op.drop_index("ix_recon_audit_at", table_name="recon_audit")
    op.drop_table("recon_audit")
