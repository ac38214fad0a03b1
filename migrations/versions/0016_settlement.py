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
down_revision = '0015_bundle_lines'
branch_labels = None
depends_on = None

UNSETTLED = sa.text("settled_at IS NULL AND after_sale_deadline IS NOT NULL")


def upgrade():
    # Plain ALTERs, no batch: on SQLite a batch would copy sub_orders and drop the old table, which the rows of
    # order_lines and after_sales that point at it forbid. The CHECK goes in where ALTER can add one.
    op.add_column('sub_orders', sa.Column('open_after_sales', sa.Integer(), server_default=sa.text('0'),
                                          nullable=False))
    op.add_column('sub_orders', sa.Column('settled_at', mall.db.UTCDateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.create_check_constraint('open_after_sales', 'sub_orders', 'open_after_sales >= 0')
    op.drop_index('ix_sub_orders_after_sale_deadline', table_name='sub_orders')
    op.create_index('ix_sub_orders_settle_due', 'sub_orders', ['after_sale_deadline'], unique=False,
                    postgresql_where=UNSETTLED, sqlite_where=UNSETTLED)
    op.execute("UPDATE sub_orders SET open_after_sales = (SELECT count(*) FROM after_sales "
               "WHERE after_sales.sub_order_id = sub_orders.id AND after_sales.status = 'requested')")


def downgrade():
    op.drop_index('ix_sub_orders_settle_due', table_name='sub_orders', sqlite_where=UNSETTLED,
                  postgresql_where=UNSETTLED)
    op.create_index('ix_sub_orders_after_sale_deadline', 'sub_orders', ['after_sale_deadline'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(op.f('ck_sub_orders_open_after_sales'), 'sub_orders', type_='check')
    op.drop_column('sub_orders', 'settled_at')  # SQLite 3.35+ drops a column in place
    op.drop_column('sub_orders', 'open_after_sales')
