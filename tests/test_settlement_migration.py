"""Migration 0016_settlement counts the after-sale cases open when it runs, so a sub-order with a case waiting
for its brand does not settle on the first sweep after the upgrade."""

from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import upgrade

from tests.test_migrations import _app_on, empty_database  # noqa: F401  (the fixture)

ROWS = """
INSERT INTO users (id, role, display_name, status, token_version, member_level, created_at, updated_at)
    VALUES (1, 'shopper', 's', 'active', 0, 0, :now, :now);
INSERT INTO brands (id, slug, name, logo_url, story, status, created_at, updated_at)
    VALUES (1, 'b', 'b', '', '', 'active', :now, :now);
INSERT INTO orders (id, user_id, status, currency, items_total, discount_total, shipping_total, payable_total,
                    paid_total, refunded_total, address, discounts, expires_at, created_at, updated_at)
    VALUES (1, 1, 'completed', 'CNY', 300, 0, 0, 300, 300, 0, '{}', '[]', :now, :now, :now);
INSERT INTO sub_orders (id, order_id, brand_id, status, items_total, discount_total, shipping_fee, payable_total,
                        refunded_total, created_at, updated_at)
    VALUES (1, 1, 1, 'completed', 100, 0, 0, 100, 0, :now, :now), (2, 1, 1, 'completed', 200, 0, 0, 200, 0, :now, :now);
INSERT INTO after_sales (order_id, sub_order_id, user_id, status, reason, return_goods, lines, amount, created_at,
                         updated_at)
    VALUES (1, 1, 1, 'requested', 'r', false, '[]', 10, :now, :now), (1, 1, 1, 'requested', 'r', false, '[]', 10, :now, :now),
           (1, 1, 1, 'refunded', 'r', false, '[]', 10, :now, :now), (1, 2, 1, 'rejected', 'r', false, '[]', 10, :now, :now)
"""


def test_the_upgrade_counts_the_cases_open_now(settings, empty_database):  # noqa: F811
    from datetime import UTC, datetime

    app = _app_on(settings, empty_database)
    with app.app_context():
        from api.extensions import db

        upgrade(revision="0014_message_leases")
        with db.engine.begin() as conn:
            for statement in ROWS.split(";"):
                conn.execute(sa.text(statement), {"now": datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)})
        upgrade(revision="0016_settlement")
        with db.engine.connect() as conn:
            counts = conn.execute(sa.text("SELECT id, open_after_sales, settled_at FROM sub_orders ORDER BY id")).all()
        db.engine.dispose()
    assert [tuple(row) for row in counts] == [(1, 2, None), (2, 0, None)]
