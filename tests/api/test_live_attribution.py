"""Live attribution over HTTP (ADR 0017): paid lines carry the room, host, segment and link of the link the shopper
opened, direct within the viewing session and indirect within the brand's longer window; the room's numbers per
pin segment come from paid lines net of the refund ledger; only the room's host and brand admins read them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import attribution, clock
from mall.attribution import Source, SourceType
from mall.catalog.models import Sku
from mall.orders import refunds
from mall.orders.models import OrderLine, SubOrder
from tests.api.test_flash_sales import START
from tests.api.test_flash_sales import sale as sale  # noqa: F401 (the fixture)
from tests.conftest import TEST_SECRET
from tests.live_helpers import Live
from tests.shop_helpers import Shop

SETTINGS = "/api/v1/admin/live/settings"
LIVE_COLUMNS = ("live_room_id", "live_host_id", "live_segment_id", "live_link_id", "live_touch")


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def live(shop) -> Live:
    return Live(shop)


@pytest.fixture
def show(app, shop, live):
    """A live room of a brand with two products (A 10000, B 7000), its admin and host."""
    clock.freeze(clock.now().replace(microsecond=0))
    brand = shop.brand()
    products = [live.product(brand, price=10000), live.product(brand, price=7000)]
    admin = shop.merchant(brand)
    host, host_id = live.host()
    room = live.room(admin, host_id, products)
    assert live.act(host, room["id"], "start").status_code == 200
    with app.app_context():
        skus = [db.session.scalar(sa.select(Sku.id).where(Sku.product_id == p)) for p in products]
    return {"brand": brand, "products": products, "skus": skus, "admin": admin, "host": host, "host_id": host_id,
            "room": room["id"]}  # fmt: skip


def pin(live, show, product_id) -> int:
    resp = live.act(show["host"], show["room"], "pin", product_id=product_id)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["id"]


def token(show, segment_id=None, link_id=None, opened_at=None) -> str:
    refs = {"room_id": show["room"], "host_id": show["host_id"], "segment_id": segment_id, "link_id": link_id,
            "opened_at": (opened_at or clock.now()).isoformat()}  # fmt: skip
    return attribution.sign(Source(SourceType.LIVE, refs), secret=TEST_SECRET)


def visit(client, headers, room_id):
    return client.post(f"/api/v1/live/rooms/{room_id}/visits", headers=headers)


def buy(shop, headers, sku_id, quantity=1, *, pay=True, **add) -> dict:
    """Add to the cart (with a live token if given), place, pay; the order."""
    line = shop.add(headers, sku_id, quantity, **add)
    order = shop.place(headers, [line], shop.address(headers))
    assert order.status_code == 201, order.get_json()
    if pay:
        assert shop.pay(headers, order.get_json()["id"]).status_code == 200
    return order.get_json()


def live_columns(app, order_id: int) -> tuple:
    with app.app_context():
        row = db.session.execute(
            sa.select(*(OrderLine.__table__.c[c] for c in LIVE_COLUMNS)).where(OrderLine.order_id == order_id)
        ).one()
        return tuple(row)


def numbers(client, headers, room_id):
    return client.get(f"/api/v1/live/rooms/{room_id}/numbers", headers=headers)


def refund_one_unit(app, order: dict) -> int:
    sub = order["sub_orders"][0]
    with app.app_context():
        done = refunds.refund_units(
            db.session, sub=db.session.get(SubOrder, sub["id"]), units=[refunds.Units(sub["lines"][0]["id"], 1)],
            shipping=refunds.NO_SHIPPING, reason="after_sale", reference=f"test-{uuid.uuid4().hex[:8]}",
        )  # fmt: skip
        db.session.commit()
        return done.amount


def test_a_show_attributes_paid_lines_to_their_segment_direct_or_indirect_net_of_refunds(app, shop, live, client,
                                                                                          show):  # fmt: skip
    (a, b), (sku_a, sku_b), room, host = show["products"], show["skus"], show["room"], show["host"]
    seg_a = pin(live, show, a)
    early, late, lapsed, unpaid = shop.shopper(), shop.shopper(), shop.shopper(), shop.shopper()
    for viewer in (early, unpaid):
        assert visit(client, viewer, room).status_code == 201
    direct = buy(shop, early, sku_a, 2, source_token=token(show, seg_a, link_id=41))  # at once: direct
    # a link opened 8 days ago (past both windows) and no visit since: the room is kept on the line, but no touch
    outside = buy(shop, lapsed, sku_a, 1, source_token=token(show, seg_a, opened_at=clock.now() - timedelta(days=8)))
    unpaid_order = buy(shop, unpaid, sku_a, 1, pay=False, source_token=token(show, seg_a))

    clock.advance(timedelta(minutes=10))
    seg_b = pin(live, show, b)
    assert visit(client, late, room).status_code == 201
    late_line = shop.add(late, sku_b, 1, source_token=token(show, seg_b))
    clock.advance(timedelta(hours=2))  # past the viewing session, within 7 days
    indirect = shop.place(late, [late_line], shop.address(late)).get_json()
    assert shop.pay(late, indirect["id"]).status_code == 200

    assert live_columns(app, direct["id"]) == (room, show["host_id"], seg_a, 41, "direct")
    assert live_columns(app, indirect["id"]) == (room, show["host_id"], seg_b, None, "indirect")
    assert live_columns(app, outside["id"]) == (room, show["host_id"], seg_a, None, None)
    assert live_columns(app, unpaid_order["id"])[4] == "direct"

    resp = numbers(client, host, room)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["room_id"] == room and body["currency"] == "CNY"
    assert body["totals"] == {"viewers": 3, "cart_adds": 4, "orders": 2, "paid_gmv": 27000, "refunds": 0,
                              "net_gmv": 27000, "conversion": 0.6667, "direct_gmv": 20000, "indirect_gmv": 7000}  # fmt: skip
    by_segment = {s["segment_id"]: s for s in body["segments"]}
    assert [s["segment_id"] for s in body["segments"]] == [seg_a, seg_b]
    assert by_segment[seg_a]["product_id"] == a and by_segment[seg_a]["title"]
    assert by_segment[seg_a]["ended_at"] is not None and by_segment[seg_b]["ended_at"] is None
    assert {k: by_segment[seg_a][k] for k in ("viewers", "cart_adds", "orders", "paid_gmv", "direct_gmv")} == {
        "viewers": 2, "cart_adds": 3, "orders": 1, "paid_gmv": 20000, "direct_gmv": 20000}  # fmt: skip
    assert {k: by_segment[seg_b][k] for k in ("viewers", "cart_adds", "orders", "paid_gmv", "indirect_gmv")} == {
        "viewers": 1, "cart_adds": 1, "orders": 1, "paid_gmv": 7000, "indirect_gmv": 7000}  # fmt: skip

    assert refund_one_unit(app, direct) == 10000  # one of the two units of A: the segment's net GMV drops
    after = numbers(client, show["admin"], room).get_json()
    seg = next(s for s in after["segments"] if s["segment_id"] == seg_a)
    assert (seg["paid_gmv"], seg["refunds"], seg["net_gmv"], seg["direct_gmv"]) == (20000, 10000, 10000, 10000)
    assert (after["totals"]["refunds"], after["totals"]["net_gmv"]) == (10000, 17000)
    assert after["totals"]["direct_gmv"] + after["totals"]["indirect_gmv"] == after["totals"]["net_gmv"]


def test_a_visit_to_the_room_starts_a_new_viewing_session(app, shop, live, client, show):
    seg = pin(live, show, show["products"][0])
    me = shop.shopper()
    line = shop.add(me, show["skus"][0], source_token=token(show, seg))  # the link opened now
    clock.advance(timedelta(hours=3))
    assert visit(client, me, show["room"]).status_code == 201  # back in the room
    clock.advance(timedelta(minutes=20))
    order = shop.place(me, [line], shop.address(me)).get_json()
    assert live_columns(app, order["id"])[4] == "direct"


def test_the_brands_windows_decide_direct_indirect_or_none(app, shop, live, client, show):
    admin, sku = show["admin"], show["skus"][1]
    assert client.get(SETTINGS, headers=admin).get_json() == {
        "brand_id": show["brand"],
        "direct_window_minutes": 30,
        "indirect_window_minutes": 7 * 24 * 60,
    }
    bad = client.put(SETTINGS, json={"direct_window_minutes": 60, "indirect_window_minutes": 30}, headers=admin)
    assert bad.status_code == 422 and bad.get_json()["code"] == "live.bad_windows"
    resp = client.put(SETTINGS, json={"direct_window_minutes": 5, "indirect_window_minutes": 60}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["direct_window_minutes"] == 5, resp.get_json()
    other = shop.merchant(shop.brand())
    foreign = client.put(SETTINGS, json={"brand_id": show["brand"], "direct_window_minutes": 1,
                                         "indirect_window_minutes": 1}, headers=other)  # fmt: skip
    assert foreign.status_code == 403 and foreign.get_json()["code"] == "live.other_brand"

    touches = []
    for wait in (timedelta(minutes=4), timedelta(minutes=10), timedelta(minutes=61)):
        me = shop.shopper()
        line = shop.add(me, sku, source_token=token(show))  # opened with nothing pinned: no segment
        clock.advance(wait)
        order = shop.place(me, [line], shop.address(me)).get_json()
        touches.append(live_columns(app, order["id"])[2:])
    assert touches == [(None, None, "direct"), (None, None, "indirect"), (None, None, None)]


def test_visits_are_shoppers_deduplicated_per_minute_and_not_of_cancelled_rooms(app, shop, live, client, show):
    me = shop.shopper()
    assert visit(client, me, show["room"]).get_json() == {"room_id": show["room"], "recorded": True}
    clock.advance(timedelta(seconds=30))
    assert visit(client, me, show["room"]).get_json()["recorded"] is False
    clock.advance(timedelta(seconds=31))
    assert visit(client, me, show["room"]).get_json()["recorded"] is True
    assert numbers(client, show["host"], show["room"]).get_json()["totals"]["viewers"] == 1
    assert visit(client, me, 10**8).status_code == 404
    scheduled = live.room(show["admin"], show["host_id"], show["products"][:1])
    assert client.post(f"/api/v1/admin/live/rooms/{scheduled['id']}/cancel", headers=show["admin"]).status_code == 200
    assert visit(client, me, scheduled["id"]).status_code == 404
    assert visit(client, show["host"], show["room"]).status_code == 403


def test_only_the_rooms_host_and_brand_admins_read_its_numbers(shop, live, client, show):
    room = show["room"]
    assert numbers(client, show["admin"], room).status_code == 200
    assert numbers(client, shop.login("platform_admin", name="ops"), room).status_code == 200
    other_admin = numbers(client, shop.merchant(shop.brand()), room)
    assert other_admin.status_code == 403 and other_admin.get_json()["code"] == "live.not_your_room"
    other_host = numbers(client, live.host()[0], room)
    assert other_host.status_code == 403 and other_host.get_json()["code"] == "live.not_your_room"
    shopper = numbers(client, shop.shopper(), room)
    assert shopper.status_code == 403 and shopper.get_json()["code"] == "auth.role_forbidden"
    assert numbers(client, show["admin"], 10**8).status_code == 404


def test_a_flash_purchase_keeps_the_rooms_columns_from_the_cart_lines_source(app, shop, client, live, sale):  # noqa: F811
    clock.freeze(START - timedelta(minutes=10))
    admin = shop.merchant(sale["brand"])
    host, host_id = live.host()
    with app.app_context():
        product = db.session.get(Sku, sale["sku"]).product_id
    room = live.room(admin, host_id, [product])
    show = {"room": room["id"], "host_id": host_id}
    me = shop.shopper()
    shop.add(me, sale["sku"], source_token=token(show, link_id=7))  # opened the link 10 minutes before the sale
    clock.freeze(START)
    path = f"/api/v1/flash-sales/{sale['id']}/items/{sale['item']}/purchase"
    order = client.post(path, json={"address_id": shop.address(me)},
                        headers={**me, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert order.status_code == 201, order.get_json()
    assert live_columns(app, order.get_json()["id"]) == (room["id"], host_id, None, 7, "direct")
