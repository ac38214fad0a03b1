"""Guide payouts under concurrency (PostgreSQL: real row locks; skipped on SQLite). Payout requests racing each
other and a refund's reversal on one guide never overdraw: every request checks `available` under the guide's
balance lock, so the payouts granted never exceed what was available when each ran, a balance goes negative only by
the refund (as the rules allow), and the cache is the sum of the entries. Batches processed at once with the sweep
beside them transfer each payout exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.guides.ledger_models import CommissionEntry
from tests.api.test_payout_transfers import fake_stripe, stripe, stripe_app, world  # noqa: F401 (its fixtures)
from tests.commission_helpers import T0, WINDOW, Commission, at, dashboard_refund, settle_all
from tests.payout_helpers import MINE, Payouts
from tests.shop_helpers import Shop
from workers.jobs import payouts as payout_jobs


@pytest.fixture(autouse=True)
def _postgresql(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row locks and lock waits are PostgreSQL's")


def _run_together(calls) -> list:
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_payout_requests_and_a_refund_reversal_never_overdraw(app, client, login):
    at(T0)
    earned = Commission(Shop(app, client, login))
    sku, _ = earned.sku(25000, stock=10)
    earned.card(scope="brand", basis_points=1000)
    orders = [earned.buy([(sku, 1)]) for _ in range(2)]  # each line earns 2500
    for order in orders:
        earned.ship_and_confirm(order["sub_id"])
    earned.later(WINDOW + timedelta(minutes=1))
    assert settle_all() == 2 and earned.balance() == (0, 5000, 0)
    payouts = Payouts(earned.shop, guides=earned.guides, brand=earned.brand, admin=earned.admin)
    payouts.guide = earned.guide
    payouts.account(bank_account="CN-1")

    def ask():
        resp = app.test_client().post(MINE, json={"amount": 2000}, headers=earned.guide["headers"])
        return resp.status_code, (resp.get_json() or {}).get("code")

    def refund():
        return dashboard_refund(earned, orders[0]["id"], "re_race", 25000)

    outcomes = _run_together([ask, ask, ask, ask, refund])
    assert outcomes[-1] == "refunded_rest"
    granted = [o for o in outcomes[:-1] if o[0] == 201]
    refused = [o for o in outcomes[:-1] if o[0] != 201]
    assert 1 <= len(granted) <= 2 and len(granted) * 2000 <= 5000
    assert {code for _, code in refused} <= {"payouts.insufficient_balance", "payouts.negative_balance"}
    available = earned.balance().available
    assert available == 5000 - 2500 - 2000 * len(granted) >= -2500  # below zero only by the refund's reversal
    with app.app_context():
        debits = db.session.scalar(sa.select(sa.func.count()).where(CommissionEntry.kind == "payout"))
    assert debits == len(granted) and earned.audit() == []
    if available < 0:
        assert payouts.ask(1000).get_json()["code"] == "payouts.negative_balance"


def test_many_payout_requests_at_once_take_exactly_what_is_available(app, client, login):
    at(T0)
    earned = Payouts(Shop(app, client, login))
    earned.fund(10000)

    def ask():
        return app.test_client().post(MINE, json={"amount": 1500}, headers=earned.guide["headers"]).status_code

    outcomes = _run_together([ask] * 8)
    assert outcomes.count(201) == 6 and earned.available() == 1000 and earned.audit() == []


def test_batches_and_sweeps_at_once_transfer_each_payout_exactly_once(world, fake_stripe):  # noqa: F811
    ids = [world.approved(1000)["id"] for _ in range(5)]

    def process():
        return world.own_client().post("/api/v1/admin/guides/payouts/process", json={}, headers=world.admin).json

    outcomes = _run_together([process, process, process, payout_jobs.sweep_payout_transfers])
    paid = [pid for o in outcomes[:3] for pid, outcome in o["outcomes"].items() if outcome == "paid"]
    assert sorted(map(int, paid)) == ids
    assert sorted(int(t["metadata"]["payout_id"]) for t in fake_stripe.transfers.values()) == ids
    assert all(world.row(pid).state == "paid" for pid in ids) and world.available() == 5000
    assert world.audit() == []
