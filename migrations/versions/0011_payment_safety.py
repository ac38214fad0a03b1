"""after-sale units held by open requests; the installation id; payment anomalies

Revision ID: 0011_payment_safety
Revises: 0007_fewer_write_indexes
Create Date: 2026-12-02 19:00:00

order_lines.requested_quantity counts the units in open after-sale requests, taken by a conditional UPDATE
(two concurrent requests for the same units: the second is refused). It is filled from the requests open now.
installation holds one random id that scopes the payment provider's idempotency keys to this database.
payment_anomalies records money that did not match (for operators).
"""
import json
import secrets
from datetime import datetime, timezone
from collections import Counter

from alembic import op
import sqlalchemy as sa
import mall.db
from sqlalchemy.dialects import postgresql
from sqlalchemy import Text


revision = '0011_payment_safety'
down_revision = '0007_fewer_write_indexes'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_quantity', sa.Integer(), server_default=sa.text('0'), nullable=False))
    _hold_units_of_open_requests()
    op.create_table('installation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', mall.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_installation'))
    )
    # This database's id, made once here (mall.payments.services.installation_id writes one if it is missing).
    installation = sa.table('installation', sa.column('id', sa.Integer()), sa.column('installation_id', sa.String()),
                            sa.column('created_at', mall.db.UTCDateTime(timezone=True)))
    op.bulk_insert(installation, [{'id': 1, 'installation_id': secrets.token_hex(16),
                                   'created_at': datetime.now(timezone.utc)}])
    op.create_table('payment_anomalies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=True),
    sa.Column('expected_amount', sa.BigInteger(), nullable=True),
    sa.Column('expected_currency', sa.String(length=3), nullable=True),
    sa.Column('received_amount', sa.BigInteger(), nullable=True),
    sa.Column('received_currency', sa.String(length=3), nullable=True),
    sa.Column('details', JSON, nullable=False),
    sa.Column('created_at', mall.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_payment_anomalies_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_anomalies'))
    )
    with op.batch_alter_table('payment_anomalies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_anomalies_order_id'), ['order_id'], unique=False)


def _hold_units_of_open_requests():
    """Requests open before this revision hold their units too (their lines are JSON, summed here)."""
    conn = op.get_bind()
    held = Counter()
    for (lines,) in conn.execute(sa.text("SELECT lines FROM after_sales WHERE status = 'requested'")):
        for item in json.loads(lines) if isinstance(lines, str) else lines:
            held[item['order_line_id']] += item['quantity']
    update = sa.text("UPDATE order_lines SET requested_quantity = :q WHERE id = :id")
    for line_id, quantity in held.items():
        conn.execute(update, {"q": quantity, "id": line_id})


def downgrade():
    with op.batch_alter_table('payment_anomalies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_anomalies_order_id'))
    op.drop_table('payment_anomalies')
    op.drop_table('installation')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('requested_quantity')
