"""Racing placements at a live price: the live quota is never oversold. Real threads, each with its own client and
connection; meaningful on PostgreSQL, where placements do not queue behind one database lock as on SQLite."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from api.extensions import db
from mall.live.models import LineupItem
from mall.orders.models import OrderLine
from tests.api.test_live_pricing import LIVE_PRICE, NORMAL, live, shop, show  # noqa: F401 (fixtures)
from tests.concurrency.test_order_concurrency import race

QUOTA = 3


def test_twenty_racing_placements_at_a_live_price_never_take_more_than_the_live_quota(app, shop, live, show):  # noqa: F811
    admin, room, item = show["admin"], show["room"], show["item"]
    assert shop.client.patch(f"/api/v1/admin/live/rooms/{room}/lineup/{item}", json={"live_quota": QUOTA},
                             headers=admin).status_code == 200  # fmt: skip
    assert live.act(show["host"], room, "start").status_code == 200
    buyers = []
    for _ in range(20):
        headers = shop.shopper()
        buyers.append((headers, shop.add(headers, show["sku"], source_token=show["token"]), shop.address(headers)))

    def place(buyer):
        headers, line, address = buyer
        return lambda client: client.post("/api/v1/orders", json={"line_ids": [line], "address_id": address},
                                          headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip

    responses = race(app, [place(b) for b in buyers])

    # all placed: at the live price while the quota lasted, then at the normal price (also those whose quote read
    # the quota before the others took it)
    assert [r.status_code for r in responses] == [201] * 20, [r.get_json() for r in responses if r.status_code != 201]
    payables = sorted(r.get_json()["payable_total"] for r in responses if r.status_code == 201)
    assert payables.count(LIVE_PRICE) == QUOTA and set(payables) == {LIVE_PRICE, NORMAL}, payables
    with app.app_context():
        assert db.session.get(LineupItem, item).live_sold == QUOTA
        discounted = sa.select(sa.func.count()).select_from(OrderLine).where(OrderLine.payable == LIVE_PRICE)
        assert db.session.scalar(discounted) == QUOTA
