"""catalog apply: the index of a catalog version's rows is (version_id, code) instead of (scope, infno, version_id)

A 13xx file is applied by deleting the rows in force of each batch's codes (one primary-key probe a code) and
COPYing the batch in. With an index whose prefix was (scope, infno) too, the planner — on a catalog the statistics
do not know yet, such as the first half-million rows of 1301 — took that index and filtered every row of the catalog
for each code. (version_id, code) serves what the index is for (a version's rows in code order, for publishing)
and leaves the primary key the only way to a code.

Revision ID: 0013_catalog_apply
Revises: 0012_mobilepay_scope
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0013_catalog_apply"
down_revision = "0012_mobilepay_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_catalog_items_version", table_name="catalog_items")
    op.create_index("ix_catalog_items_version_code", "catalog_items", ["version_id", "code"])


def downgrade() -> None:
    op.drop_index("ix_catalog_items_version_code", table_name="catalog_items")
    op.create_index("ix_catalog_items_version", "catalog_items", ["scope", "infno", "version_id"])
