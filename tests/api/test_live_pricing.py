"""Live prices over HTTP: only for the room's own lines while it is live, never a flash line, the live quota
counted at placement and given back on cancellation, and coupons that must name `live` to combine."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import attribution, clock
from mall.attribution import Source, SourceType
from mall.catalog.models import Sku
from mall.live.models import LineupItem
from tests.api.test_bundle_orders import bundle  # noqa: F401 (a fixture)
from tests.conftest import TEST_SECRET
from tests.coupon_helpers import Coupons, listed
from tests.live_helpers import ROOMS, Live
from tests.shop_helpers import Shop

NORMAL, LIVE_PRICE = 9900, 7000


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def live(shop) -> Live:
    return Live(shop)


def token(room_id: int, host_id: int) -> str:
    return attribution.sign(Source(SourceType.LIVE, {"room_id": room_id, "host_id": host_id}), secret=TEST_SECRET)


@pytest.fixture
def show(shop, live):
    """A room whose one lineup item (a one-SKU product at 9900) has a live price of 7000 and a live quota of 3."""
    brand = shop.brand()
    sku = shop.sku(brand, price=NORMAL, stock=50)
    with shop.app.app_context():
        product = db.session.get(Sku, sku).product_id
    admin = shop.merchant(brand)
    host, host_id = live.host()
    room = live.room(admin, host_id, [])
    item = shop.client.post(f"{ROOMS}/{room['id']}/lineup", headers=admin,
                            json={"product_id": product, "live_price": LIVE_PRICE, "live_quota": 3})  # fmt: skip
    assert item.status_code == 201, item.get_json()
    return {"brand": brand, "sku": sku, "product": product, "admin": admin, "host": host, "host_id": host_id,
            "room": room["id"], "item": item.get_json()["id"], "token": token(room["id"], host_id)}  # fmt: skip


def quote_line(shop, headers, line_id: int, **body) -> dict:
    resp = shop.client.post("/api/v1/checkout/quote", json={"line_ids": [line_id], **body}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def priced(quote: dict) -> tuple[str, int]:
    line = quote["lines"][0]
    return line["price_source"], line["payable"]


def sold(app, item_id: int) -> int:
    with app.app_context():
        return db.session.get(LineupItem, item_id).live_sold


def test_a_live_price_applies_only_to_the_rooms_lines_while_it_is_live(shop, live, show):
    viewer, organic, elsewhere = shop.shopper(), shop.shopper(), shop.shopper()
    line = shop.add(viewer, show["sku"], source_token=show["token"])
    plain = shop.add(organic, show["sku"])
    other_room = shop.add(elsewhere, show["sku"], source_token=token(show["room"] + 10_000, show["host_id"]))

    assert priced(quote_line(shop, viewer, line)) == ("item", NORMAL)  # scheduled, not live yet
    assert live.act(show["host"], show["room"], "start").status_code == 200
    quote = quote_line(shop, viewer, line)
    assert priced(quote) == ("live", LIVE_PRICE)
    assert quote["lines"][0]["unit_price"] == NORMAL  # the live price is a promotion's discount on the line
    assert quote["discounts"] == [{"step": "promotion_price", "source": f"live:{show['item']}", "label": "Live price",
                                   "amount": NORMAL - LIVE_PRICE,
                                   "allocations": [{"line_id": line, "sku_id": show["sku"],
                                                    "amount": NORMAL - LIVE_PRICE}]}]  # fmt: skip
    assert priced(quote_line(shop, organic, plain)) == ("item", NORMAL)  # not from the room
    assert priced(quote_line(shop, elsewhere, other_room)) == ("item", NORMAL)  # from another room

    assert live.act(show["host"], show["room"], "end").status_code == 200
    assert priced(quote_line(shop, viewer, line)) == ("item", NORMAL)  # the link keeps working at the normal price


def test_a_placed_order_keeps_the_live_price_and_counts_against_the_quota_until_cancelled(app, shop, live, show):
    assert live.act(show["host"], show["room"], "start").status_code == 200
    first, second = shop.shopper(), shop.shopper()
    line = shop.add(first, show["sku"], quantity=2, source_token=show["token"])
    placed = shop.place(first, [line], shop.address(first))
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    assert order["payable_total"] == 2 * LIVE_PRICE
    assert order["sub_orders"][0]["lines"][0]["discounts"] == {f"live:{show['item']}": 2 * (NORMAL - LIVE_PRICE)}
    assert sold(app, show["item"]) == 2

    # one unit of the quota (3) is left: a line of two is priced normally, a line of one at the live price
    two = shop.add(second, show["sku"], quantity=2, source_token=show["token"])
    assert priced(quote_line(shop, second, two)) == ("item", 2 * NORMAL)
    shop.client.patch(f"/api/v1/cart/lines/{two}", json={"quantity": 1}, headers=second)
    assert priced(quote_line(shop, second, two)) == ("live", LIVE_PRICE)

    cancelled = shop.client.post(f"/api/v1/orders/{order['id']}/cancel", headers=first)
    assert cancelled.status_code == 200, cancelled.get_json()
    assert sold(app, show["item"]) == 0
    shop.client.patch(f"/api/v1/cart/lines/{two}", json={"quantity": 3}, headers=second)
    assert priced(quote_line(shop, second, two)) == ("live", 3 * LIVE_PRICE)


def test_a_flash_purchase_from_the_room_keeps_the_flash_price(app, shop, live, show):
    """The flash line carries the room under `origin`, but its price is the flash sale's, never the live one."""
    assert live.act(show["host"], show["room"], "start").status_code == 200
    now = clock.now()
    body = {"name": "In the room", "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "items": [{"sku_id": show["sku"], "flash_price": 8000, "quota": 5, "per_shopper_limit": 1}]}  # fmt: skip
    sale = shop.client.post("/api/v1/admin/flash-sales", json=body, headers=show["admin"]).get_json()
    viewer = shop.shopper()
    shop.add(viewer, show["sku"], source_token=show["token"])  # the room's line of this SKU: carried as origin
    bought = shop.client.post(f"/api/v1/flash-sales/{sale['id']}/items/{sale['items'][0]['id']}/purchase",
                              json={"address_id": shop.address(viewer)},
                              headers={**viewer, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert bought.status_code == 201, bought.get_json()
    line = bought.get_json()["sub_orders"][0]["lines"][0]
    assert line["unit_price"] == 8000 and line["payable"] == 8000 and line["discounts"] == {}
    assert line["source"]["origin"]["room_id"] == show["room"]
    assert sold(app, show["item"]) == 0


def test_coupons_apply_to_a_live_priced_line_only_when_they_combine_with_live(shop, live, show):
    coupons = Coupons(shop)
    assert live.act(show["host"], show["room"], "start").status_code == 200
    viewer = shop.shopper()
    line = shop.add(viewer, show["sku"], source_token=show["token"])
    combines = coupons.give(viewer, coupons.template(show["admin"], combinable_with=["live"]))
    plain = coupons.give(viewer, coupons.template(show["admin"]))

    quote = quote_line(shop, viewer, line, coupon_ids=None)
    assert listed(quote, plain)["reason"] == "not_combinable"
    assert listed(quote, combines)["reason"] is None
    assert quote["applied_coupon_ids"] == [combines]
    assert quote["totals"]["payable"] == LIVE_PRICE - 500
    refused = shop.client.post("/api/v1/checkout/quote", json={"line_ids": [line], "coupon_ids": [plain]},
                               headers=viewer)  # fmt: skip
    assert refused.status_code == 422 and refused.get_json()["code"] == "coupon.not_applicable"
    assert "not_combinable" in refused.get_json()["detail"]


def test_a_group_buy_opened_from_the_room_keeps_the_group_price(app, shop, live, show):
    assert live.act(show["host"], show["room"], "start").status_code == 200
    now = clock.now()
    body = {"sku_id": show["sku"], "name": "3 together", "group_price": 8000, "leader_discount": 0, "group_size": 3,
            "starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(days=1)).isoformat()}  # fmt: skip
    camp = shop.client.post("/api/v1/admin/group-campaigns", json=body, headers=show["admin"]).get_json()
    leader = shop.shopper()
    shop.add(leader, show["sku"], source_token=show["token"])
    opened = shop.client.post(f"/api/v1/group-campaigns/{camp['id']}/groups", json={"address_id": shop.address(leader)},
                              headers={**leader, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert opened.status_code == 201, opened.get_json()
    line = opened.get_json()["order"]["sub_orders"][0]["lines"][0]
    assert line["unit_price"] == 8000 and line["payable"] == 8000 and line["discounts"] == {}
    assert line["source"]["origin"]["room_id"] == show["room"]
    assert sold(app, show["item"]) == 0


def test_changing_the_live_price_refreshes_the_viewers_room_and_the_next_quote(shop, live, show):
    assert live.act(show["host"], show["room"], "start").status_code == 200
    viewer = shop.shopper()
    line = shop.add(viewer, show["sku"], source_token=show["token"])
    before = live.view(show["room"])
    assert before.get_json()["lineup"][0]["live_price"] == LIVE_PRICE
    assert before.get_json()["lineup"][0]["remaining"] == 3  # the live quota, none sold
    changed = shop.client.patch(f"{ROOMS}/{show['room']}/lineup/{show['item']}", json={"live_price": 6000},
                                headers=show["admin"])  # fmt: skip
    assert changed.status_code == 200, changed.get_json()
    after = live.view(show["room"], before.headers["ETag"])
    assert after.status_code == 200 and after.get_json()["lineup"][0]["live_price"] == 6000
    assert priced(quote_line(shop, viewer, line)) == ("live", 6000)


def test_a_bundle_from_the_room_keeps_its_price_and_its_part_alone_takes_the_live_price(app, shop, live, bundle):  # noqa: F811
    bundle_id, brand, skus = bundle
    with app.app_context():
        part = db.session.get(Sku, skus[0])
        product, normal = part.product_id, part.price
    admin = shop.merchant(brand)
    host, host_id = live.host()
    room = live.room(admin, host_id, [])
    item = shop.client.post(f"{ROOMS}/{room['id']}/lineup", json={"product_id": product, "live_price": normal - 100},
                            headers=admin).get_json()  # fmt: skip
    assert live.act(host, room["id"], "start").status_code == 200
    viewer = shop.shopper()
    resp = shop.client.post("/api/v1/cart/bundles", headers=viewer,
                            json={"bundle_id": bundle_id, "source_token": token(room["id"], host_id)})  # fmt: skip
    assert resp.status_code == 200, resp.get_json()
    bundle_line = next(line["id"] for line in resp.get_json()["lines"] if line["bundle_id"] == bundle_id)
    alone = shop.add(viewer, skus[0], source_token=token(room["id"], host_id))

    quote = shop.client.post("/api/v1/checkout/quote", json={"line_ids": [bundle_line, alone]}, headers=viewer)
    lines = quote.get_json()["lines"]
    assert {ln["price_source"] for ln in lines if ln["bundle_id"] == bundle_id} == {"bundle"}
    assert not any(d["source"].startswith("live:") for ln in lines if ln["bundle_id"] for d in ln["discounts"])
    single = next(ln for ln in lines if ln["bundle_id"] is None)
    assert (single["price_source"], single["payable"]) == ("live", normal - 100)
    assert [d["source"] for d in quote.get_json()["discounts"] if d["source"].startswith("live:")] == [
        f"live:{item['id']}"
    ]


def test_the_live_prices_cost_a_quote_one_statement_and_only_when_a_line_has_a_live_source(app, shop, live, show):
    assert live.act(show["host"], show["room"], "start").status_code == 200
    viewer, organic = shop.shopper(), shop.shopper()
    live_line = shop.add(viewer, show["sku"], source_token=show["token"])
    plain = shop.add(organic, show["sku"])
    statements = []

    def count(*args):
        statements.append(args[2])

    def quoted(headers, line) -> int:
        statements.clear()
        with app.app_context():
            sa.event.listen(db.engine, "before_cursor_execute", count)
            try:
                quote_line(shop, headers, line, coupon_ids=[])
            finally:
                sa.event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    organic_count, live_count = quoted(organic, plain), quoted(viewer, live_line)
    assert live_count == organic_count + 1, statements
    assert sum("live_lineup_items" in s for s in statements) == 1
