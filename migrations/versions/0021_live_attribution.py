"""live attribution: order-line live columns, room visits, live cart adds, brand windows

Revision ID: 0021_live_attribution
Revises: 0019_live_rooms
Create Date: 2026-12-03 07:00:00

Order lines keep the room, host, pin segment and link of their live source, and the touch ('direct' or
'indirect') the placement gave them, in plain indexed columns (partial indexes: only live lines are in them).
Existing lines stay NULL: live attribution starts with this release (ADR 0017).
"""
import sqlalchemy as sa
from alembic import op

import mall.db

revision = '0021_live_attribution'
down_revision = '0020_live_links'
branch_labels = None
depends_on = None

UTC = mall.db.UTCDateTime(timezone=True)
LIVE = sa.text("live_room_id IS NOT NULL")


def upgrade():
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('live_room_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('live_host_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('live_segment_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('live_link_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('live_touch', sa.String(length=8), nullable=True))
        batch_op.create_check_constraint('live_touch', "live_touch IN ('direct', 'indirect')")
    op.create_index('ix_order_lines_live_room', 'order_lines', ['live_room_id', 'live_segment_id'], unique=False,
                    postgresql_where=LIVE, sqlite_where=LIVE)
    op.create_index('ix_order_lines_live_host', 'order_lines', ['live_host_id'], unique=False,
                    postgresql_where=LIVE, sqlite_where=LIVE)
    op.create_table('live_room_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('visited_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['room_id'], ['live_rooms.id'], name=op.f('fk_live_room_visits_room_id_live_rooms')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_live_room_visits_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_room_visits'))
    )
    op.create_index('ix_live_room_visits_user_room', 'live_room_visits', ['user_id', 'room_id', 'visited_at'],
                    unique=False)
    op.create_index('ix_live_room_visits_room', 'live_room_visits', ['room_id', 'visited_at', 'user_id'],
                    unique=False)
    op.create_table('live_cart_adds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=True),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=True),
    sa.Column('bundle_id', sa.Integer(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_live_cart_adds_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_cart_adds'))
    )
    op.create_index('ix_live_cart_adds_room', 'live_cart_adds', ['room_id', 'segment_id'], unique=False)
    op.create_table('live_brand_settings',
    sa.Column('brand_id', sa.Integer(), nullable=False),
    sa.Column('direct_window_s', sa.Integer(), nullable=False),
    sa.Column('indirect_window_s', sa.Integer(), nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.CheckConstraint('direct_window_s > 0 AND indirect_window_s >= direct_window_s',
                       name=op.f('ck_live_brand_settings_windows')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_live_brand_settings_brand_id_brands')),
    sa.PrimaryKeyConstraint('brand_id', name=op.f('pk_live_brand_settings'))
    )


def downgrade():
    op.drop_table('live_brand_settings')
    op.drop_index('ix_live_cart_adds_room', table_name='live_cart_adds')
    op.drop_table('live_cart_adds')
    op.drop_index('ix_live_room_visits_room', table_name='live_room_visits')
    op.drop_index('ix_live_room_visits_user_room', table_name='live_room_visits')
    op.drop_table('live_room_visits')
    op.drop_index('ix_order_lines_live_host', table_name='order_lines')
    op.drop_index('ix_order_lines_live_room', table_name='order_lines')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_constraint('live_touch', type_='check')
        batch_op.drop_column('live_touch')
        batch_op.drop_column('live_link_id')
        batch_op.drop_column('live_segment_id')
        batch_op.drop_column('live_host_id')
        batch_op.drop_column('live_room_id')
