"""Order placement rules, idempotency, cancellation and the unpaid timeout job."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy.orm import Session

from api.extensions import db
from mall import clock
from mall.events import DomainEvent
from mall.orders import services as orders_services
from mall.orders.models import Order
from mall.payments import services as payments
from mall.payments.gateway import OfflineGateway
from tests.shop_helpers import Shop
from workers import queues
from workers.connection import get_redis
from workers.jobs.orders import expire_unpaid_order, sweep_unpaid_orders


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def ordered(shop):
    """A shopper with one unpaid order of 2 units of a SKU that had 5."""
    sku = shop.sku(shop.brand(), price=1500, stock=5)
    me = shop.shopper()
    resp = shop.place(me, [shop.add(me, sku, 2)], shop.address(me), key="k1")
    assert resp.status_code == 201
    return me, sku, resp.get_json()


def order_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Order))


def test_same_key_with_another_body_is_422_and_orders_nothing(shop, app, ordered):
    me, sku, order = ordered
    line = shop.add(me, sku, 1)
    other_body = shop.place(me, [line], shop.address(me), key="k1")
    assert other_body.status_code == 422 and other_body.get_json()["code"] == "idempotency.key_reused"
    assert order_count(app) == 1 and shop.stock(sku) == 3


def test_exact_replay_returns_the_same_order(shop, app, client):
    sku = shop.sku(shop.brand(), price=100, stock=5)
    me = shop.shopper()
    body = {"line_ids": [shop.add(me, sku, 1)], "address_id": shop.address(me)}
    first = client.post("/api/v1/orders", json=body, headers={**me, "Idempotency-Key": "same"})
    again = client.post("/api/v1/orders", json=body, headers={**me, "Idempotency-Key": "same"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert order_count(app) == 1 and shop.stock(sku) == 4


def test_missing_idempotency_key_is_400_and_writes_nothing(shop, app, client):
    sku = shop.sku(shop.brand(), price=100, stock=5)
    me = shop.shopper()
    body = {"line_ids": [shop.add(me, sku, 1)], "address_id": shop.address(me)}
    resp = client.post("/api/v1/orders", json=body, headers=me)
    assert resp.status_code == 400 and resp.get_json()["code"] == "idempotency.key_missing"
    assert order_count(app) == 0 and shop.stock(sku) == 5


def test_another_shoppers_order_and_address_are_not_found(shop, client, ordered):
    me, sku, order = ordered
    other = shop.shopper()
    assert client.get(f"/api/v1/orders/{order['id']}", headers=other).status_code == 404
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=other).status_code == 404
    assert shop.pay(other, order["id"]).status_code == 404
    line = shop.add(other, sku, 1)
    stolen = shop.place(other, [line], shop.address(me) + 0)
    assert stolen.status_code == 404 and stolen.get_json()["code"] == "address.not_found"
    assert client.get("/api/v1/orders", headers=other).get_json() == []


def test_price_change_since_quote_is_409(shop):
    sku = shop.sku(shop.brand(), price=1000, stock=5)
    me = shop.shopper()
    resp = shop.place(me, [shop.add(me, sku, 1)], shop.address(me), expected_payable=900)
    assert resp.status_code == 409 and resp.get_json()["code"] == "checkout.price_changed"
    assert shop.stock(sku) == 5


def test_unavailable_line_blocks_the_order_and_is_named(shop):
    brand = shop.brand()
    sku = shop.sku(brand, price=1000, stock=1)
    me = shop.shopper()
    resp = shop.place(me, [shop.add(me, sku, 3)], shop.address(me))
    assert resp.status_code == 409 and resp.get_json()["code"] == "checkout.lines_unavailable"
    assert resp.get_json()["problems"][0]["reason"] == "insufficient_stock"


def test_identity_product_needs_the_member_level(shop):
    sku = shop.sku(shop.brand(), price=1000, stock=5, tier="identity", level=2)
    me = shop.shopper()
    line = shop.add(me, sku, 1)
    blocked = shop.place(me, [line], shop.address(me))
    assert blocked.get_json()["problems"][0]["reason"] == "member_level"
    shop.set_level(me, 2)
    assert shop.place(me, [line], shop.address(me)).status_code == 201


def test_cancel_releases_stock_once(shop, client, ordered):
    me, sku, order = ordered
    assert shop.stock(sku) == 3
    for _ in range(2):
        resp = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=me)
        assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    assert shop.stock(sku) == 5
    assert shop.pay(me, order["id"]).get_json()["code"] == "order.not_payable"


def test_a_payment_landing_between_the_read_and_the_cancellation_is_409_naming_the_paid_state(
    shop, client, app, ordered, monkeypatch
):
    """The shopper cancels while the payment lands: the order is read unpaid, then paid in another session
    before the cancellation moves it. The move finds it paid: 409 with the real state, nothing released."""
    me, sku, order = ordered
    read = orders_services.get_order

    def read_then_pay_elsewhere(session, **kwargs):
        found = read(session, **kwargs)
        monkeypatch.setattr(orders_services, "get_order", read)
        with Session(db.engine) as other:  # its own connection, committed before the cancellation moves
            payments.pay(other, gateway=OfflineGateway(), shopper_id=found.user_id, order_id=found.id)
            other.commit()
        return found

    monkeypatch.setattr(orders_services, "get_order", read_then_pay_elsewhere)
    resp = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=me)

    assert resp.status_code == 409, resp.get_json()
    assert resp.get_json()["code"] == "order.not_cancellable" and resp.get_json()["order_status"] == "paid"
    assert shop.stock(sku) == 3  # the paid order keeps its units
    with app.app_context():
        assert db.session.get(Order, order["id"]).status == "paid"
        kinds = db.session.scalars(sa.select(DomainEvent.type).filter_by(aggregate_id=order["id"])).all()
        assert "order.cancelled" not in kinds
    again = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=me)  # read paid: the same answer
    assert (again.status_code, again.get_json()["order_status"]) == (409, "paid")


def test_placement_schedules_the_unpaid_timeout_job(app, settings, ordered):
    _, _, order = ordered
    registry = ScheduledJobRegistry(queue=queues.queue())
    jobs = registry.get_job_ids()
    assert f"order-timeout-{order['id']}" in jobs
    assert jobs == [f"order-timeout-{order['id']}"]  # the unpaid reminder has no job: a sweep writes it when due


def test_placement_stands_when_redis_cannot_take_its_jobs(app, shop, monkeypatch, caplog):
    """The jobs go to Redis after the commit: a failure there is logged and the sweeps take over."""
    from redis.client import Pipeline
    from redis.exceptions import ConnectionError as RedisDown

    sku = shop.sku(shop.brand(), price=1000, stock=5)
    me = shop.shopper()
    line = shop.add(me, sku, 2)

    def down(self, *args, **kwargs):
        raise RedisDown("redis went away")

    monkeypatch.setattr(Pipeline, "execute", down)
    resp = shop.place(me, [line], shop.address(me))
    monkeypatch.undo()

    assert resp.status_code == 201
    assert shop.stock(sku) == 3
    assert not Job.exists(f"order-timeout-{resp.get_json()['id']}", connection=queues.queue().connection)
    # nor is it half there: the registry entry goes in the same pipeline as the job's data
    assert ScheduledJobRegistry(queue=queues.queue()).get_job_ids() == []
    assert "the periodic sweeps will run them" in caplog.text
    clock.advance(timedelta(minutes=31))
    assert sweep_unpaid_orders() == 1 and shop.stock(sku) == 5


def test_timeout_job_cancels_an_unpaid_order_once_and_releases_stock_once(app, shop, ordered):
    me, sku, order = ordered
    assert expire_unpaid_order(order["id"]) is False  # not due yet: nothing happens
    clock.advance(timedelta(minutes=31))
    assert expire_unpaid_order(order["id"]) is True
    assert expire_unpaid_order(order["id"]) is False  # the second run is a no-op
    assert shop.stock(sku) == 5
    with app.app_context():
        cancelled = db.session.get(Order, order["id"])
        assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "payment_timeout")


def test_timeout_job_is_a_noop_when_the_order_was_paid(shop, ordered):
    me, sku, order = ordered
    assert shop.pay(me, order["id"]).status_code == 200
    clock.advance(timedelta(hours=1))
    assert expire_unpaid_order(order["id"]) is False
    assert shop.stock(sku) == 3


def test_sweep_catches_orders_whose_timeout_job_was_lost(app, settings, shop, ordered):
    me, sku, order = ordered
    get_redis(settings).flushdb()  # the scheduled job is gone, as if Redis lost it
    clock.advance(timedelta(minutes=45))
    assert sweep_unpaid_orders() == 1
    assert shop.stock(sku) == 5


def test_scheduled_timeout_runs_in_a_worker(app, settings, shop, ordered):
    """RQ's scheduler moves the due job to the queue; a SimpleWorker runs it."""
    me, sku, order = ordered
    clock.advance(timedelta(minutes=31))
    queue = queues.queue()
    registry = ScheduledJobRegistry(queue=queue)
    # Due by the project clock, not yet by RQ's real one: move it to the queue as the scheduler would.
    for job_id in registry.get_job_ids():
        queue.enqueue_job(queue.fetch_job(job_id))
        registry.remove(job_id)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert shop.stock(sku) == 5
    with app.app_context():
        kinds = db.session.scalars(sa.select(DomainEvent.type).filter_by(aggregate_id=order["id"])).all()
        assert kinds.count("order.cancelled") == 1


def test_receipt_auto_confirms_after_the_configured_days(app, shop, client, ordered):
    from workers.jobs.orders import auto_confirm_receipts

    me, sku, order = ordered
    shop.pay(me, order["id"])
    sub = order["sub_orders"][0]
    brand = sub["brand_id"]
    client.post(f"/api/v1/admin/sub-orders/{sub['id']}/ship", json={"carrier": "SF", "tracking_number": "1"},
                headers=shop.merchant(brand))  # fmt: skip
    clock.advance(timedelta(days=6))
    assert auto_confirm_receipts() == 0
    clock.advance(timedelta(days=1, minutes=1))
    assert auto_confirm_receipts() == 1
    assert auto_confirm_receipts() == 0  # safe to run twice
    with app.app_context():  # (the shopper's 7-day token has expired by now)
        done = db.session.get(Order, order["id"])
        assert done.status == "completed"
        sub_row = done.sub_orders[0]
        assert sub_row.after_sale_deadline == sub_row.completed_at + timedelta(days=7)


def test_brand_admin_sees_only_its_own_sub_orders(shop, client, ordered):
    me, sku, order = ordered
    brand = order["sub_orders"][0]["brand_id"]
    mine = client.get(f"/api/v1/admin/brands/{brand}/sub-orders", headers=shop.merchant(brand)).get_json()
    assert [s["id"] for s in mine] == [order["sub_orders"][0]["id"]]
    other = shop.brand()
    assert client.get(f"/api/v1/admin/brands/{brand}/sub-orders", headers=shop.merchant(other)).status_code == 403
    assert client.get(f"/api/v1/admin/sub-orders/{mine[0]['id']}", headers=shop.merchant(other)).status_code == 403


def test_a_status_move_leaves_the_objects_as_the_database_holds_them(app, shop, ordered):
    """move() keeps what it wrote instead of reading the rows back: it must be exactly what they hold."""
    from mall.orders import services as orders

    _, _, order = ordered
    columns = ("status", "paid_at", "paid_total", "updated_at")
    with app.app_context():
        assert orders.mark_paid(db.session, order_id=order["id"], amount=order["payable_total"],
                                currency=order["currency"], reference="test") == "paid"  # fmt: skip
        placed = db.session.get(Order, order["id"])
        in_memory = [{c: getattr(o, c) for c in columns[:1] + ("updated_at",)} for o in placed.sub_orders]
        in_memory.append({c: getattr(placed, c) for c in columns})
        db.session.commit()
        db.session.expire_all()
        placed = db.session.get(Order, order["id"])
        stored = [{c: getattr(o, c) for c in columns[:1] + ("updated_at",)} for o in placed.sub_orders]
        stored.append({c: getattr(placed, c) for c in columns})
    assert in_memory == stored and stored[-1]["status"] == "paid"


def test_ordered_lines_leave_the_cart_and_its_count_and_version_follow(app, shop, client):
    from mall.cart.models import Cart

    brand = shop.brand()
    me = shop.shopper()
    kept, ordered = (
        shop.add(me, shop.sku(brand, price=1000, stock=5), 1),
        shop.add(me, shop.sku(brand, price=900, stock=5), 1),
    )
    before = client.get("/api/v1/cart", headers=me).get_json()["version"]
    assert shop.place(me, [ordered], shop.address(me)).status_code == 201
    cart = client.get("/api/v1/cart", headers=me).get_json()
    assert [line["id"] for line in cart["lines"]] == [kept] and cart["version"] == before + 1
    with app.app_context():
        assert db.session.scalar(sa.select(Cart.line_count)) == 1  # the count cart.full and nudges read


def test_a_quote_for_another_shoppers_or_a_missing_address_is_404(shop, client):
    sku = shop.sku(shop.brand(), price=1000, stock=5)
    me, other = shop.shopper(), shop.shopper()
    line = shop.add(me, sku, 1)
    for address_id in (shop.address(other), 999_999):
        resp = client.post("/api/v1/checkout/quote", json={"line_ids": [line], "address_id": address_id}, headers=me)
        assert resp.status_code == 404 and resp.get_json()["code"] == "address.not_found"
    mine = client.post("/api/v1/checkout/quote", json={"line_ids": [line], "address_id": shop.address(me)}, headers=me)
    assert mine.status_code == 200 and mine.get_json()["totals"]["payable"] == 1000


def test_a_placed_order_reads_back_exactly_as_it_was_answered(shop, client):
    """The order, its sub-orders and lines are written together: what placement answered is what is stored."""
    a, b = shop.brand(fee=800), shop.brand(fee=1200, free_above=5000)
    me = shop.shopper()
    lines = [shop.add(me, shop.sku(a, price=1990), 2), shop.add(me, shop.sku(a, price=500), 1),
             shop.add(me, shop.sku(b, price=6000), 1)]  # fmt: skip
    placed = shop.place(me, lines, shop.address(me))
    assert placed.status_code == 201
    order = placed.get_json()
    assert client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json() == order
    assert order["number"].endswith(f"{order['id']:010d}") and len(order["number"]) == 18
    by_brand = {sub["brand_id"]: sub for sub in order["sub_orders"]}
    assert (by_brand[a]["shipping_fee"], by_brand[b]["shipping_fee"]) == (800, 0)
    assert [line["unit_price"] for line in by_brand[a]["lines"]] == [1990, 500]  # ids follow the cart's order
    assert order["payable_total"] == 2 * 1990 + 500 + 800 + 6000
    assert sorted((sub["brand_id"], line["quantity"]) for sub in order["sub_orders"] for line in sub["lines"]) == [
        (a, 1), (a, 2), (b, 1)
    ]  # fmt: skip
    for sub in order["sub_orders"]:
        assert {line["sub_order_id"] for line in sub["lines"]} == {sub["id"]}
        assert sub["payable_total"] == sum(line["payable"] for line in sub["lines"]) + sub["shipping_fee"]


@pytest.mark.parametrize("path", ["/api/v1/checkout/quote", "/api/v1/orders"])
def test_line_and_address_ids_beyond_the_id_columns_are_422(shop, app, client, path):
    """Ids are 32-bit columns: a larger one is bad input, not a database error (a 500)."""
    me = shop.shopper()
    line = shop.add(me, shop.sku(shop.brand(), price=1000, stock=5), 1)
    for field, body in (
        ("line_ids", {"line_ids": [line, 2**31]}),
        ("address_id", {"line_ids": [line], "address_id": 2**40}),
    ):
        resp = client.post(
            path, json={"address_id": shop.address(me), **body}, headers={**me, "Idempotency-Key": field}
        )
        problem = resp.get_json()
        assert resp.status_code == 422 and problem["code"] == "request.invalid" and field in str(problem["errors"])
    assert order_count(app) == 0
