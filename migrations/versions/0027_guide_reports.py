"""guide reports: a guide's order lines indexed by (guide_id, order_id), so the workbench walks a guide's orders
newest first without sorting their history; guide_earnings_days keeps closed days' commission for the chart

Revision ID: 0027_guide_reports
Revises: 0026_payouts
Create Date: 2026-12-03 10:00:00

Replaces ix_order_lines_guide (guide_id) by (guide_id, order_id), still partial (guided lines only): one index
serves both the placement's lookups by guide and the workbench's pages and today's-orders walk (ADR 0025).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0027_guide_reports"
down_revision = "0026_payouts"
branch_labels = None
depends_on = None

GUIDED = sa.text("guide_id IS NOT NULL")


def _index(*columns: str) -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_order_lines_guide", postgresql_where=GUIDED, sqlite_where=GUIDED)
        batch_op.create_index("ix_order_lines_guide", list(columns), unique=False, postgresql_where=GUIDED,
                              sqlite_where=GUIDED)  # fmt: skip


def upgrade():
    _index("guide_id", "order_id")
    op.create_table(
        "guide_earnings_days",
        sa.Column("guide_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["guide_id"], ["guides.id"], name=op.f("fk_guide_earnings_days_guide_id_guides")),
        sa.PrimaryKeyConstraint("guide_id", "currency", "day", name=op.f("pk_guide_earnings_days")),
    )


def downgrade():
    op.drop_table("guide_earnings_days")
    _index("guide_id")
