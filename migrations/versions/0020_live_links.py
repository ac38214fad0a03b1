"""live cart links

Revision ID: 0020_live_links
Revises: 0019_live_rooms
Create Date: 2026-12-03 07:00:00

A cart link for a lineup item of a live room (optionally one SKU), shared as a signed token; it expires.
"""

import sqlalchemy as sa
from alembic import op

import mall.db

revision = "0020_live_links"
down_revision = "0019_live_rooms"
branch_labels = None
depends_on = None

UTC = mall.db.UTCDateTime(timezone=True)


def upgrade():
    op.create_table(
        "live_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_live_links_created_by_users")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["live_lineup_items.id"], name=op.f("fk_live_links_item_id_live_lineup_items")
        ),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_live_links_product_id_products")),
        sa.ForeignKeyConstraint(["room_id"], ["live_rooms.id"], name=op.f("fk_live_links_room_id_live_rooms")),
        sa.ForeignKeyConstraint(["sku_id"], ["skus.id"], name=op.f("fk_live_links_sku_id_skus")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_links")),
    )
    op.create_index("ix_live_links_room", "live_links", ["room_id", "created_at"], unique=False)


def downgrade():
    op.drop_index("ix_live_links_room", table_name="live_links")
    op.drop_table("live_links")
