"""The cart: merging, a link's source kept over an organic re-add, flags instead of silent drops, ownership."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mall import attribution, clock
from mall.attribution import Source, SourceType
from tests.conftest import TEST_SECRET
from tests.shop_helpers import PLATFORM, Shop


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def live_token(room_id=3, host_id=9) -> str:
    return attribution.sign(Source(SourceType.LIVE, {"room_id": room_id, "host_id": host_id}), secret=TEST_SECRET)


def guide_token(guide_id=5) -> str:
    return attribution.sign(Source(SourceType.GUIDE, {"guide_id": guide_id}), secret=TEST_SECRET)


def test_same_sku_merges_and_a_non_organic_source_survives_an_organic_re_add(shop, client):
    sku = shop.sku(shop.brand(), price=1000)
    me = shop.shopper()

    def line():
        return client.get("/api/v1/cart", headers=me).get_json()["lines"]

    shop.add(me, sku, 1)
    shop.add(me, sku, 2, source_token=live_token())
    assert [(ln["quantity"], ln["source"]) for ln in line()] == [(3, {"type": "live", "room_id": 3, "host_id": 9})]
    shop.add(me, sku, 1)  # re-added from the product page: the live room still brought this line
    assert [(ln["quantity"], ln["source"]) for ln in line()] == [(4, {"type": "live", "room_id": 3, "host_id": 9})]
    shop.add(me, sku, 1, source_token=guide_token())  # a newer link replaces it
    assert line()[0]["source"] == {"type": "guide", "guide_id": 5}


@pytest.mark.parametrize("token", ["garbage", live_token()[:-3] + "abc"], ids=["garbage", "bad-signature"])
def test_forged_source_token_is_422_and_adds_nothing(shop, client, token):
    sku = shop.sku(shop.brand(), price=1000)
    me = shop.shopper()
    resp = client.post("/api/v1/cart/lines", json={"sku_id": sku, "source_token": token}, headers=me)
    assert resp.status_code == 422 and resp.get_json()["code"] == "attribution.invalid"
    assert client.get("/api/v1/cart", headers=me).get_json()["lines"] == []


def test_expired_source_token_is_refused(shop, client):
    sku = shop.sku(shop.brand(), price=1000)
    me = shop.shopper()
    token = live_token()
    resp = client.post("/api/v1/cart/lines", json={"sku_id": sku, "source_token": token}, headers=me)
    assert resp.status_code == 200
    import time

    real = time.time
    try:  # itsdangerous reads the wall clock
        time.time = lambda: real() + attribution.DEFAULT_MAX_AGE + 60
        resp = client.post("/api/v1/cart/lines", json={"sku_id": sku, "source_token": token}, headers=me)
    finally:
        time.time = real
    assert resp.status_code == 422 and resp.get_json()["code"] == "attribution.expired"


def test_unavailable_lines_are_flagged_not_dropped(shop, client, app):
    from api.extensions import db
    from mall.catalog import services as catalog
    from mall.catalog.models import Sku

    brand = shop.brand()
    gone, empty, short = shop.sku(brand, price=100), shop.sku(brand, price=100), shop.sku(brand, price=100, stock=2)
    me = shop.shopper()
    for sku, qty in ((gone, 1), (empty, 1), (short, 2)):
        shop.add(me, sku, qty)
    with app.app_context():
        product_id = db.session.get(Sku, gone).product_id
        catalog.set_product_status(db.session, actor=PLATFORM, product_id=product_id, status="archived")
        db.session.get(Sku, empty).stock = 0
        db.session.get(Sku, short).stock = 1
        db.session.commit()
    lines = {ln["sku_id"]: ln["problem"] for ln in client.get("/api/v1/cart", headers=me).get_json()["lines"]}
    assert lines == {gone: "archived", empty: "out_of_stock", short: "insufficient_stock"}


def test_every_change_moves_version_and_activity_time(shop, client):
    sku = shop.sku(shop.brand(), price=100)
    me = shop.shopper()
    line = shop.add(me, sku, 1)
    before = client.get("/api/v1/cart", headers=me).get_json()
    clock.advance(timedelta(minutes=5))
    after = client.patch(f"/api/v1/cart/lines/{line}", json={"quantity": 4}, headers=me).get_json()
    assert after["version"] == before["version"] + 1
    assert after["last_activity_at"] > before["last_activity_at"]
    assert after["lines"][0]["quantity"] == 4


def test_remove_and_clear(shop, client):
    brand = shop.brand()
    me = shop.shopper()
    a, b = shop.add(me, shop.sku(brand, price=100)), shop.add(me, shop.sku(brand, price=200))
    assert [ln["id"] for ln in client.delete(f"/api/v1/cart/lines/{a}", headers=me).get_json()["lines"]] == [b]
    assert client.delete("/api/v1/cart", headers=me).get_json()["lines"] == []


def test_another_shoppers_line_is_not_found(shop, client):
    sku = shop.sku(shop.brand(), price=100)
    mine = shop.add(shop.shopper(), sku, 1)
    other = shop.shopper()
    assert client.patch(f"/api/v1/cart/lines/{mine}", json={"quantity": 2}, headers=other).status_code == 404
    assert client.delete(f"/api/v1/cart/lines/{mine}", headers=other).status_code == 404


@pytest.mark.parametrize("body", [{"sku_id": 1, "quantity": 0}, {"sku_id": "1"}, {"sku_id": 1, "extra": True}])
def test_bad_input_is_422(shop, client, body):
    me = shop.shopper()
    resp = client.post("/api/v1/cart/lines", json=body, headers=me)
    assert resp.status_code == 422 and resp.get_json()["code"] == "request.invalid"


def test_draft_or_missing_sku_cannot_be_added(shop, client):
    me = shop.shopper()
    resp = client.post("/api/v1/cart/lines", json={"sku_id": 999999}, headers=me)
    assert resp.status_code == 422 and resp.get_json()["code"] == "cart.sku_unavailable"
