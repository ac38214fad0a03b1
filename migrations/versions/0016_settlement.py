"""settlement: sub_orders.settled_at, the count of open after-sale cases, the sweep's partial index

Revision ID: 0016_settlement
Revises: 0014_message_leases
Create Date: 2026-12-03 06:10:00

sub_orders.open_after_sales counts the after-sale cases not decided yet (filled from the requests open now);
the settlement sweep settles a sub-order only at 0, and a request adds one only while settled_at is NULL,
both on the sub-order's row (ADR 0011). The full index on after_sale_deadline becomes a partial one on the
sub-orders still to settle, which is all the sweep reads.
"""
from alembic import op
import sqlalchemy as sa
import mall.db


revision = '0016_settlement'
down_revision = '0014_message_leases'
branch_labels = None
depends_on = None

UNSETTLED = sa.text("settled_at IS NULL AND after_sale_deadline IS NOT NULL")


def upgrade():
    with op.batch_alter_table('sub_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_after_sales', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('settled_at', mall.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint('open_after_sales', 'open_after_sales >= 0')
        batch_op.drop_index('ix_sub_orders_after_sale_deadline')
        batch_op.create_index('ix_sub_orders_settle_due', ['after_sale_deadline'], unique=False,
                              postgresql_where=UNSETTLED, sqlite_where=UNSETTLED)
    op.execute("UPDATE sub_orders SET open_after_sales = (SELECT count(*) FROM after_sales "
               "WHERE after_sales.sub_order_id = sub_orders.id AND after_sales.status = 'requested')")


def downgrade():
    with op.batch_alter_table('sub_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_sub_orders_settle_due', sqlite_where=UNSETTLED, postgresql_where=UNSETTLED)
        batch_op.create_index('ix_sub_orders_after_sale_deadline', ['after_sale_deadline'], unique=False)
        batch_op.drop_constraint(op.f('ck_sub_orders_open_after_sales'), type_='check')
        batch_op.drop_column('settled_at')
        batch_op.drop_column('open_after_sales')
