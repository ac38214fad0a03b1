"""member levels: the level table with benefits, each member's growth and grace period

Revision ID: 0032_member_levels
Revises: 0031_points_holds
Create Date: 2026-12-03 13:20:00

The level in force stays on users.member_level, written only when it changes (ADR 0030).
"""

import sqlalchemy as sa
from alembic import op

import mall.db

# revision identifiers, used by Alembic.
revision = "0032_member_levels"
down_revision = "0031_points_holds"
branch_labels = None
depends_on = None

UTC = mall.db.UTCDateTime(timezone=True)


def upgrade():
    op.create_table(
        "member_levels",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("discount_bp", sa.Integer(), nullable=False),
        sa.Column("multiplier_bp", sa.Integer(), nullable=False),
        sa.Column("free_shipping_above", sa.BigInteger(), nullable=True),
        sa.Column("birthday_template_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.CheckConstraint("level >= 1 AND threshold >= 0", name=op.f("ck_member_levels_level_threshold")),
        sa.CheckConstraint("discount_bp BETWEEN 0 AND 9999 AND multiplier_bp >= 0", name=op.f("ck_member_levels_benefits")),
        sa.ForeignKeyConstraint(["birthday_template_id"], ["coupon_templates.id"],
                                name=op.f("fk_member_levels_birthday_template_id_coupon_templates")),
        sa.PrimaryKeyConstraint("level", name=op.f("pk_member_levels")),
    )  # fmt: skip
    op.create_table(
        "member_growth",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("growth", sa.BigInteger(), nullable=False),
        sa.Column("below_since", UTC, nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_member_growth")),
    )


def downgrade():
    op.drop_table("member_growth")
    op.drop_table("member_levels")
