"""catalog apply: catalog_items keeps one index, its primary key (scope, infno, code)

Every row a 13xx update writes (half a million for 1301 西药) was entered in two indexes: the primary key and
(version_id, code), which only the publisher used (a version's rows in code order). The publisher now walks the
primary key in code order and keeps the version's rows — once over the catalog per version published, off the
apply path — and each applied row costs one index entry instead of two.

Revision ID: 0016_catalog_one_index
Revises: 0015_calls_deployment
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0016_catalog_one_index"
down_revision = "0015_calls_deployment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_catalog_items_version_code", table_name="catalog_items")


def downgrade() -> None:
    op.create_index("ix_catalog_items_version_code", "catalog_items", ["version_id", "code"])
