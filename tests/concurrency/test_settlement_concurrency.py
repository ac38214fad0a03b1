"""Settlement against concurrent sweeps and a late after-sale request. Real threads and connections; the
lock-order tests need PostgreSQL (row locks); the races run on both backends (serialised on SQLite)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.events import DomainEvent
from mall.identity.roles import Actor, Role
from mall.orders import after_sale, settlement
from mall.orders.after_sale import AfterSale
from mall.orders.models import SubOrder
from tests.api.test_settlement import T0, WINDOW, Received
from tests.shop_helpers import Shop
from workers.jobs.orders import settle_sub_orders
from workers.runtime import unit_of_work


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def postgres(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row locks and lock waits are PostgreSQL's")


def settled_events(app) -> list[int]:
    with app.app_context():
        rows = db.session.scalars(sa.select(DomainEvent.payload).where(DomainEvent.type == "sub_order.settled"))
        return sorted(payload["sub_order_id"] for payload in rows)


def rows(app, sub_id) -> tuple:
    """(settled?, open cases counted on the sub-order, after-sale rows still requested)."""
    with app.app_context():
        sub = db.session.get(SubOrder, sub_id)
        open_rows = db.session.scalar(
            sa.select(sa.func.count()).select_from(AfterSale).filter_by(sub_order_id=sub_id, status="requested")
        )
        return sub.settled_at is not None, sub.open_after_sales, open_rows


def wait_for_a_lock_wait(app, timeout=10.0) -> None:
    """Until another connection of this database waits on a row lock (the race's second party is blocked)."""
    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            waiting = db.session.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ))  # fmt: skip
            db.session.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("nobody waited on the lock")


def test_two_concurrent_sweeps_settle_each_due_sub_order_exactly_once(shop, client, app):
    subs = [Received(shop, client) for _ in range(6)]
    clock.freeze(T0 + WINDOW + timedelta(minutes=1))
    barrier = threading.Barrier(2)

    def sweep(_):
        barrier.wait()
        return settle_sub_orders(batch=2)

    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(sweep, range(2)))

    assert sum(counts) == 6, counts
    assert settled_events(app) == sorted(s.sub_id for s in subs)


def test_two_settlements_of_the_same_ids_at_once_record_each_once(shop, client, app):
    """Without the sweep's SKIP LOCKED selection: the conditional UPDATE alone decides, by its rows."""
    subs = [Received(shop, client) for _ in range(4)]
    clock.freeze(T0 + WINDOW + timedelta(minutes=1))
    ids = [s.sub_id for s in subs]
    barrier = threading.Barrier(2)

    def settle(_):
        with unit_of_work() as session:
            barrier.wait()
            return settlement.settle(session, sub_order_ids=ids, now=clock.now())

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(settle, range(2))

    assert sorted(first + second) == sorted(ids), (first, second)
    assert settled_events(app) == sorted(ids)


def test_a_sweep_holding_the_sub_order_makes_the_racing_request_409_settled(shop, client, app, postgres):
    got = Received(shop, client)
    clock.freeze(T0 + WINDOW)  # the last instant of the window: the request is in time, the sub-order is due
    me = got.me()
    swept, go = threading.Event(), threading.Event()

    def sweep():
        with unit_of_work() as session:
            n = settlement.settle_due(session)
            swept.set()
            go.wait(10)
        return n

    with ThreadPoolExecutor(2) as pool:
        sweeping = pool.submit(sweep)
        assert swept.wait(10)
        asking = pool.submit(lambda: got.ask(1, client=app.test_client(), headers=me))
        wait_for_a_lock_wait(app)  # the request waits on the sub-order's row
        go.set()
        assert sweeping.result() == 1
        refused = asking.result()

    assert refused.status_code == 409 and refused.get_json()["code"] == "after_sale.settled", refused.get_json()
    assert rows(app, got.sub_id) == (True, 0, 0)
    assert settled_events(app) == [got.sub_id]


def test_a_request_holding_the_sub_order_makes_the_racing_sweep_skip_it(shop, client, app, postgres):
    got = Received(shop, client)
    shopper_id = shop.user_id(got.me())
    clock.freeze(T0 + WINDOW)
    asked, go = threading.Event(), threading.Event()

    def request():
        with unit_of_work() as session:
            case = after_sale.request(session, shopper_id=shopper_id, sub_order_id=got.sub_id, reason="late",
                                      return_goods=False, lines=[{"order_line_id": got.line_id, "quantity": 1}])  # fmt: skip
            asked.set()
            go.wait(10)
        return case.id

    def settle_it():  # the UPDATE itself, waiting on the request's row lock, then checking the row again
        with unit_of_work() as session:
            return settlement.settle(session, sub_order_ids=[got.sub_id], now=clock.now())

    with ThreadPoolExecutor(2) as pool:
        asking = pool.submit(request)
        assert asked.wait(10)
        with unit_of_work() as session:
            assert settlement.settle_due(session) == 0  # the sweep's selection skips the locked row
        settling = pool.submit(settle_it)
        wait_for_a_lock_wait(app)
        go.set()
        case_id = asking.result()
        assert settling.result() == []

    assert rows(app, got.sub_id) == (False, 1, 1)
    assert settled_events(app) == []
    clock.advance(timedelta(days=1))
    assert settle_sub_orders() == 0
    with app.app_context():
        after_sale.reject(db.session, actor=Actor(0, Role.BRAND_ADMIN, got.brand), after_sale_id=case_id, note=None)
        db.session.commit()
    assert settle_sub_orders() == 1
    assert rows(app, got.sub_id) == (True, 0, 0)


def test_late_requests_racing_the_sweep_never_leave_a_settled_sub_order_with_an_open_case(shop, client, app):
    subs = [Received(shop, client) for _ in range(6)]
    clock.freeze(T0 + WINDOW)
    heads = [s.me() for s in subs]
    barrier = threading.Barrier(len(subs) + 1)

    def ask(i):
        barrier.wait()
        return subs[i].ask(1, client=app.test_client(), headers=heads[i])

    def sweep():
        barrier.wait()
        return settle_sub_orders()

    with ThreadPoolExecutor(len(subs) + 1) as pool:
        sweeping = pool.submit(sweep)
        answers = list(pool.map(ask, range(len(subs))))
        settled = sweeping.result()

    for got, answer in zip(subs, answers, strict=True):
        if answer.status_code == 201:
            assert rows(app, got.sub_id) == (False, 1, 1)
        else:
            assert answer.status_code == 409 and answer.get_json()["code"] == "after_sale.settled", answer.get_json()
            assert rows(app, got.sub_id) == (True, 0, 0)
    assert settled == sum(a.status_code == 409 for a in answers)
    assert settled_events(app) == sorted(s.sub_id for s, a in zip(subs, answers, strict=True) if a.status_code == 409)
