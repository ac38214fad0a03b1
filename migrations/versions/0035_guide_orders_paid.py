"""guide orders paid: guide_order_signals indexed by (guide_id, paid_at), so a guide's paid orders of today are a
range count of one index instead of a walk over their order lines and orders

Revision ID: 0035_guide_orders_paid
Revises: 0032_member_levels
Create Date: 2026-12-03 13:15:00

Every paid order attributed to a guide gets one signal row per guide at earn time (ADR 0024), with the order's
payment time: the workbench counts those (ADR 0025).
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0035_guide_orders_paid"
down_revision = "0032_member_levels"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("guide_order_signals", schema=None) as batch_op:
        batch_op.create_index("ix_guide_order_signals_paid", ["guide_id", "paid_at"], unique=False)


def downgrade():
    with op.batch_alter_table("guide_order_signals", schema=None) as batch_op:
        batch_op.drop_index("ix_guide_order_signals_paid")
