"""bundles can be bought: a cart line holds a SKU or a bundle; an ordered bundle is one order line per part

Revision ID: 0015_bundle_lines
Revises: 0014_message_leases
Create Date: 2026-12-03 06:00:00

cart_lines.bundle_id names a bundle (its sku_id is then NULL; exactly one of the two is set), one line per
bundle per cart. order_lines.bundle_id and bundle_quantity mark the lines that are parts of a bundle bought
bundle_quantity times (ADR 0010).
"""
import sqlalchemy as sa
from alembic import op


revision = '0015_bundle_lines'
down_revision = '0014_message_leases'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cart_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bundle_id', sa.Integer(), nullable=True))
        batch_op.alter_column('sku_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_cart_lines_bundle_id_bundles'), 'bundles', ['bundle_id'], ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_cart_lines_cart_id_bundle_id'), ['cart_id', 'bundle_id'])
        batch_op.create_check_constraint('sku_or_bundle', '(sku_id IS NULL) <> (bundle_id IS NULL)')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bundle_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('bundle_quantity', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_order_lines_bundle_id_bundles'), 'bundles', ['bundle_id'], ['id'])


def downgrade():
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_order_lines_bundle_id_bundles'), type_='foreignkey')
        batch_op.drop_column('bundle_quantity')
        batch_op.drop_column('bundle_id')
    op.execute("DELETE FROM cart_lines WHERE bundle_id IS NOT NULL")
    with op.batch_alter_table('cart_lines', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_cart_lines_sku_or_bundle'), type_='check')
        batch_op.drop_constraint(batch_op.f('uq_cart_lines_cart_id_bundle_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_cart_lines_bundle_id_bundles'), type_='foreignkey')
        batch_op.alter_column('sku_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('bundle_id')
