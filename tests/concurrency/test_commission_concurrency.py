"""The commission ledger under concurrent refunds and settlement sweeps on one guide (PostgreSQL: real row locks;
skipped on SQLite). Whatever the interleaving, every line's entries add up to exactly what it kept, the reversal
takes the state its earn had when the refund ran, and the cached balance is the sum of the entries (`audit` is
empty)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.guides import ledger
from mall.guides.ledger_models import CommissionEntry
from tests.api.test_after_sale import decide
from tests.commission_helpers import T0, WINDOW, Commission, ask_refund, at, dashboard_refund, settle_all
from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit


@pytest.fixture
def world(app, client, login) -> Commission:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row locks and lock waits are PostgreSQL's")
    at(T0)
    return Commission(Shop(app, client, login))


def _run_together(calls) -> list:
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_dashboard_refunds_and_settlement_sweeps_keep_the_balance_the_sum_of_exact_entries(world, app):
    sku, _ = world.sku(3335, stock=100)
    world.card(scope="brand", basis_points=1000)
    orders = [world.buy([(sku, 3)]) for _ in range(8)]  # each line pays 10005 and earns 1000
    for order in orders:
        world.ship_and_confirm(order["sub_id"])
    world.later(WINDOW + timedelta(minutes=1))
    refunded = orders[::2]

    def refund(order):
        return lambda: dashboard_refund(world, order["id"], f"re_{order['id']}", 10005)

    def sweep():
        return settle_all_in_batches_of(2)

    outcomes = _run_together([refund(o) for o in refunded] + [sweep, sweep])
    assert outcomes[: len(refunded)] == ["refunded_rest"] * len(refunded)
    settle_all()  # what a sweep skipped while a refund held its sub-order

    for order in orders:
        entries = world.entries(order["line_ids"][order["sub_orders"][0]["lines"][0]["sku_id"]])
        assert {e.state for e in entries} == {"available"}  # every sub-order settled; reversals moved with earns
        expected = [1000, -1000] if order in refunded else [1000]
        assert [e.amount for e in entries] == expected
    assert world.balance() == (0, 1000 * (len(orders) - len(refunded)), 0)
    assert world.audit() == []


def settle_all_in_batches_of(batch: int) -> int:
    from workers.jobs.orders import settle_sub_orders

    return settle_sub_orders(batch=batch)


def test_three_parts_of_one_line_refunded_at_once_reverse_exactly_its_commission_beside_a_payout(world, app):
    sku, _ = world.sku(3335)
    world.card(scope="brand", basis_points=1000)
    order = world.buy([(sku, 3)])
    other = world.buy([(sku, 3)])
    line_id = order["line_ids"][sku]
    cases = [ask_refund(world, order["sub_id"], line_id, 1, approve=False) for _ in range(3)]
    with app.app_context():  # some available money to pay out while the refunds run
        ledger.post(db.session, guide_id=world.guide["id"], brand_id=world.brand, currency="CNY", amount=5000,
                    kind="adjust", state="available", key="adjust:seed", reason={"rule": "test"})  # fmt: skip
        db.session.commit()

    def approve(case_id):
        return lambda: decide(app.test_client(), world.shop, world.brand, case_id).status_code

    def payout(n):
        def run():
            with app.app_context():
                held = ledger.lock_balance(db.session, world.guide["id"], "CNY")
                if held.available >= 2000:
                    ledger.post(db.session, guide_id=world.guide["id"], brand_id=world.brand, currency="CNY",
                                amount=-2000, kind="payout", state="available", key=f"payout:{n}",
                                reason={"rule": "test"}, payout_id=n)  # fmt: skip
                db.session.commit()
                return held.available

        return run

    results = _run_together([approve(c) for c in cases] + [payout(1), payout(2), payout(3)])
    assert results[:3] == [200, 200, 200]

    amounts = sorted(e.amount for e in world.entries(line_id) if e.kind == "reverse")
    assert amounts == [-334, -333, -333] and sum(amounts) == -1000
    with app.app_context():
        paid = db.session.scalar(sa.select(sa.func.count()).where(CommissionEntry.kind == "payout"))
    assert paid == 2  # 5000 available: two payouts of 2000, never a third
    assert world.balance() == (1000, 1000, 0) and world.audit() == []
    assert [e.amount for e in world.entries(other["line_ids"][sku])] == [1000]
