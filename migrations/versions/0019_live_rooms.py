"""live rooms, their lineup and pin segments

Revision ID: 0019_live_rooms
Revises: 0014_message_leases
Create Date: 2026-12-03 06:10:00

A room's pin segments never overlap. Both backends: at most one open segment per room (partial unique
index). PostgreSQL, when the btree_gist extension can be had: also an exclusion constraint over each room's
[started_at, ended_at) ranges, so no two segments overlap whatever wrote them. Without btree_gist (a managed
database that does not offer it) the partial index and the services' locking stand alone.
"""
import logging

import sqlalchemy as sa
from alembic import op

import mall.db

revision = '0019_live_rooms'
down_revision = '0018_gateway_calls'
branch_labels = None
depends_on = None

OPEN = sa.text("ended_at IS NULL")
UTC = mall.db.UTCDateTime(timezone=True)
EXCLUSION = "ex_live_pin_segments_no_overlap"
log = logging.getLogger("alembic.runtime.migration")


def upgrade():
    op.create_table('live_rooms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=False),
    sa.Column('host_user_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('cover_url', sa.String(length=500), nullable=False),
    sa.Column('scheduled_start', UTC, nullable=False),
    sa.Column('scheduled_end', UTC, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stream_ref', sa.String(length=500), nullable=True),
    sa.Column('started_at', UTC, nullable=True),
    sa.Column('ended_at', UTC, nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.CheckConstraint('scheduled_end > scheduled_start', name=op.f('ck_live_rooms_window')),
    sa.CheckConstraint("status IN ('scheduled', 'live', 'ended', 'cancelled')", name=op.f('ck_live_rooms_status')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_live_rooms_brand_id_brands')),
    sa.ForeignKeyConstraint(['host_user_id'], ['users.id'], name=op.f('fk_live_rooms_host_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_rooms'))
    )
    op.create_index('ix_live_rooms_brand_start', 'live_rooms', ['brand_id', 'scheduled_start'], unique=False)
    op.create_index('ix_live_rooms_host_start', 'live_rooms', ['host_user_id', 'scheduled_start'], unique=False)
    op.create_table('live_lineup_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('live_price', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('live_quota', sa.Integer(), nullable=True),
    sa.CheckConstraint('live_price IS NULL OR (live_price >= 0 AND currency IS NOT NULL)',
                       name=op.f('ck_live_lineup_items_price')),
    sa.CheckConstraint('live_quota IS NULL OR live_quota > 0', name=op.f('ck_live_lineup_items_quota')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_live_lineup_items_product_id_products')),
    sa.ForeignKeyConstraint(['room_id'], ['live_rooms.id'], name=op.f('fk_live_lineup_items_room_id_live_rooms')),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_live_lineup_items_sku_id_skus')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_lineup_items'))
    )
    op.create_index('ix_live_lineup_items_room', 'live_lineup_items', ['room_id', 'position', 'id'], unique=False)
    op.create_table('live_pin_segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=True),
    sa.Column('pinned_by', sa.Integer(), nullable=False),
    sa.Column('started_at', UTC, nullable=False),
    sa.Column('ended_at', UTC, nullable=True),
    sa.Column('start_offset_ms', sa.BigInteger(), nullable=True),
    sa.Column('end_offset_ms', sa.BigInteger(), nullable=True),
    sa.CheckConstraint('ended_at IS NULL OR ended_at >= started_at', name=op.f('ck_live_pin_segments_ordered')),
    sa.ForeignKeyConstraint(['item_id'], ['live_lineup_items.id'],
                            name=op.f('fk_live_pin_segments_item_id_live_lineup_items')),
    sa.ForeignKeyConstraint(['pinned_by'], ['users.id'], name=op.f('fk_live_pin_segments_pinned_by_users')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_live_pin_segments_product_id_products')),
    sa.ForeignKeyConstraint(['room_id'], ['live_rooms.id'], name=op.f('fk_live_pin_segments_room_id_live_rooms')),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_live_pin_segments_sku_id_skus')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_pin_segments'))
    )
    op.create_index('ix_live_pin_segments_room', 'live_pin_segments', ['room_id', 'started_at'], unique=False)
    op.create_index('ix_live_pin_segments_item_id', 'live_pin_segments', ['item_id'], unique=False)
    op.create_index('ix_live_pin_segments_open', 'live_pin_segments', ['room_id'], unique=True,
                    postgresql_where=OPEN, sqlite_where=OPEN)
    if op.get_bind().dialect.name == 'postgresql':
        _exclude_overlaps()


def _exclude_overlaps() -> None:
    """The exclusion constraint, if btree_gist is installed or can be (a trusted extension: a database owner
    may create it) and its operator classes are visible here; else a warning, and the partial index alone."""
    conn = op.get_bind()
    try:
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        with conn.begin_nested():
            conn.execute(sa.text(f"""ALTER TABLE live_pin_segments ADD CONSTRAINT {EXCLUSION} EXCLUDE USING gist
                (room_id WITH =, tstzrange(started_at, ended_at, '[)') WITH &&)"""))
    except sa.exc.DBAPIError as exc:
        log.warning("live_pin_segments: no exclusion constraint (btree_gist unavailable: %s); "
                    "one open segment per room is still enforced", exc.orig)


def downgrade():
    op.drop_table('live_pin_segments')  # its exclusion constraint and indexes with it; btree_gist stays
    op.drop_index('ix_live_lineup_items_room', table_name='live_lineup_items')
    op.drop_table('live_lineup_items')
    op.drop_index('ix_live_rooms_host_start', table_name='live_rooms')
    op.drop_index('ix_live_rooms_brand_start', table_name='live_rooms')
    op.drop_table('live_rooms')
