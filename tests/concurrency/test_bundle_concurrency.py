"""Concurrent bundle orders take every part's stock or none: with one part scarce, exactly as many orders go through
as that part allows, and every part's stock moved by exactly those orders' units (meaningful on PostgreSQL)."""

from __future__ import annotations

import uuid

from api.extensions import db
from mall.catalog import services as catalog
from mall.orders.models import Order
from tests.api.test_bundle_orders import PARTS, add_bundle, bundle, shop  # noqa: F401 (fixtures)
from tests.concurrency.test_order_concurrency import count, race
from tests.shop_helpers import PLATFORM


def test_concurrent_bundle_orders_never_take_part_of_a_bundle(shop, bundle, app):  # noqa: F811
    bundle_id, _, skus = bundle
    with app.app_context():
        catalog.adjust_stock(db.session, actor=PLATFORM, sku_id=skus[2], delta=-7)  # 3 left: three bundles
        db.session.commit()
    buyers = []
    for _ in range(12):
        headers = shop.shopper()
        buyers.append((headers, add_bundle(shop, headers, bundle_id)["id"], shop.address(headers)))

    def order(buyer):
        headers, line, address = buyer
        return lambda client: client.post("/api/v1/orders", json={"line_ids": [line], "address_id": address},
                                          headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip

    statuses = sorted(r.status_code for r in race(app, [order(b) for b in buyers]))
    assert statuses.count(201) == 3 and statuses.count(409) == 9, statuses
    assert count(app, Order) == 3
    assert [shop.stock(s) for s in skus] == [10 - 3 * PARTS[0][1], 10 - 3 * PARTS[1][1], 0]
