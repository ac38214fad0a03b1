"""fewer indexes on the hot insert tables

Revision ID: 0007_fewer_write_indexes
Revises: 0006_group_buy
Create Date: 2026-11-25 11:20:00

Every placement inserts a domain event and an outbox message. ix_messages_user_id repeats the leading
column of ix_messages_user_sent (user_id, kind, sent_at), which serves every query by shopper, and
ix_domain_events_type serves no query (events are read by aggregate). Both only cost writes.
"""
from alembic import op


revision = '0007_fewer_write_indexes'
down_revision = '0006_group_buy'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_user_id')
    with op.batch_alter_table('domain_events', schema=None) as batch_op:
        batch_op.drop_index('ix_domain_events_type')


def downgrade():
    with op.batch_alter_table('domain_events', schema=None) as batch_op:
        batch_op.create_index('ix_domain_events_type', ['type'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_user_id', ['user_id'], unique=False)
