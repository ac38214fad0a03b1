"""Coupon races: claims never past the total quantity or the per-shopper limit, one coupon in one order
only (macrozheng/mall #1003), and a bulk grant run by two workers at once. Real threads, each with its own
client and connection; meaningful on PostgreSQL, where the writers do not queue behind one database lock
as on SQLite."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.orders.models import Order
from mall.promotions.coupons import grants
from tests.concurrency.test_order_concurrency import count, race
from tests.coupon_helpers import DAYTIME, Coupons
from tests.shop_helpers import Shop
from workers.jobs.coupons import run_bulk_grant


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def coupons(shop) -> Coupons:
    clock.freeze(DAYTIME)
    return Coupons(shop)


def claim(coupons: Coupons, headers: dict, template_id: int):
    return lambda client: coupons.claim(headers, template_id, client=client)


def test_a_hundred_concurrent_claims_of_the_last_ten_issue_exactly_ten(app, shop, coupons):
    template = coupons.template(total_quantity=15)
    for _ in range(5):  # 5 of 15 already given out: 10 left
        coupons.give(shop.shopper(), template)
    shoppers = [shop.shopper() for _ in range(100)]

    responses = race(app, [claim(coupons, headers, template) for headers in shoppers])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 10 and statuses.count(409) == 90, sorted(statuses)
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} == {"coupon.sold_out"}
    assert coupons.template_row(template).issued_count == 15
    rows = coupons.rows(template_id=template)
    assert len(rows) == 15 and len({c.user_id for c in rows}) == 15
    winners = {r.get_json()["id"] for r in responses if r.status_code == 201}
    assert winners <= {c.id for c in rows} and len(winners) == 10


def test_one_shopper_racing_five_claims_with_different_keys_gets_one(app, shop, coupons):
    template = coupons.template(total_quantity=50, per_shopper_limit=1)
    me = shop.shopper()
    responses = race(app, [claim(coupons, me, template) for _ in range(5)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.get_json() for r in responses]
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} == {"coupon.limit_reached"}
    assert len(coupons.rows(template_id=template)) == 1
    assert coupons.template_row(template).issued_count == 1  # the losers gave their unit back


def test_one_shopper_racing_five_claims_with_one_key_gets_one_coupon_five_times(app, shop, coupons):
    template = coupons.template(total_quantity=50, per_shopper_limit=1)
    me, key = shop.shopper(), uuid.uuid4().hex
    responses = race(app, [lambda client: coupons.claim(me, template, key=key, client=client)] * 5)
    assert [r.status_code for r in responses] == [201] * 5, [r.get_json() for r in responses]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert len(coupons.rows(template_id=template)) == 1
    assert coupons.template_row(template).issued_count == 1


def test_one_shopper_racing_claims_up_to_a_limit_of_three_gets_three(app, shop, coupons):
    template = coupons.template(per_shopper_limit=3)
    me = shop.shopper()
    responses = race(app, [claim(coupons, me, template) for _ in range(8)])
    assert sorted(r.status_code for r in responses).count(201) == 3
    assert sorted(c.claim_seq for c in coupons.rows(template_id=template)) == [1, 2, 3]
    assert coupons.template_row(template).issued_count == 3


def test_five_concurrent_orders_with_one_coupon_exactly_one_gets_it(app, shop, coupons):
    """macrozheng/mall #1003: the same coupon used by several orders placed at once."""
    brand = shop.brand()
    me = shop.shopper()
    coupon = coupons.give(me, coupons.template(amount=1000))
    skus = [shop.sku(brand, price=5000, stock=3) for _ in range(5)]
    lines, address = [shop.add(me, sku) for sku in skus], shop.address(me)

    def place(line):
        return lambda client: client.post(
            "/api/v1/orders", json={"line_ids": [line], "address_id": address, "coupon_ids": [coupon]},
            headers={**me, "Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip

    responses = race(app, [place(line) for line in lines])
    placed = [r.get_json() for r in responses if r.status_code == 201]
    refused = [(r.status_code, r.get_json()["code"]) for r in responses if r.status_code != 201]
    assert len(placed) == 1, [r.get_json() for r in responses]
    assert set(refused) == {(422, "coupon.not_available")}, refused  # one code, however the race went
    assert placed[0]["discount_total"] == 1000
    held = coupons.row(coupon)
    assert (held.status, held.order_id) == ("locked", placed[0]["id"])
    assert count(app, Order) == 1
    assert sorted(shop.stock(sku) for sku in skus) == [2, 3, 3, 3, 3]  # the refused orders reserved nothing


def test_an_order_losing_the_lock_race_gets_the_same_answer_as_one_that_came_later(app, shop, coupons):
    """The quote saw the coupon available; another order locks it before this one's conditional UPDATE does:
    422 coupon.not_available, as the quote answers a moment later (not a 409 of its own). Deterministic: a
    second connection holds the coupon's row until the placement waits on it, then locks it and commits."""
    if db_dialect(app) != "postgresql":
        pytest.skip("a row lock to wait on needs PostgreSQL")
    me = shop.shopper()
    coupon = coupons.give(me, coupons.template(amount=1000))
    line, address = shop.add(me, shop.sku(shop.brand(), price=5000)), shop.address(me)
    with app.app_context():
        rival = db.engine.connect()
    rival_tx = rival.begin()
    rival.execute(sa.text("SELECT id FROM coupons WHERE id = :id FOR UPDATE"), {"id": coupon})
    with ThreadPoolExecutor(1) as pool:
        placing = pool.submit(lambda: app.test_client().post(
            "/api/v1/orders", json={"line_ids": [line], "address_id": address, "coupon_ids": [coupon]},
            headers={**me, "Idempotency-Key": uuid.uuid4().hex}))  # fmt: skip
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(rival) and time.monotonic() < deadline and not placing.done():
            time.sleep(0.02)
        assert not placing.done(), placing.result().get_json()
        rival.execute(sa.text("UPDATE coupons SET status = 'locked' WHERE id = :id"), {"id": coupon})
        rival_tx.commit()
        resp = placing.result(timeout=10)
    rival.close()
    assert (resp.status_code, resp.get_json()["code"]) == (422, "coupon.not_available"), resp.get_json()
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert count(app, Order) == 0 and coupons.row(coupon).order_id is None
    later = shop.place(me, [line], address, coupon_ids=[coupon])
    assert (later.status_code, later.get_json()["code"]) == (422, "coupon.not_available")


def db_dialect(app) -> str:
    with app.app_context():
        return db.engine.dialect.name


def _waiting_on_a_lock(conn) -> bool:
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    with conn.engine.connect() as probe:
        return probe.scalar(sa.text(query)) > 0


def test_two_workers_running_one_bulk_grant_grant_each_shopper_once_and_count_once(app, shop, coupons, monkeypatch):
    monkeypatch.setattr(grants, "BATCH", 3)
    template = coupons.template()
    shoppers = [shop.user_id(shop.shopper()) for _ in range(10)]
    started = shop.client.post(f"/api/v1/admin/coupon-templates/{template}/bulk-grants",
                               json={"user_ids": shoppers}, headers=coupons.platform())  # fmt: skip
    bulk = started.get_json()["id"]
    barrier = Barrier(2)

    def work(_):
        barrier.wait()
        run_bulk_grant(bulk)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(work, range(2)))
    progress = shop.client.get(f"/api/v1/admin/coupon-bulk-grants/{bulk}", headers=coupons.platform()).get_json()
    assert {k: progress[k] for k in ("status", "total", "done", "granted")} == {
        "status": "done", "total": 10, "done": 10, "granted": 10}  # fmt: skip
    assert sorted(c.user_id for c in coupons.rows(template_id=template)) == sorted(shoppers)
    assert coupons.template_row(template).issued_count == 10
