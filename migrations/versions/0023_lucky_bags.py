"""lucky bags: a room's prize draw with a committed seed, its entrants and prizes

Revision ID: 0023_lucky_bags
Revises: 0019_live_rooms
Create Date: 2026-12-03 07:00:00

At most one open lucky bag per room: a partial unique index on both backends.
"""
import sqlalchemy as sa
from alembic import op

import mall.db

revision = '0023_lucky_bags'
down_revision = '0022_live_pricing'
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")
UTC = mall.db.UTCDateTime(timezone=True)


def upgrade():
    op.create_table('live_lucky_bags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('prize_type', sa.String(length=8), nullable=False),
    sa.Column('coupon_template_id', sa.Integer(), nullable=True),
    sa.Column('gift_sku_id', sa.Integer(), nullable=True),
    sa.Column('winner_count', sa.Integer(), nullable=False),
    sa.Column('entry_condition', sa.String(length=16), nullable=False),
    sa.Column('opens_at', UTC, nullable=False),
    sa.Column('closes_at', UTC, nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('seed_hash', sa.String(length=64), nullable=False),
    sa.Column('seed', sa.String(length=64), nullable=False),
    sa.Column('entrant_count', sa.Integer(), nullable=False),
    sa.Column('drawn_at', UTC, nullable=True),
    sa.Column('prizes_awarded', sa.Integer(), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.CheckConstraint("status IN ('open', 'drawn', 'cancelled')", name=op.f('ck_live_lucky_bags_status')),
    sa.CheckConstraint("prize_type IN ('coupon', 'gift')", name=op.f('ck_live_lucky_bags_prize_type')),
    sa.CheckConstraint("(prize_type = 'coupon') = (coupon_template_id IS NOT NULL)",
                       name=op.f('ck_live_lucky_bags_coupon_prize')),
    sa.CheckConstraint("(prize_type = 'gift') = (gift_sku_id IS NOT NULL)", name=op.f('ck_live_lucky_bags_gift_prize')),
    sa.CheckConstraint('winner_count > 0', name=op.f('ck_live_lucky_bags_winner_count')),
    sa.CheckConstraint('closes_at > opens_at', name=op.f('ck_live_lucky_bags_window')),
    sa.CheckConstraint("entry_condition IN ('in_room', 'followed_link')",
                       name=op.f('ck_live_lucky_bags_entry_condition')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_live_lucky_bags_brand_id_brands')),
    sa.ForeignKeyConstraint(['coupon_template_id'], ['coupon_templates.id'],
                            name=op.f('fk_live_lucky_bags_coupon_template_id_coupon_templates')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_live_lucky_bags_created_by_users')),
    sa.ForeignKeyConstraint(['gift_sku_id'], ['skus.id'], name=op.f('fk_live_lucky_bags_gift_sku_id_skus')),
    sa.ForeignKeyConstraint(['room_id'], ['live_rooms.id'], name=op.f('fk_live_lucky_bags_room_id_live_rooms')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_lucky_bags'))
    )
    op.create_index('ix_live_lucky_bags_room', 'live_lucky_bags', ['room_id', 'id'], unique=False)
    op.create_index('ix_live_lucky_bags_open', 'live_lucky_bags', ['room_id'], unique=True,
                    postgresql_where=OPEN, sqlite_where=OPEN)
    op.create_table('live_lucky_bag_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bag_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('entered_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['bag_id'], ['live_lucky_bags.id'],
                            name=op.f('fk_live_lucky_bag_entries_bag_id_live_lucky_bags')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_live_lucky_bag_entries_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_lucky_bag_entries')),
    sa.UniqueConstraint('bag_id', 'user_id', name=op.f('uq_live_lucky_bag_entries_bag_id_user_id'))
    )
    op.create_table('live_lucky_bag_prizes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bag_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=True),
    sa.Column('sku_id', sa.Integer(), nullable=True),
    sa.Column('claim_by', UTC, nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('settled_at', UTC, nullable=True),
    sa.CheckConstraint("status IN ('granted', 'not_granted', 'reserved', 'claimed', 'released')",
                       name=op.f('ck_live_lucky_bag_prizes_status')),
    sa.ForeignKeyConstraint(['bag_id'], ['live_lucky_bags.id'],
                            name=op.f('fk_live_lucky_bag_prizes_bag_id_live_lucky_bags')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_live_lucky_bag_prizes_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_live_lucky_bag_prizes_order_id_orders')),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_live_lucky_bag_prizes_sku_id_skus')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_live_lucky_bag_prizes_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_lucky_bag_prizes')),
    sa.UniqueConstraint('bag_id', 'user_id', name=op.f('uq_live_lucky_bag_prizes_bag_id_user_id'))
    )
    op.create_index('ix_live_lucky_bag_prizes_due', 'live_lucky_bag_prizes', ['status', 'claim_by'], unique=False)


def downgrade():
    op.drop_index('ix_live_lucky_bag_prizes_due', table_name='live_lucky_bag_prizes')
    op.drop_table('live_lucky_bag_prizes')
    op.drop_table('live_lucky_bag_entries')
    op.drop_index('ix_live_lucky_bags_open', table_name='live_lucky_bags')
    op.drop_index('ix_live_lucky_bags_room', table_name='live_lucky_bags')
    op.drop_table('live_lucky_bags')
