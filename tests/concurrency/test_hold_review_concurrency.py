"""Reviews of held commission racing each other and the settlement sweep (ADR 0024). Real threads and connections;
the lock-wait cases need PostgreSQL (row locks), the races run on both backends (serialised on SQLite)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from mall.guides import hold_review
from mall.identity.roles import Actor, Role
from mall.orders import settlement
from tests.api.test_commission_holds import held_order
from tests.commission_helpers import T0, WINDOW, Commission, at
from tests.concurrency.test_settlement_concurrency import postgres, wait_for_a_lock_wait  # noqa: F401
from tests.shop_helpers import Shop
from workers.jobs.orders import settle_sub_orders
from workers.runtime import unit_of_work


@pytest.fixture
def world(app, client, login) -> Commission:
    at(T0)
    return Commission(Shop(app, client, login))


def _review(world: Commission, action: str, entry_id: int) -> tuple[int, dict]:
    resp = world.client.application.test_client().post(
        f"/api/v1/admin/guides/commission/holds/{action}", json={"entry_ids": [entry_id], "reason": action},
        headers=world.admin)  # fmt: skip
    return resp.status_code, resp.get_json()


@pytest.mark.parametrize("second", ["release", "void"])
def test_two_reviews_of_one_entry_at_once_move_it_and_the_balance_once(world, second):
    _, line = held_order(world)
    [entry] = world.entries(line)
    barrier = threading.Barrier(2)

    def go(action):
        barrier.wait()
        return _review(world, action, entry.id)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(go, ["release", second]))

    changed = [body for status, body in answers if status == 200 and body["changed"]]
    assert len(changed) == 1, answers
    if second == "release":
        assert [status for status, _ in answers] == [200, 200]
        assert world.balance() == (100, 0, 0)
    else:  # the loser is told what the winner decided
        loser = next(body for status, body in answers if status != 200)
        assert loser["code"] == "guides.hold_decided", answers
        assert world.balance() in ((100, 0, 0), (0, 0, 0))
    assert world.audit() == []


def _settle_due_sub_order(world: Commission, order: dict) -> None:
    world.ship_and_confirm(order["sub_id"])
    world.later(WINDOW + timedelta(minutes=1))  # due, everyone signed in again


def test_a_release_waits_for_a_settling_sweep_and_then_releases_to_available(world, postgres):  # noqa: F811
    order, line = held_order(world)
    _settle_due_sub_order(world, order)
    [entry] = world.entries(line)
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
        releasing = pool.submit(_review, world, "release", entry.id)
        wait_for_a_lock_wait(world.app)  # the release waits on the sub-order row the sweep holds
        go.set()
        assert sweeping.result() == 1
        status, body = releasing.result()

    assert status == 200 and body["entries"][0]["state"] == "available", body
    assert world.balance() == (0, 100, 0) and world.audit() == []


def test_a_release_holding_the_sub_order_makes_the_sweep_skip_it_and_settle_it_after(world, postgres):  # noqa: F811
    order, line = held_order(world)
    _settle_due_sub_order(world, order)
    [entry] = world.entries(line)
    admin = Actor(world.shop.user_id(world.admin), Role.BRAND_ADMIN, world.brand)
    released, go = threading.Event(), threading.Event()

    def release():
        with unit_of_work() as session:
            done = hold_review.review(session, actor=admin, entry_ids=[entry.id], action="release", reason="ok")
            released.set()
            go.wait(10)
        return done["changed"]

    with ThreadPoolExecutor(1) as pool:
        releasing = pool.submit(release)
        assert released.wait(10) or releasing.result()
        assert settle_sub_orders() == 0  # the sweep's selection skips the row the release holds
        go.set()
        assert releasing.result() == [entry.id]

    assert world.facts(line) == [("earn", "pending", 100)]
    assert settle_sub_orders() == 1  # the next sweep settles it, and the released entry with it
    assert world.facts(line) == [("earn", "available", 100)]
    assert world.balance() == (0, 100, 0) and world.audit() == []
