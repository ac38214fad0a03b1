"""Races that money and stock depend on. Real threads and connections; meaningful on PostgreSQL
(`.ci/run` runs them there), where writers do not queue behind one lock as on SQLite."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.orders.models import IdempotencyRecord, Order
from tests.shop_helpers import Shop


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def race(app, calls):
    """Run the calls at the same moment, each with its own client (own connection)."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        client = app.test_client()
        barrier.wait()
        return call(client)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def count(app, model, **where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).filter_by(**where))


def test_fifty_concurrent_orders_for_ten_units_create_exactly_ten(shop, app):
    sku = shop.sku(shop.brand(), price=990, stock=10)
    buyers = []
    for _ in range(50):
        headers = shop.shopper()
        buyers.append((headers, shop.add(headers, sku, 1), shop.address(headers)))

    def order(buyer):
        headers, line, address = buyer
        return lambda client: client.post("/api/v1/orders", json={"line_ids": [line], "address_id": address},
                                          headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip

    responses = race(app, [order(b) for b in buyers])
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 10 and statuses.count(409) == 40, statuses
    # refused at the conditional stock update, or earlier if the quote already saw zero stock
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} <= {
        "stock.insufficient",
        "checkout.lines_unavailable",
    }
    assert shop.stock(sku) == 0
    assert count(app, Order) == 10


def test_two_concurrent_placements_with_one_key_create_one_order(shop, app):
    sku = shop.sku(shop.brand(), price=1200, stock=10)
    headers = shop.shopper()
    line, address = shop.add(headers, sku, 2), shop.address(headers)
    key = uuid.uuid4().hex
    body = {"line_ids": [line], "address_id": address}

    def place(client):
        return client.post("/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": key})

    first, second = race(app, [place, place])
    assert (first.status_code, second.status_code) == (201, 201), (first.get_json(), second.get_json())
    assert first.get_json()["id"] == second.get_json()["id"]
    assert count(app, Order) == 1 and count(app, IdempotencyRecord) == 1
    assert shop.stock(sku) == 8


def test_twins_with_one_key_for_the_last_units_all_get_the_one_order(shop, app):
    """The twins that lost the race find the stock and the cart lines taken by the first: they still answer
    with its order, not with an out-of-stock error."""
    sku = shop.sku(shop.brand(), price=1200, stock=2)
    headers = shop.shopper()
    body = {"line_ids": [shop.add(headers, sku, 2)], "address_id": shop.address(headers)}
    key = uuid.uuid4().hex

    def place(client):
        return client.post("/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": key})

    responses = race(app, [place] * 4)
    assert [r.status_code for r in responses] == [201] * 4, [r.get_json() for r in responses]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 3
    assert count(app, Order) == 1 and count(app, IdempotencyRecord) == 1
    assert shop.stock(sku) == 0


def test_orders_over_the_same_skus_in_any_line_order_never_deadlock(shop, app):
    """Each order takes its SKUs in id order, however its lines were chosen: no two orders wait on each other."""
    brand = shop.brand()
    skus = [shop.sku(brand, price=500, stock=100) for _ in range(3)]
    calls = []
    for i in range(24):
        headers = shop.shopper()
        chosen = skus if i % 2 else list(reversed(skus))
        lines = [shop.add(headers, sku, 1) for sku in chosen]
        body = {"line_ids": lines, "address_id": shop.address(headers)}
        calls.append(lambda client, body=body, headers=headers: client.post(
            "/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}))  # fmt: skip

    responses = race(app, calls)

    assert [r.status_code for r in responses] == [201] * 24, [r.get_json() for r in responses if r.status_code != 201]
    assert [shop.stock(sku) for sku in skus] == [76, 76, 76]


def test_concurrent_placements_of_the_same_cart_lines_with_different_keys_create_one_order(shop, app):
    """A double tap that sends two keys: the lines are ordered once; the others are told they are gone."""
    sku = shop.sku(shop.brand(), price=1200, stock=10)
    headers = shop.shopper()
    line, address = shop.add(headers, sku, 2), shop.address(headers)

    def place(client):
        return client.post("/api/v1/orders", json={"line_ids": [line], "address_id": address},
                           headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip

    responses = race(app, [place] * 4)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, [r.get_json() for r in responses]
    # refused when the lines turn out to be gone: at the quote, or when taking them out of the cart
    assert {r.get_json()["code"] for r in responses if r.status_code != 201} <= {
        "checkout.line_unknown", "checkout.lines_changed"
    }  # fmt: skip
    assert count(app, Order) == 1 and shop.stock(sku) == 8
