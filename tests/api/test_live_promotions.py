"""In-room promotions over HTTP: a live flash deal is a flash sale bought through the flash sale's admission
(countdown and duration checked), and a room coupon is claimed only through its room while the room is live."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from api.extensions import db
from mall import clock
from mall.catalog.models import Sku
from tests.coupon_helpers import Coupons
from tests.live_helpers import Live
from tests.shop_helpers import Shop


@pytest.fixture
def shop(app, client, login) -> Shop:
    clock.freeze(clock.now().replace(microsecond=0))
    return Shop(app, client, login)


@pytest.fixture
def live(shop) -> Live:
    return Live(shop)


@pytest.fixture
def show(shop, live):
    brand = shop.brand()
    sku = shop.sku(brand, price=9900, stock=50)
    with shop.app.app_context():
        product = db.session.get(Sku, sku).product_id
    admin = shop.merchant(brand)
    host, host_id = live.host()
    room = live.room(admin, host_id, [product])
    return {"brand": brand, "sku": sku, "admin": admin, "host": host, "room": room["id"],
            "item": room["lineup"][0]["id"]}  # fmt: skip


def announce(shop, show, headers=None, **body):
    body = {"item_id": show["item"], "sku_id": show["sku"], "flash_price": 5000, "quota": 2, "per_viewer_limit": 1,
            "countdown_seconds": 30, "duration_minutes": 5, **body}  # fmt: skip
    return shop.client.post(f"/api/v1/live/rooms/{show['room']}/deals", json=body, headers=headers or show["host"])


def buy(shop, deal, headers):
    return shop.client.post(f"/api/v1/flash-sales/{deal['sale_id']}/items/{deal['flash_item_id']}/purchase",
                            json={"address_id": shop.address(headers)},
                            headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip


def code(resp) -> tuple[int, str]:
    return resp.status_code, resp.get_json()["code"]


def test_a_live_deal_counts_down_then_sells_through_the_flash_admission(shop, live, show):
    assert code(announce(shop, show)) == (409, "live.room_not_live")
    assert live.act(show["host"], show["room"], "start").status_code == 200
    assert code(announce(shop, show, countdown_seconds=9)) == (422, "live.deal_countdown")
    assert code(announce(shop, show, countdown_seconds=301)) == (422, "live.deal_countdown")
    assert code(announce(shop, show, duration_minutes=0)) == (422, "live.deal_duration")
    assert code(announce(shop, show, duration_minutes=21)) == (422, "live.deal_duration")
    assert code(announce(shop, show, headers=shop.shopper()))[0] == 403
    assert code(announce(shop, show, headers=live.host()[0])) == (403, "live.not_your_room")  # not this room's host
    assert code(announce(shop, show, sku_id=None)) == (422, "live.deal_sku_required")  # the item is a whole product
    assert code(announce(shop, show, flash_price=9901)) == (422, "flash_sale.price_above_normal")

    etag = live.view(show["room"]).headers["ETag"]
    made = announce(shop, show)
    assert made.status_code == 201, made.get_json()
    deal = made.get_json()
    view = live.view(show["room"], etag)
    assert view.status_code == 200  # the room changed for viewers: a new render
    assert [(d["id"], d["flash_price"], d["quota"], d["per_shopper_limit"]) for d in view.get_json()["deals"]] == [
        (deal["id"], 5000, 2, 1)
    ]
    sale = shop.client.get(f"/api/v1/flash-sales/{deal['sale_id']}").get_json()
    assert sale["phase"] == "upcoming" and sale["items"][0]["remaining"] == 2

    first, second, third = shop.shopper(), shop.shopper(), shop.shopper()
    assert code(buy(shop, deal, first)) == (409, "flash_sale.not_started")  # still counting down
    clock.advance(timedelta(seconds=30))
    bought = buy(shop, deal, first)
    assert bought.status_code == 201, bought.get_json()
    assert bought.get_json()["sub_orders"][0]["lines"][0]["unit_price"] == 5000
    assert code(buy(shop, deal, first)) == (409, "flash_sale.limit_reached")  # the per-viewer limit
    assert buy(shop, deal, second).status_code == 201
    assert code(buy(shop, deal, third)) == (409, "flash_sale.sold_out")  # its own quota
    clock.advance(timedelta(minutes=5))
    assert code(buy(shop, deal, shop.shopper())) == (409, "flash_sale.ended")
    from workers.connection import get_redis

    get_redis(shop.app.extensions["mall.settings"]).delete(f"live:room:{show['room']}:view")  # past its 5 s expiry
    assert live.view(show["room"]).get_json()["deals"] == []  # an ended deal is no longer shown


def test_a_room_coupon_is_claimed_only_through_its_room_while_it_is_live(shop, live, show):
    coupons = Coupons(shop)
    template = coupons.template(show["admin"], per_shopper_limit=1)
    path = f"/api/v1/live/rooms/{show['room']}/coupons"
    other_brand = coupons.template(shop.merchant(shop.brand()))
    assert code(shop.client.post(path, json={"template_id": other_brand}, headers=show["host"])) == (
        422, "live.coupon_other_brand")  # fmt: skip
    assert code(shop.client.post(path, json={"template_id": template}, headers=live.host()[0])) == (
        403, "live.not_your_room")  # fmt: skip
    pinned = shop.client.post(path, json={"template_id": template}, headers=show["host"])
    assert pinned.status_code == 201, pinned.get_json()
    assert [c["id"] for c in live.view(show["room"]).get_json()["coupons"]] == [template]
    assert template not in [t["id"] for t in shop.client.get("/api/v1/coupon-templates").get_json()]

    viewer = shop.shopper()

    def claim(headers, room=show["room"]):
        return shop.client.post(f"/api/v1/live/rooms/{room}/coupons/{template}/claim",
                                headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip

    assert code(coupons.claim(viewer, template)) == (403, "coupon.not_claimable")  # not outside the room
    assert code(claim(viewer)) == (409, "live.room_not_live")  # scheduled
    assert live.act(show["host"], show["room"], "start").status_code == 200
    claimed = claim(viewer)
    assert claimed.status_code == 201, claimed.get_json()
    assert claimed.get_json()["template_id"] == template
    assert code(claim(viewer)) == (409, "coupon.limit_reached")  # the coupon's own limit
    other_room = live.room(show["admin"], live.host()[1], [])
    assert code(claim(shop.shopper(), room=other_room["id"])) == (404, "live.coupon_not_in_room")
    assert live.act(show["host"], show["room"], "end").status_code == 200
    assert code(claim(shop.shopper())) == (409, "live.room_not_live")
    assert [c["template_id"] for c in coupons.wallet(viewer)] == [template]
