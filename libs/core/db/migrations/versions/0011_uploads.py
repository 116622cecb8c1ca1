"""uploads: per-record upload status (upload_records) and the platform catalogs with their versions

Revision ID: 0011_uploads
Revises: 0010_workinjury
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from yibao.core.db.schema import Id
from yibao.core.db.types import ShanghaiDateTime

revision = "0011_uploads"
down_revision = "0010_workinjury"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_records",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("lane", sa.String(80), nullable=False),
        sa.Column("record_key", sa.String(160), nullable=False),
        sa.Column("target", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("his_visit_id", sa.String(80), nullable=True),
        sa.Column("insuplc_admdvs", sa.String(6), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reason_field", sa.String(200), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("payload_hash", sa.String(64), nullable=True),
        sa.Column("source_id", sa.String(96), nullable=True),
        sa.Column("batch_no", sa.Integer(), nullable=True),
        sa.Column("msgid", sa.String(40), nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.Column("sent_revision", sa.Integer(), nullable=True),
        sa.Column("accepted_revision", sa.Integer(), nullable=True),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("occurred_at", ShanghaiDateTime(), nullable=False),
        sa.Column("due_at", ShanghaiDateTime(), nullable=False),
        sa.Column("deadline_at", ShanghaiDateTime(), nullable=True),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.Column("sent_at", ShanghaiDateTime(), nullable=True),
        sa.Column("accepted_at", ShanghaiDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("scope", "lane", "record_key", name="pk_upload_records"),
    )
    op.create_index("ix_upload_records_lane_status", "upload_records", ["scope", "lane", "status", "due_at"])
    op.create_index("ix_upload_records_open", "upload_records", ["scope", "status", "deadline_at"])
    op.create_index("ix_upload_records_visit", "upload_records", ["scope", "his_visit_id"])
    op.create_table(
        "catalog_state",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("infno", sa.String(8), nullable=False),
        sa.Column("ver", sa.String(60), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(120), nullable=True),
        sa.Column("lease_until", ShanghaiDateTime(), nullable=True),
        sa.Column("last_success_at", ShanghaiDateTime(), nullable=True),
        sa.Column("last_attempt_at", ShanghaiDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", ShanghaiDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "infno", name="pk_catalog_state"),
    )
    op.create_table(
        "catalog_versions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("infno", sa.String(8), nullable=False),
        sa.Column("ver", sa.String(60), nullable=True),
        sa.Column("prev_ver", sa.String(60), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", ShanghaiDateTime(), nullable=False),
        sa.Column("published_at", ShanghaiDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_versions"),
    )
    op.create_index("ix_catalog_versions_infno", "catalog_versions", ["scope", "infno", "id"])
    op.create_table(
        "catalog_items",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("infno", sa.String(8), nullable=False),
        sa.Column("code", sa.String(120), nullable=False),
        sa.Column("ver", sa.String(60), nullable=False),
        sa.Column("rid", sa.String(60), nullable=True),
        sa.Column("vali_flag", sa.String(3), nullable=True),
        sa.Column("row", sa.Text(), nullable=False),
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "infno", "code", name="pk_catalog_items"),
    )
    op.create_index("ix_catalog_items_version", "catalog_items", ["scope", "infno", "version_id"])


def downgrade() -> None:
    op.drop_index("ix_catalog_items_version", table_name="catalog_items")
    op.drop_table("catalog_items")
    op.drop_index("ix_catalog_versions_infno", table_name="catalog_versions")
    op.drop_table("catalog_versions")
    op.drop_table("catalog_state")
    op.drop_index("ix_upload_records_visit", table_name="upload_records")
    op.drop_index("ix_upload_records_open", table_name="upload_records")
    op.drop_index("ix_upload_records_lane_status", table_name="upload_records")
    op.drop_table("upload_records")
