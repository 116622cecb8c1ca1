"""catalog apply: catalog_items pages filled to half (fillfactor 50), so a row replaced by an update is updated in place

An update of a catalog replaces the rows in force of its codes. Deleting each row and inserting its new version
cost a new primary-key entry per row (and the index's futile clean-up passes over the dead entries of the same
keys); an UPDATE whose new version fits in the row's own page is a heap-only tuple update (HOT): no index entry at
all. Pages filled to half by inserts leave the room for one new version of every row in them; the old version is
pruned by a later visit. Affects pages written from now on (the next full download writes them so).

Revision ID: 0018_catalog_hot_updates
Revises: 0017_ingest_order
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0018_catalog_hot_updates"
down_revision = "0017_ingest_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE catalog_items SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE catalog_items RESET (fillfactor)")
