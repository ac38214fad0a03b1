"""messages in flight: the sweep finds sends whose lease ran out

Revision ID: 0014_message_leases
Revises: 0011_payment_safety
Create Date: 2026-12-02 19:10:00

Dispatch now commits its claim (status 'sending', send_after = the lease's end) before the provider
call. A dispatcher that dies leaves the row 'sending'; this partial index lets the sweep find those
whose lease ran out without scanning the sent history.
"""
import sqlalchemy as sa
from alembic import op


revision = '0014_message_leases'
down_revision = '0011_payment_safety'
branch_labels = None
depends_on = None

SENDING = sa.text("status = 'sending'")


def upgrade():
    op.create_index('ix_messages_leased', 'messages', ['send_after', 'id'], unique=False,
                    postgresql_where=SENDING, sqlite_where=SENDING)


def downgrade():
    op.execute("UPDATE messages SET status = 'pending' WHERE status = 'sending'")
    op.drop_index('ix_messages_leased', table_name='messages')
