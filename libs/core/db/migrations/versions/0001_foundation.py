"""foundation: inbox, outbox, parked work, platform call log, msgid slots, 9001 sessions

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.schema import Id
from yibao.core.db.types import ShanghaiDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(96), nullable=False),
        sa.Column("received_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("producer", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("msg_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("published_at", ShanghaiDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_pending", "outbox", ["producer", "published_at", "id"])
    op.create_table(
        "parked_work",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source_topic", sa.String(249), nullable=True),
        sa.Column("source_partition", sa.Integer(), nullable=True),
        sa.Column("source_offset", sa.BigInteger(), nullable=True),
        sa.Column("msg_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("replayed_at", ShanghaiDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_parked_work"),
    )
    op.create_index("ix_parked_work_open", "parked_work", ["service", "replayed_at"])
    op.create_table(
        "platform_calls",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("infno", sa.String(10), nullable=False),
        sa.Column("msgid", sa.String(40), nullable=True),
        sa.Column("visit_key", sa.String(80), nullable=True),
        sa.Column("started_at", ShanghaiDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("infcode", sa.String(10), nullable=True),
        sa.Column("err_msg", sa.Text(), nullable=True),
        sa.Column("input_masked", sa.Text(), nullable=True),
        sa.Column("output_masked", sa.Text(), nullable=True),
        sa.Column("omsgid", sa.String(40), nullable=True),
        sa.Column("oinfno", sa.String(10), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_platform_calls"),
        sa.UniqueConstraint("msgid", name="uq_platform_calls_msgid"),
    )
    op.create_index("ix_platform_calls_visit", "platform_calls", ["visit_key"])
    op.create_index("ix_platform_calls_started", "platform_calls", ["started_at"])
    op.create_table(
        "msgid_slots",
        sa.Column("fixmedins_code", sa.String(12), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("leased_at", ShanghaiDateTime(), nullable=False),
        sa.Column("heartbeat_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fixmedins_code", "slot", name="pk_msgid_slots"),
    )
    op.create_table(
        "signin_sessions",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("fixmedins_code", sa.String(12), nullable=False),
        sa.Column("opter", sa.String(30), nullable=False),
        sa.Column("sign_no", sa.String(30), nullable=False),
        sa.Column("signed_in_at", ShanghaiDateTime(), nullable=False),
        sa.Column("expires_at", ShanghaiDateTime(), nullable=False),
        sa.Column("signed_out_at", ShanghaiDateTime(), nullable=True),
        sa.Column("owner", sa.String(120), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_signin_sessions"),
    )
    op.create_index(
        "ix_signin_sessions_current", "signin_sessions", ["fixmedins_code", "opter", "signed_out_at"]
    )


def downgrade() -> None:
    for index, table in (
        ("ix_signin_sessions_current", "signin_sessions"),
        ("ix_platform_calls_started", "platform_calls"),
        ("ix_platform_calls_visit", "platform_calls"),
        ("ix_parked_work_open", "parked_work"),
        ("ix_outbox_pending", "outbox"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("signin_sessions", "msgid_slots", "platform_calls", "parked_work", "outbox", "inbox"):
        op.drop_table(table)
