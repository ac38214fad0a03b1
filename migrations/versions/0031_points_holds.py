"""points redemption: holds (which lots paid for an order), the points catalogue and its redemptions

Revision ID: 0031_points_holds
Revises: 0030_member_scores
Create Date: 2026-12-03 13:00:00

ADR 0029: points reserved at placement are holds on lots; the catalogue sells coupons for points.
"""

import sqlalchemy as sa
from alembic import op

import mall.db

# revision identifiers, used by Alembic.
revision = "0031_points_holds"
down_revision = "0030_member_scores"
branch_labels = None
depends_on = None

UTC = mall.db.UTCDateTime(timezone=True)
HELD = sa.text("state = 'held'")
REFUND_LINE = sa.text("refund_line_id IS NOT NULL")


def upgrade():
    op.create_table(
        "points_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("recredited", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.CheckConstraint("amount > 0 AND recredited >= 0 AND recredited <= amount",
                           name=op.f("ck_points_holds_amounts")),
        sa.CheckConstraint("state IN ('held', 'spent', 'returned')", name=op.f("ck_points_holds_state")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_points_holds_order_id_orders")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_points_holds_user_id_users")),
        sa.ForeignKeyConstraint(["lot_id"], ["points_lots.id"], name=op.f("fk_points_holds_lot_id_points_lots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_holds")),
        sa.UniqueConstraint("key", name=op.f("uq_points_holds_key")),
    )  # fmt: skip
    with op.batch_alter_table("points_holds", schema=None) as batch_op:
        batch_op.create_index("ix_points_holds_order", ["order_id"], unique=False)
        batch_op.create_index("ix_points_holds_held", ["user_id"], unique=False, postgresql_where=HELD,
                              sqlite_where=HELD)  # fmt: skip
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.create_index("ix_points_entries_refund_line", ["refund_line_id"], unique=False,
                              postgresql_where=REFUND_LINE, sqlite_where=REFUND_LINE)  # fmt: skip

    op.create_table(
        "points_catalogue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("points_price", sa.BigInteger(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("redeemed_count", sa.Integer(), nullable=False),
        sa.Column("starts_at", UTC, nullable=True),
        sa.Column("ends_at", UTC, nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.CheckConstraint("points_price > 0 AND per_member_limit > 0", name=op.f("ck_points_catalogue_items_positive")),
        sa.CheckConstraint("stock IS NULL OR redeemed_count <= stock", name=op.f("ck_points_catalogue_items_within_stock")),
        sa.CheckConstraint("status IN ('active', 'paused', 'ended')", name=op.f("ck_points_catalogue_items_status")),
        sa.ForeignKeyConstraint(["template_id"], ["coupon_templates.id"],
                                name=op.f("fk_points_catalogue_items_template_id_coupon_templates")),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], name=op.f("fk_points_catalogue_items_brand_id_brands")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_catalogue_items")),
    )  # fmt: skip
    with op.batch_alter_table("points_catalogue_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_points_catalogue_items_brand_id"), ["brand_id"], unique=False)

    op.create_table(
        "points_catalogue_redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["points_catalogue_items.id"],
                                name=op.f("fk_points_catalogue_redemptions_item_id_points_catalogue_items")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_points_catalogue_redemptions_user_id_users")),
        sa.ForeignKeyConstraint(["coupon_id"], ["coupons.id"],
                                name=op.f("fk_points_catalogue_redemptions_coupon_id_coupons")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_catalogue_redemptions")),
        sa.UniqueConstraint("item_id", "user_id", "seq", name=op.f("uq_points_catalogue_redemptions_item_id_user_id_seq")),
        sa.UniqueConstraint("key", name=op.f("uq_points_catalogue_redemptions_key")),
    )  # fmt: skip


def downgrade():
    op.drop_table("points_catalogue_redemptions")
    with op.batch_alter_table("points_catalogue_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_catalogue_items_brand_id"))
    op.drop_table("points_catalogue_items")
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_points_entries_refund_line", postgresql_where=REFUND_LINE, sqlite_where=REFUND_LINE)
    with op.batch_alter_table("points_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_points_holds_held", postgresql_where=HELD, sqlite_where=HELD)
        batch_op.drop_index("ix_points_holds_order")
    op.drop_table("points_holds")
