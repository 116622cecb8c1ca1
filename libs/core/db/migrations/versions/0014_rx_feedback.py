"""rx feedback: what the prescription centre posts back about uploaded prescriptions (7102 审核结果, 7103 购药结果),
and the platform's key of an uploaded record (7101's hi_rxno) to find the record by

Revision ID: 0014_rx_feedback
Revises: 0013_catalog_apply
Create Date: 2026-12-12
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from yibao.core.db.types import Money, ShanghaiDateTime

revision = "0014_rx_feedback"
down_revision = "0013_catalog_apply"
branch_labels = None
depends_on = None

#: lanes whose answer names the record by an id of the platform's (lanes.yaml ``platform_key``)
_PLATFORM_KEYS = {"7101": "hi_rxno"}


def upgrade() -> None:
    with op.batch_alter_table("upload_records") as batch:
        batch.add_column(sa.Column("platform_key", sa.String(60), nullable=True))
    op.create_index("ix_upload_records_platform_key", "upload_records", ["scope", "kind", "platform_key"])
    _backfill()
    op.create_table(
        "rx_feedback",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("msgid", sa.String(40), nullable=False),
        sa.Column("infno", sa.String(8), nullable=False),
        sa.Column("hi_rxno", sa.String(30), nullable=False),
        sa.Column("lane", sa.String(80), nullable=False),
        sa.Column("record_key", sa.String(160), nullable=False),
        sa.Column("his_visit_id", sa.String(80), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("pharmacy_code", sa.String(50), nullable=True),
        sa.Column("occurred_at", ShanghaiDateTime(), nullable=False),
        sa.Column("received_at", ShanghaiDateTime(), nullable=False),
        sa.Column("fund_pay_sumamt", Money(), nullable=True),
        sa.Column("psn_part_amt", Money(), nullable=True),
        sa.Column("acct_pay", Money(), nullable=True),
        sa.Column("psn_cash_pay", Money(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("scope", "msgid", name="pk_rx_feedback"),
    )
    op.create_index("ix_rx_feedback_record", "rx_feedback", ["scope", "lane", "record_key", "received_at"])
    op.create_index("ix_rx_feedback_hi_rxno", "rx_feedback", ["scope", "hi_rxno"])


def _backfill() -> None:
    """Records uploaded before this revision: their platform key from the receipt they keep (not sealed)."""
    conn = op.get_bind()
    records = sa.table("upload_records", sa.column("scope"), sa.column("lane"), sa.column("record_key"),
                       sa.column("kind"), sa.column("receipt"), sa.column("platform_key"))
    for kind, field in _PLATFORM_KEYS.items():
        rows = conn.execute(sa.select(records.c.scope, records.c.lane, records.c.record_key, records.c.receipt)
                            .where(records.c.kind == kind, records.c.receipt.is_not(None))).all()
        for scope, lane, key, receipt in rows:
            try:
                value = json.loads(receipt).get(field)
            except (ValueError, AttributeError):
                continue
            if value:
                conn.execute(records.update().where(records.c.scope == scope, records.c.lane == lane,
                                                    records.c.record_key == key).values(platform_key=str(value)[:60]))


def downgrade() -> None:
    op.drop_index("ix_rx_feedback_hi_rxno", table_name="rx_feedback")
    op.drop_index("ix_rx_feedback_record", table_name="rx_feedback")
    op.drop_table("rx_feedback")
    op.drop_index("ix_upload_records_platform_key", table_name="upload_records")
    with op.batch_alter_table("upload_records") as batch:
        batch.drop_column("platform_key")
