"""live prices: the live quota's sold counter, live flash deals and room coupons

Revision ID: 0022_live_pricing
Revises: 0019_live_rooms
Create Date: 2026-12-03 06:55:00
"""
import sqlalchemy as sa
from alembic import op

import mall.db

revision = '0022_live_pricing'
down_revision = '0021_live_attribution'
branch_labels = None
depends_on = None

UTC = mall.db.UTCDateTime(timezone=True)


def upgrade():
    with op.batch_alter_table('live_lineup_items') as batch:
        batch.add_column(sa.Column('live_sold', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch.create_check_constraint(op.f('ck_live_lineup_items_sold'), 'live_sold >= 0')
    op.create_table('live_flash_deals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('sale_id', sa.Integer(), nullable=False),
    sa.Column('flash_item_id', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('starts_at', UTC, nullable=False),
    sa.Column('ends_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_live_flash_deals_created_by_users')),
    sa.ForeignKeyConstraint(['flash_item_id'], ['flash_items.id'],
                            name=op.f('fk_live_flash_deals_flash_item_id_flash_items')),
    sa.ForeignKeyConstraint(['item_id'], ['live_lineup_items.id'],
                            name=op.f('fk_live_flash_deals_item_id_live_lineup_items')),
    sa.ForeignKeyConstraint(['room_id'], ['live_rooms.id'], name=op.f('fk_live_flash_deals_room_id_live_rooms')),
    sa.ForeignKeyConstraint(['sale_id'], ['flash_sales.id'], name=op.f('fk_live_flash_deals_sale_id_flash_sales')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_flash_deals')),
    sa.UniqueConstraint('sale_id', name=op.f('uq_live_flash_deals_sale_id'))
    )
    op.create_index('ix_live_flash_deals_room', 'live_flash_deals', ['room_id', 'starts_at'], unique=False)
    op.create_table('live_room_coupons',
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('pinned_by', sa.Integer(), nullable=False),
    sa.Column('pinned_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['pinned_by'], ['users.id'], name=op.f('fk_live_room_coupons_pinned_by_users')),
    sa.ForeignKeyConstraint(['room_id'], ['live_rooms.id'], name=op.f('fk_live_room_coupons_room_id_live_rooms')),
    sa.ForeignKeyConstraint(['template_id'], ['coupon_templates.id'],
                            name=op.f('fk_live_room_coupons_template_id_coupon_templates')),
    sa.PrimaryKeyConstraint('template_id', name=op.f('pk_live_room_coupons'))
    )
    op.create_index(op.f('ix_live_room_coupons_room_id'), 'live_room_coupons', ['room_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_live_room_coupons_room_id'), table_name='live_room_coupons')
    op.drop_table('live_room_coupons')
    op.drop_index('ix_live_flash_deals_room', table_name='live_flash_deals')
    op.drop_table('live_flash_deals')
    with op.batch_alter_table('live_lineup_items') as batch:
        batch.drop_constraint(op.f('ck_live_lineup_items_sold'), type_='check')
        batch.drop_column('live_sold')
