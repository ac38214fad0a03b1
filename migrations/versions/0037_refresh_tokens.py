"""refresh tokens: opaque, stored hashed, rotated on every use, in families (one per login)

Revision ID: 0037_refresh_tokens
Revises: 0035_guide_orders_paid
Create Date: 2026-12-03 15:30:00

ADR 0032: short-lived access tokens with refresh; reuse of a rotated refresh token revokes its family.
"""

import sqlalchemy as sa
from alembic import op

import mall.db

# revision identifiers, used by Alembic.
revision = "0037_refresh_tokens"
down_revision = "0036_audit_log"
branch_labels = None
depends_on = None

UTC = mall.db.UTCDateTime(timezone=True)


def upgrade():
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("access_jti", sa.String(length=32), nullable=False),
        sa.Column("access_expires_at", UTC, nullable=False),
        sa.Column("issued_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("family_expires_at", UTC, nullable=False),
        sa.Column("used_at", UTC, nullable=True),
        sa.Column("revoked_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_refresh_tokens_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )  # fmt: skip
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_tokens_family"), ["family"], unique=False)
        batch_op.create_index(batch_op.f("ix_refresh_tokens_user_id"), ["user_id"], unique=False)


def downgrade():
    op.drop_table("refresh_tokens")
