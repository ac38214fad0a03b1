"""payment provider calls claimed before they are made: intents in gateway_calls, refunds on their own row

Revision ID: 0018_gateway_calls
Revises: 0014_message_leases
Create Date: 2026-12-03 06:00:00

PaymentIntents and refunds are now claim -> commit -> call -> record (ADR 0014). gateway_calls holds a
PaymentIntent creation from its claim until its answer is recorded; refunds gain the same bookkeeping
(attempts, retry_at, last_error) and a 'claimed' status. The partial indexes let the sweep find calls whose
caller died (lease run out) without scanning the history.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import mall.db


revision = '0018_gateway_calls'
down_revision = '0017_refund_lines'
branch_labels = None
depends_on = None

CLAIMED = sa.text("status = 'claimed'")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade():
    op.create_table('gateway_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('details', JSON, nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('retry_at', mall.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('reference', sa.String(length=255), nullable=True),
    sa.Column('created_at', mall.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mall.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_gateway_calls_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_calls')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_gateway_calls_idempotency_key'))
    )
    op.create_index(op.f('ix_gateway_calls_order_id'), 'gateway_calls', ['order_id'], unique=False)
    op.create_index('ix_gateway_calls_claimed', 'gateway_calls', ['retry_at', 'id'], unique=False,
                    postgresql_where=CLAIMED, sqlite_where=CLAIMED)
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('retry_at', mall.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=300), nullable=True))
    op.create_index('ix_refunds_claimed', 'refunds', ['retry_at', 'id'], unique=False,
                    postgresql_where=CLAIMED, sqlite_where=CLAIMED)


def downgrade():
    op.drop_index('ix_refunds_claimed', table_name='refunds')
    op.execute("UPDATE refunds SET status = 'pending' WHERE status = 'claimed'")
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('retry_at')
        batch_op.drop_column('attempts')
    op.drop_index('ix_gateway_calls_claimed', table_name='gateway_calls')
    op.drop_index(op.f('ix_gateway_calls_order_id'), table_name='gateway_calls')
    op.drop_table('gateway_calls')
