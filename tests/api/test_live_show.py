"""A whole show over HTTP, across the live parts as they meet in production: the host schedules, starts and pins;
shoppers open the host's cart links (not hand-made sources), pay at the live price while the room is live; each
paid line lands in the segment pinned when its link was opened, direct; a refund nets that segment's GMV; after
the end the same link adds at the normal price and the replay lists the segments."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.orders.models import OrderLine
from tests.live_helpers import Live
from tests.shop_helpers import Shop


@pytest.fixture
def shop(app, client, login) -> Shop:
    clock.freeze(clock.now().replace(microsecond=0))
    return Shop(app, client, login)


def _ok(resp, status=200) -> dict:
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def _lines(app, order_id: int) -> list[tuple]:
    with app.app_context():
        return db.session.execute(
            sa.select(OrderLine.unit_price, OrderLine.payable, OrderLine.live_room_id, OrderLine.live_segment_id,
                      OrderLine.live_link_id, OrderLine.live_touch).where(OrderLine.order_id == order_id)
        ).all()  # fmt: skip


def test_a_show_from_schedule_to_end_attributes_what_sold_while_each_product_was_on_screen(app, client, shop):
    live = Live(shop)
    brand = shop.brand()
    a, b = live.product(brand, price=10000), live.product(brand, price=7000)
    admin, (host, host_id) = shop.merchant(brand), live.host()
    room = live.room(admin, host_id, [a, b])["id"]
    items = {item["product_id"]: item["id"] for item in _ok(live.view(room))["lineup"]}
    for product, price in ((a, 8000), (b, 5000)):
        _ok(client.patch(f"/api/v1/admin/live/rooms/{room}/lineup/{items[product]}", json={"live_price": price},
                         headers=admin))  # fmt: skip

    _ok(live.act(host, room, "start"))
    seg_a = _ok(live.act(host, room, "pin", product_id=a))["id"]
    link_a = _ok(client.post(f"/api/v1/live/rooms/{room}/links", json={"product_id": a}, headers=host), 201)
    first = shop.shopper()
    _ok(client.post(f"/api/v1/live/rooms/{room}/visits", headers=first), 201)
    line = _ok(client.post("/api/v1/live/links/open", json={"token": link_a["token"]}, headers=first))["line_id"]
    order_a = _ok(shop.place(first, [line], shop.address(first)), 201)
    _ok(shop.pay(first, order_a["id"]))

    seg_b = _ok(live.act(host, room, "pin", product_id=b))["id"]
    link_b = _ok(client.post(f"/api/v1/live/rooms/{room}/links", json={"product_id": b}, headers=host), 201)
    second = shop.shopper()
    line = _ok(client.post("/api/v1/live/links/open", json={"token": link_b["token"], "quantity": 2},
                           headers=second))["line_id"]  # fmt: skip
    order_b = _ok(shop.place(second, [line], shop.address(second)), 201)
    _ok(shop.pay(second, order_b["id"]))

    # live prices, on the segment pinned when the link was opened, direct (inside the viewing session)
    assert _lines(app, order_a["id"]) == [(10000, 8000, room, seg_a, link_a["id"], "direct")]
    assert _lines(app, order_b["id"]) == [(7000, 10000, room, seg_b, link_b["id"], "direct")]

    # the shopper takes one of the two units of B back: B's segment is net of it
    sub = order_b["sub_orders"][0]
    case = _ok(client.post(f"/api/v1/sub-orders/{sub['id']}/after-sales", headers=second,
                           json={"reason": "changed my mind", "lines": [{"order_line_id": sub["lines"][0]["id"],
                                                                         "quantity": 1}]}), 201)  # fmt: skip
    _ok(client.post(f"/api/v1/admin/after-sales/{case['id']}/approve", json={}, headers=admin))

    numbers = _ok(client.get(f"/api/v1/live/rooms/{room}/numbers", headers=host))
    by_segment = {s["segment_id"]: s for s in numbers["segments"]}
    assert (by_segment[seg_a]["paid_gmv"], by_segment[seg_a]["net_gmv"], by_segment[seg_a]["orders"]) == (8000, 8000, 1)
    assert (by_segment[seg_b]["paid_gmv"], by_segment[seg_b]["refunds"], by_segment[seg_b]["net_gmv"]) == (
        10000, 5000, 5000)  # fmt: skip
    assert numbers["totals"]["net_gmv"] == numbers["totals"]["direct_gmv"] == 13000

    _ok(live.act(host, room, "end"))
    late = shop.shopper()
    line = _ok(client.post("/api/v1/live/links/open", json={"token": link_a["token"]}, headers=late))["line_id"]
    late_order = _ok(shop.place(late, [line], shop.address(late)), 201)
    assert _lines(app, late_order["id"])[0][:2] == (10000, 10000)  # the show is over: the normal price
    replay = _ok(client.get(f"/api/v1/live/rooms/{room}/replay", headers=first))
    assert [s["id"] for s in replay["segments"]] == [seg_a, seg_b]
