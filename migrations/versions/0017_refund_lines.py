"""refunds per order line on every path: the refund_lines ledger and unassigned (dashboard) refunds

Revision ID: 0017_refund_lines
Revises: 0014_message_leases
Create Date: 2026-12-03 06:20:00

refund_lines holds every part of every refund per order line (or a sub-order's shipping fee); the
order_lines.refunded_* and sub_orders/orders.refunded_total columns are its sums (ADR 0012).
unassigned_refunds parks refunds made in the provider's dashboard that an operator must assign to lines.

Existing data is brought to the same truth: each line's refunds so far become one ledger row, a sub-order's
refunded_total beyond its lines becomes a shipping row; group-buy refunds (written only on the order before)
refund every line of their order; dashboard refunds (reason 'external', written only on the order) are parked.
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

import mall.db


revision = '0017_refund_lines'
down_revision = '0016_settlement'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('refund_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('sub_order_id', sa.Integer(), nullable=False),
    sa.Column('order_line_id', sa.Integer(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.Column('created_at', mall.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount >= 0 AND quantity >= 0', name=op.f('ck_refund_lines_non_negative')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_refund_lines_order_id_orders')),
    sa.ForeignKeyConstraint(['order_line_id'], ['order_lines.id'], name=op.f('fk_refund_lines_order_line_id_order_lines')),
    sa.ForeignKeyConstraint(['sub_order_id'], ['sub_orders.id'], name=op.f('fk_refund_lines_sub_order_id_sub_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_lines'))
    )
    with op.batch_alter_table('refund_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_lines_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_lines_order_line_id'), ['order_line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refund_lines_sub_order_id'), ['sub_order_id'], unique=False)
    op.create_table('unassigned_refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('assignment', mall.db.JSONType, nullable=True),
    sa.Column('created_at', mall.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('assigned_at', mall.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('assigned_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_unassigned_refunds_order_id_orders')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_unassigned_refunds_payment_id_payments')),
    sa.ForeignKeyConstraint(['refund_id'], ['refunds.id'], name=op.f('fk_unassigned_refunds_refund_id_refunds')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unassigned_refunds')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_unassigned_refunds_refund_id'))
    )
    with op.batch_alter_table('unassigned_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unassigned_refunds_order_id'), ['order_id'], unique=False)
    backfill(op.get_bind())


def backfill(conn):
    """Existing refunds into the ledger (tests/test_refund_backfill.py runs it on rows written the old way)."""
    now = datetime.now(timezone.utc)
    run = lambda sql, **params: conn.execute(sa.text(sql), params)  # noqa: E731
    # Group-buy refunds returned the whole order but were written on the order only: every line was refunded.
    group = "SELECT order_id FROM refunds WHERE reason IN ('group_failed', 'left_group')"
    run(f"UPDATE order_lines SET refunded_quantity = quantity, refunded_amount = payable, requested_quantity = 0 "
        f"WHERE order_id IN ({group})")
    run(f"UPDATE sub_orders SET refunded_total = payable_total WHERE order_id IN ({group})")
    # Dashboard refunds were written on the order only: parked for an operator, the order's total is its lines'.
    run("INSERT INTO unassigned_refunds (order_id, payment_id, refund_id, amount, currency, status, created_at) "
        "SELECT order_id, payment_id, id, amount, currency, 'open', :now FROM refunds WHERE reason = 'external'",
        now=now)
    run("UPDATE orders SET refunded_total = (SELECT COALESCE(SUM(s.refunded_total), 0) FROM sub_orders s "
        "WHERE s.order_id = orders.id)")
    # The ledger: one row per refunded line, one per sub-order's refunded shipping.
    run("INSERT INTO refund_lines (order_id, sub_order_id, order_line_id, quantity, amount, reason, reference, "
        "created_at) SELECT order_id, sub_order_id, id, refunded_quantity, refunded_amount, 'before_ledger', "
        "'0017_refund_lines', :now FROM order_lines WHERE refunded_quantity > 0 OR refunded_amount > 0", now=now)
    run("INSERT INTO refund_lines (order_id, sub_order_id, order_line_id, quantity, amount, reason, reference, "
        "created_at) SELECT s.order_id, s.id, NULL, 0, s.refunded_total - (SELECT COALESCE(SUM(l.refunded_amount), "
        "0) FROM order_lines l WHERE l.sub_order_id = s.id), 'before_ledger', '0017_refund_lines', :now "
        "FROM sub_orders s WHERE s.refunded_total > (SELECT COALESCE(SUM(l.refunded_amount), 0) "
        "FROM order_lines l WHERE l.sub_order_id = s.id)", now=now)


def downgrade():
    with op.batch_alter_table('unassigned_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unassigned_refunds_order_id'))
    op.drop_table('unassigned_refunds')
    with op.batch_alter_table('refund_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_lines_sub_order_id'))
        batch_op.drop_index(batch_op.f('ix_refund_lines_order_line_id'))
        batch_op.drop_index(batch_op.f('ix_refund_lines_order_id'))
    op.drop_table('refund_lines')
