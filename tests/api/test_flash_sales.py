"""Flash sales: admission codes, the flash price window, exact-once quota return, Redis loss."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.orders.models import Order
from mall.promotions.flash_sale import services
from mall.promotions.flash_sale.models import FlashItem, FlashOrder
from tests.shop_helpers import Shop
from workers.flash import gate
from workers.jobs.orders import expire_unpaid_order

START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def sale(shop, client):
    """A sale from START for one hour: SKU normally 10000, flash 3900, quota 3, limit 1 per shopper."""
    clock.freeze(START - timedelta(hours=1))
    brand = shop.brand()
    sku = shop.sku(brand, price=10000, stock=50)
    body = {"name": "Double 12", "starts_at": START.isoformat(), "ends_at": (START + timedelta(hours=1)).isoformat(),
            "items": [{"sku_id": sku, "flash_price": 3900, "quota": 3, "per_shopper_limit": 1}]}  # fmt: skip
    resp = client.post("/api/v1/admin/flash-sales", json=body, headers=shop.merchant(brand))
    assert resp.status_code == 201, resp.get_json()
    return {"id": resp.get_json()["id"], "item": resp.get_json()["items"][0]["id"], "sku": sku, "brand": brand}


def buy(shop, client, sale, headers, address, key=None):
    return client.post(
        f"/api/v1/flash-sales/{sale['id']}/items/{sale['item']}/purchase",
        json={"address_id": address},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def buyer(shop):
    headers = shop.shopper()
    return headers, shop.address(headers)


def test_rejections_before_during_and_after(shop, client, sale):
    me, address = buyer(shop)
    early = buy(shop, client, sale, me, address)
    assert early.status_code == 409 and early.get_json()["code"] == "flash_sale.not_started"
    clock.freeze(START)  # the price switches exactly at the start
    first = buy(shop, client, sale, me, address)
    assert first.status_code == 201, first.get_json()
    order = first.get_json()
    assert order["status"] == "pending_payment" and order["sub_orders"][0]["lines"][0]["unit_price"] == 3900
    assert datetime.fromisoformat(order["expires_at"]) == START + timedelta(minutes=10)
    again = buy(shop, client, sale, me, address)
    assert again.status_code == 409 and again.get_json()["code"] == "flash_sale.limit_reached"
    for _ in range(2):
        assert buy(shop, client, sale, *buyer(shop)).status_code == 201
    sold_out = buy(shop, client, sale, *buyer(shop))
    assert sold_out.status_code == 409 and sold_out.get_json()["code"] == "flash_sale.sold_out"
    clock.freeze(START + timedelta(hours=1))
    late = buy(shop, client, sale, *buyer(shop))
    assert late.get_json()["code"] == "flash_sale.ended"
    assert shop.stock(sale["sku"]) == 47  # the quota draws the normal stock down


def test_listing_shows_phase_and_remaining(shop, client, sale):
    assert client.get("/api/v1/flash-sales?when=upcoming").get_json()[0]["phase"] == "upcoming"
    clock.freeze(START + timedelta(minutes=1))
    buy(shop, client, sale, *buyer(shop))
    live = client.get("/api/v1/flash-sales?when=live").get_json()
    assert live[0]["phase"] == "live" and live[0]["items"][0]["remaining"] == 2


def test_timed_out_flash_order_gives_its_unit_back_exactly_once(app, shop, client, sale):
    clock.freeze(START)
    me, address = buyer(shop)
    order = buy(shop, client, sale, me, address).get_json()
    clock.advance(timedelta(minutes=11))
    assert expire_unpaid_order(order["id"]) is True
    assert expire_unpaid_order(order["id"]) is False
    with app.app_context():
        remaining, buyers = services.truth(db.session, sale["item"])
        assert (remaining, buyers) == (3, {})
        assert db.session.get(FlashItem, sale["item"]).sold == 0
    assert gate().counters(sale["item"]) == (3, {})
    assert shop.stock(sale["sku"]) == 50
    assert buy(shop, client, sale, me, address).status_code == 201  # the shopper may try again


def test_quota_is_rebuilt_from_the_database_when_redis_loses_it(app, shop, client, sale, settings):
    from workers.connection import get_redis

    clock.freeze(START)
    holders = [buyer(shop) for _ in range(2)]
    for headers, address in holders:
        assert buy(shop, client, sale, headers, address).status_code == 201
    get_redis(settings).flushdb()  # Redis restarted empty
    assert buy(shop, client, sale, *holders[0]).get_json()["code"] == "flash_sale.limit_reached"
    assert buy(shop, client, sale, *buyer(shop)).status_code == 201
    assert buy(shop, client, sale, *buyer(shop)).get_json()["code"] == "flash_sale.sold_out"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(FlashOrder)) == 3


def test_reconcile_fixes_drifted_counters(app, shop, client, sale, login):
    clock.freeze(START)
    buy(shop, client, sale, *buyer(shop))
    gate().load(item_id=sale["item"], remaining=0, buyers={})  # drifted: says sold out
    resp = client.post(f"/api/v1/admin/flash-sales/{sale['id']}/reconcile", headers=shop.merchant(sale["brand"]))
    assert resp.get_json()[0]["agree"] is False and resp.get_json()[0]["database_remaining"] == 2
    assert gate().counters(sale["item"])[0] == 2
    again = client.post(f"/api/v1/admin/flash-sales/{sale['id']}/reconcile", headers=shop.merchant(sale["brand"]))
    assert again.get_json()[0]["agree"] is True


def test_remind_me_queues_a_reminder_five_minutes_before(app, shop, client, sale):
    from mall.notifications.models import Message

    me = shop.shopper()
    assert client.post(f"/api/v1/flash-sales/{sale['id']}/remind-me", headers=me).status_code == 204
    assert client.post(f"/api/v1/flash-sales/{sale['id']}/remind-me", headers=me).status_code == 204
    with app.app_context():
        reminders = db.session.scalars(sa.select(Message).filter_by(template_key="flash_sale.starting")).all()
        assert [m.send_after for m in reminders] == [START - timedelta(minutes=5)]


def test_paid_flash_order_keeps_its_unit(app, shop, client, sale):
    clock.freeze(START)
    me, address = buyer(shop)
    order = buy(shop, client, sale, me, address).get_json()
    assert shop.pay(me, order["id"]).status_code == 200
    clock.advance(timedelta(hours=1))
    assert expire_unpaid_order(order["id"]) is False
    with app.app_context():
        assert db.session.get(Order, order["id"]).status == "paid"
        assert services.truth(db.session, sale["item"])[0] == 2


def test_normal_stock_running_out_before_the_quota_refuses_and_keeps_the_unit(app, shop, client, sale):
    """The flash quota draws down the SKU's normal stock: with none left there is nothing to sell."""
    clock.freeze(START)
    with app.app_context():
        db.session.execute(sa.text("UPDATE skus SET stock = 0 WHERE id = :id"), {"id": sale["sku"]})
        db.session.commit()
    me, address = buyer(shop)

    refused = buy(shop, client, sale, me, address)

    assert refused.status_code == 409 and refused.get_json()["code"] == "stock.insufficient"
    assert gate().counters(sale["item"])[0] == 3  # the admission's unit went back to the quota
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
        assert db.session.get(FlashItem, sale["item"]).sold == 0


def test_a_ten_minute_flash_order_is_reminded_five_minutes_before_it_closes(app, shop, client, sale):
    """Not at the default 10 minutes after placement: that is the moment it is cancelled."""
    from mall.notifications.models import Message
    from workers.jobs.notifications import sweep_unpaid_reminders

    clock.freeze(START)
    order = buy(shop, client, sale, *buyer(shop)).get_json()
    clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    assert sweep_unpaid_reminders() == 0
    clock.advance(timedelta(seconds=1))
    assert sweep_unpaid_reminders() == 1
    with app.app_context():
        reminder = db.session.scalar(sa.select(Message).filter_by(template_key="order.unpaid_reminder"))
        assert reminder.payload["order_id"] == order["id"]
        assert reminder.send_after == START + timedelta(minutes=5)


def test_a_lost_commit_gives_the_unit_back_once_and_the_key_may_be_retried(app, shop, client, sale, monkeypatch):
    from sqlalchemy.orm import Session

    clock.freeze(START)
    me, address = buyer(shop)
    key = uuid.uuid4().hex
    commit = Session.commit

    def lost(self):
        raise ConnectionError("the database went away at commit")

    monkeypatch.setattr(Session, "commit", lost)
    failed = buy(shop, client, sale, me, address, key)
    monkeypatch.setattr(Session, "commit", commit)

    assert failed.status_code == 500 and failed.get_json()["status"] == 500
    assert gate().counters(sale["item"]) == (3, {})  # one unit back, the buyer forgotten: exactly once
    retried = buy(shop, client, sale, me, address, key)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert gate().counters(sale["item"])[0] == 2


# Redis lost the counters while admitted purchases were still in flight ------------------------------------


@pytest.fixture
def rebuilt_mid_purchase(settings, monkeypatch):
    """Make the next purchase lose its counters right after its admission: Redis is flushed and another request
    (its own connection) rebuilds them from the database, which does not hold the purchase yet. `then()` runs
    after the purchase took its units, before its commit."""
    from workers.connection import get_redis

    find_item, take_units, hooks = services._item, services._take_units, {"then": None}

    def admitted_then_lost(session, sale_id, item_id):
        if hooks.pop("once", True):
            get_redis(settings).flushdb()
            with sa.orm.Session(db.engine) as other:
                services.rebuild(other, gate(), item=other.get(FlashItem, item_id))
                other.commit()
        return find_item(session, sale_id, item_id)

    def then_take_units(*args):
        marker = take_units(*args)
        if hooks["then"] is not None:
            hooks["then"]()
        return marker

    monkeypatch.setattr(services, "_item", admitted_then_lost)
    monkeypatch.setattr(services, "_take_units", then_take_units)
    return hooks


def page_remaining(client, sale) -> int:
    return client.get(f"/api/v1/flash-sales/{sale['id']}").get_json()["items"][0]["remaining"]


def test_a_purchase_in_flight_when_redis_lost_the_counters_takes_its_unit_from_the_rebuilt_ones(
    app, shop, client, sale, rebuilt_mid_purchase
):
    clock.freeze(START)
    me, address = buyer(shop)
    assert buy(shop, client, sale, me, address).status_code == 201
    with app.app_context():
        truth = services.truth(db.session, sale["item"])
    assert truth == (2, {shop.user_id(me): 1})
    assert gate().counters(sale["item"]) == truth  # converged at once, not at the next reconcile
    assert page_remaining(client, sale) == 2
    assert buy(shop, client, sale, me, address).get_json()["code"] == "flash_sale.limit_reached"


def test_a_purchase_in_flight_when_redis_lost_the_counters_that_fails_gives_nothing_to_the_rebuilt_ones(
    app, shop, client, sale, rebuilt_mid_purchase
):
    from mall.errors import Conflict

    def fail():
        raise Conflict("stock.insufficient", "Not enough stock.")

    rebuilt_mid_purchase["then"] = fail
    clock.freeze(START)
    assert buy(shop, client, sale, *buyer(shop)).status_code == 409
    assert gate().counters(sale["item"]) == (3, {})  # not 4: the rebuilt counters never counted it
    assert page_remaining(client, sale) == 3


def test_the_sale_page_never_shows_more_than_the_database_allows(app, shop, client, sale):
    clock.freeze(START)
    assert buy(shop, client, sale, *buyer(shop)).status_code == 201
    gate().load(item_id=sale["item"], remaining=3, buyers={})  # counters that say more than the database allows
    assert page_remaining(client, sale) == 2
    assert client.get("/api/v1/flash-sales?when=live").get_json()[0]["items"][0]["remaining"] == 2


def test_the_reconcile_job_reloads_drifted_counters_item_by_item(shop, client, sale):
    from workers.jobs.flash_sales import reconcile_flash_sales

    clock.freeze(START)
    assert buy(shop, client, sale, *buyer(shop)).status_code == 201
    gate().load(item_id=sale["item"], remaining=3, buyers={})  # drifted
    [found] = reconcile_flash_sales()
    assert (found["agree"], found["database_remaining"], found["redis_remaining"]) == (False, 2, 3)
    assert gate().counters(sale["item"])[0] == 2
    assert reconcile_flash_sales()[0]["agree"] is True
