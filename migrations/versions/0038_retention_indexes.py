"""retention indexes: the time columns the nightly prune (mall/retention.py, ADR 0035) walks oldest first, and a
subscription grant's message (a pruned message's grant loses its reference)

Revision ID: 0038_retention_indexes
Revises: 0037_refresh_tokens
Create Date: 2026-12-03 15:40:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0038_retention_indexes"
down_revision = "0037_refresh_tokens"
branch_labels = None
depends_on = None

INDEXES = (  # (table, index, columns)
    ("idempotency_records", "ix_idempotency_records_created", ["created_at"]),
    ("messages", "ix_messages_created", ["created_at"]),
    ("subscription_grants", "ix_grants_message", ["message_id"]),
    ("webhook_events", "ix_webhook_events_received", ["received_at"]),
    ("cart_nudges", "ix_cart_nudges_created", ["created_at"]),
    ("live_room_visits", "ix_live_room_visits_at", ["visited_at"]),
    ("guide_visits", "ix_guide_visits_at", ["visited_at"]),
    ("refresh_tokens", "ix_refresh_tokens_family_expires", ["family_expires_at"]),
)
PRUNABLE = sa.text("aggregate_type <> 'order'")


def upgrade():
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("domain_events", schema=None) as batch_op:
        batch_op.create_index("ix_domain_events_prunable", ["occurred_at"], unique=False,
                              postgresql_where=PRUNABLE, sqlite_where=PRUNABLE)  # fmt: skip


def downgrade():
    with op.batch_alter_table("domain_events", schema=None) as batch_op:
        batch_op.drop_index("ix_domain_events_prunable", postgresql_where=PRUNABLE, sqlite_where=PRUNABLE)
    for table, name, _ in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
