"""Settlement: a sub-order settles once its after-sale window has closed with no after-sale case open, exactly
once, with a `sub_order.settled` event in the order's history; no case opens after the window or on a settled
sub-order, and a case asked for inside the window can still be decided after it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.events import DomainEvent
from mall.orders import settlement
from mall.orders.models import SubOrder
from tests.api.test_after_sale import ask, decide
from tests.shop_helpers import Shop
from workers.jobs import orders as order_jobs
from workers.jobs.orders import settle_sub_orders

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=7)  # the default ORDER_AFTER_SALE_DAYS


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


class Received:
    """A sub-order whose receipt the shopper confirmed at T0 (so its window closes at T0 + 7 days)."""

    def __init__(self, shop, client, *, brand=None, units=2, price=1000, at=T0):
        clock.freeze(at)
        self.shop, self.client, self.name = shop, client, f"shopper-{uuid.uuid4().hex[:6]}"
        self.brand = brand or shop.brand()
        me = shop.shopper(self.name)
        sku = shop.sku(self.brand, price=price, stock=10)
        order = shop.place(me, [shop.add(me, sku, units)], shop.address(me)).get_json()
        assert shop.pay(me, order["id"]).status_code == 200
        self.order_id, sub = order["id"], order["sub_orders"][0]
        self.sub_id, self.line_id = sub["id"], sub["lines"][0]["id"]
        shipped = client.post(f"/api/v1/admin/sub-orders/{self.sub_id}/ship", headers=shop.merchant(self.brand),
                              json={"carrier": "SF", "tracking_number": "1"})  # fmt: skip
        assert shipped.status_code == 200, shipped.get_json()
        done = client.post(f"/api/v1/sub-orders/{self.sub_id}/confirm-receipt", headers=me)
        assert done.get_json()["after_sale_deadline"] is not None

    def me(self) -> dict:
        """The shopper's headers now (a token from T0 has expired 7 days later)."""
        return self.shop.shopper(self.name)

    def ask(self, quantity=1, client=None, headers=None):
        return ask(client or self.client, headers or self.me(), self.sub_id, self.line_id, quantity)

    def events(self, kind="sub_order.settled") -> list[dict]:
        resp = self.client.get(f"/api/v1/orders/{self.order_id}/events", headers=self.me())
        assert resp.status_code == 200, resp.get_json()
        return [e for e in resp.get_json() if e["type"] == kind]

    def settled_at(self, app):
        with app.app_context():
            return db.session.get(SubOrder, self.sub_id).settled_at


def after_window(delta=timedelta(minutes=1)):
    clock.freeze(T0 + WINDOW + delta)


def test_a_sub_order_settles_after_its_window_with_no_case_once_and_the_event_is_in_the_order_history(
    shop, client, app
):
    got = Received(shop, client)
    clock.freeze(T0 + WINDOW - timedelta(seconds=1))
    assert settle_sub_orders() == 0  # the window is still open
    after_window()

    assert settle_sub_orders() == 1
    assert settle_sub_orders() == 0  # exactly once

    assert got.settled_at(app) == clock.now()
    [event] = got.events()
    assert event["payload"] == {"sub_order_id": got.sub_id, "brand_id": got.brand, "settled_at": clock.now().isoformat(),
                                "payable_total": 2000, "refunded_total": 0, "settled_total": 2000}  # fmt: skip
    sub = client.get(f"/api/v1/orders/{got.order_id}", headers=got.me()).get_json()["sub_orders"][0]
    assert sub["settled_at"] is not None


def test_an_unreceived_or_unpaid_sub_order_never_settles(shop, client, app):
    clock.freeze(T0)
    brand = shop.brand()
    me = shop.shopper()
    order = shop.place(me, [shop.add(me, shop.sku(brand, price=500), 1)], shop.address(me)).get_json()
    shop.pay(me, order["id"])
    shop.place(me, [shop.add(me, shop.sku(brand, price=500), 1)], shop.address(me))  # never paid
    clock.freeze(T0 + timedelta(days=60))
    assert settle_sub_orders() == 0


def test_no_settlement_while_a_case_is_open_and_the_next_sweep_settles_once_it_is_decided_late(shop, client, app):
    got = Received(shop, client)
    clock.freeze(T0 + WINDOW - timedelta(hours=1))
    case = got.ask(1)
    assert case.status_code == 201, case.get_json()  # asked inside the window
    after_window(timedelta(days=3))
    assert settle_sub_orders() == 0
    assert got.settled_at(app) is None

    approved = decide(client, shop, got.brand, case.get_json()["id"])  # decided after the window: allowed
    assert approved.status_code == 200 and approved.get_json()["status"] == "refunded", approved.get_json()

    assert settle_sub_orders() == 1
    [event] = got.events()
    assert event["payload"]["refunded_total"] == 1000 and event["payload"]["settled_total"] == 1000


def test_a_rejected_late_case_lets_the_next_sweep_settle(shop, client, app):
    got = Received(shop, client)
    case = got.ask(2).get_json()
    after_window()
    assert settle_sub_orders() == 0
    assert decide(client, shop, got.brand, case["id"], "reject").status_code == 200
    assert settle_sub_orders() == 1
    assert got.events()[0]["payload"]["refunded_total"] == 0


def test_no_case_opens_after_the_window_nor_on_a_settled_sub_order(shop, client, app):
    got = Received(shop, client)
    clock.freeze(T0 + WINDOW)
    assert got.ask(1).status_code == 201  # the deadline itself is still inside
    got2 = Received(shop, client, brand=got.brand)
    after_window()

    late = got2.ask(1)
    assert late.status_code == 409 and late.get_json()["code"] == "after_sale.window_closed", late.get_json()

    assert settle_sub_orders() == 1  # got2 only: got has its case open
    on_settled = got2.ask(1)
    assert on_settled.status_code == 409 and on_settled.get_json()["code"] == "after_sale.settled"
    assert on_settled.headers["Content-Type"] == "application/problem+json"


def test_the_sweep_goes_in_bounded_batches_oldest_deadline_first(shop, client, app, monkeypatch):
    subs = [Received(shop, client, at=T0 + timedelta(minutes=5 - i)) for i in range(5)]  # the last closes first
    after_window(timedelta(minutes=10))

    with app.app_context():
        assert settlement.settle_due(db.session, limit=2) == 2
        db.session.commit()
        settled = set(db.session.scalars(sa.select(SubOrder.id).where(SubOrder.settled_at.is_not(None))))
    assert settled == {subs[4].sub_id, subs[3].sub_id}
    ticks = iter([0.0, 0.0, 241.0])  # the run's start, before its first batch, before its second: past the budget
    with monkeypatch.context() as clock_of_the_job:
        clock_of_the_job.setattr(order_jobs, "_seconds", lambda: next(ticks))
        assert settle_sub_orders(batch=2) == 2  # a run ends when its time budget is spent
    assert settle_sub_orders(batch=2) == 1  # the rest, and the short batch ends the run
    assert settle_sub_orders(batch=2) == 0
    with app.app_context():
        kinds = db.session.scalars(sa.select(DomainEvent.type).where(DomainEvent.type == "sub_order.settled")).all()
    assert len(kinds) == 5


def test_a_sweep_given_already_settled_ids_records_nothing_again(shop, client, app):
    got = Received(shop, client)
    after_window()
    with app.app_context():
        assert settlement.settle(db.session, sub_order_ids=[got.sub_id], now=clock.now()) == [got.sub_id]
        assert settlement.settle(db.session, sub_order_ids=[got.sub_id], now=clock.now()) == []
        db.session.commit()
    assert len(got.events()) == 1


def test_a_sub_order_refunded_in_full_after_receipt_settles_with_nothing_left_to_settle(shop, client, app):
    got = Received(shop, client)
    case = got.ask(2).get_json()
    assert decide(client, shop, got.brand, case["id"]).get_json()["status"] == "refunded"
    after_window()
    assert settle_sub_orders() == 1
    [event] = got.events()
    assert (event["payload"]["refunded_total"], event["payload"]["settled_total"]) == (2000, 0)
    sub = client.get(f"/api/v1/orders/{got.order_id}", headers=got.me()).get_json()["sub_orders"][0]
    assert sub["status"] == "closed" and sub["settled_at"] is not None
