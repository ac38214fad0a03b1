"""audit log: an append-only row per staff change to a watched column (ADR 0034)

Revision ID: 0036_audit_log
Revises: 0035_guide_orders_paid
Create Date: 2026-12-03 15:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import mall.db

# revision identifiers, used by Alembic.
revision = "0036_audit_log"
down_revision = "0035_guide_orders_paid"
branch_labels = None
depends_on = None


def upgrade():
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("before", json, nullable=True),
        sa.Column("after", json, nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("at", mall.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_brand_id"), ["brand_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_object_type"), ["object_type", "object_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_actor_id"), ["actor_id", "id"], unique=False)


def downgrade():
    op.drop_table("audit_log")
