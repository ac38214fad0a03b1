"""Racing changes of one member's points: payments earning, operators crediting and debiting, the expiry sweep
and check-ins at the same moment. Real threads, each with its own client (own connection); meaningful on
PostgreSQL, where they queue on the member's balance row (the ledger's lock order: balance, then lots). After the
race the cached balance equals the ledger (entries and lots), nothing expired twice, nothing was overdrawn."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.extensions import db
from mall import clock
from mall.members import ledger
from mall.members.points_models import PointsEntry, PointsHold
from tests.concurrency.test_coupon_concurrency import _waiting_on_a_lock, db_dialect
from tests.concurrency.test_order_concurrency import race
from tests.points_helpers import ADJUST, T0, Points
from tests.shop_helpers import Shop
from workers.jobs.points import expire_points


@pytest.fixture
def world(app, client, login, rewire) -> Points:
    rewire(points_expiry_days=30)
    clock.freeze(T0)
    return Points(Shop(app, client, login))


def _sum_entries(app, user_id: int) -> int:
    with app.app_context():
        query = sa.select(sa.func.coalesce(sa.func.sum(PointsEntry.amount), 0)).where(PointsEntry.user_id == user_id)
        return int(db.session.scalar(query))


def _adjust(world: Points, points: int):
    body = {"user_id": world.shopper_id, "points": points, "reason": "race"}
    headers = {**world.operator, "Idempotency-Key": uuid.uuid4().hex}
    return lambda client: client.post(ADJUST, json=body, headers=headers)


def test_concurrent_earns_expiry_adjustments_and_check_ins_keep_the_balance_equal_to_the_ledger(app, world):
    for _ in range(8):
        assert world.adjust(10).status_code == 201  # due once the clock moves on
    clock.freeze(T0 + timedelta(days=31))
    world.later(timedelta(0))
    sku = world.sku(2000)
    orders = []
    for _ in range(5):
        line = world.shop.add(world.shopper, sku, 1)
        placed = world.shop.place(world.shopper, [line], world.address)
        assert placed.status_code == 201, placed.get_json()
        orders.append(placed.get_json()["id"])
    assert world.adjust(40).status_code == 201  # available now: what the debits race for

    pays = [lambda client, o=o: client.post(f"/api/v1/orders/{o}/pay",
                                            headers={**world.shopper, "Idempotency-Key": uuid.uuid4().hex})
            for o in orders]  # fmt: skip
    sweeps = [lambda client: expire_points(batch=3) for _ in range(3)]
    checkins = [lambda client: client.post("/api/v1/me/points/check-in", headers=world.shopper) for _ in range(3)]
    credits = [_adjust(world, 5) for _ in range(4)]
    debits = [_adjust(world, -15) for _ in range(4)]
    results = race(app, pays + sweeps + checkins + credits + debits)

    assert [r.status_code for r in results[:5]] == [200] * 5
    assert sum(results[5:8]) == 8  # each due lot expired once, by whichever sweep took it
    granted = [r.get_json()["granted"] for r in results[8:11]]
    assert sorted(granted) == [False, False, True]
    assert [r.status_code for r in results[11:15]] == [201] * 4
    debited = [r.status_code for r in results[15:]]
    assert set(debited) <= {201, 409} and debited.count(201) >= 2  # 40 + 10 + up to 20 available: never overdrawn

    available, pending, reserved = world.balance()
    assert pending == 5 * 20 and reserved == 0
    assert available == 40 + 10 + 4 * 5 - 15 * debited.count(201) >= 0
    assert available + pending == _sum_entries(app, world.shopper_id)
    with app.app_context():
        expired = db.session.scalars(sa.select(PointsEntry.amount).filter_by(kind="expire")).all()
    assert sorted(expired) == [-10] * 8
    assert world.audit() == []


def test_concurrent_debits_never_overdraw(app, world):
    assert world.adjust(100).status_code == 201
    results = race(app, [_adjust(world, -30) for _ in range(10)])
    assert sorted(r.status_code for r in results) == [201] * 3 + [409] * 7
    assert world.balance() == (10, 0, 0) and world.audit() == []


def test_concurrent_placements_with_points_never_overdraw(app, world):
    """Eight orders of one member, each paying 300 points, race for 1,000: exactly three reserve (oldest lots
    first), the others are told 409 points.insufficient and leave nothing behind (no order, no hold)."""
    assert world.adjust(400).status_code == 201
    assert world.adjust(600).status_code == 201
    lines = [world.shop.add(world.shopper, world.sku(1000), 1) for _ in range(8)]

    def place(line: int):
        return lambda client: client.post("/api/v1/orders", json={"line_ids": [line], "address_id": world.address,
                                                                  "points": 300},
                                          headers={**world.shopper, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip

    results = race(app, [place(line) for line in lines])
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 3 + [409] * 5, [r.get_json() for r in results]
    assert {r.get_json()["code"] for r in results if r.status_code == 409} == {"points.insufficient"}
    assert world.balance() == (100, 0, 900)
    with app.app_context():
        holds = db.session.execute(sa.select(PointsHold.order_id, sa.func.sum(PointsHold.amount))
                                   .group_by(PointsHold.order_id)).all()  # fmt: skip
    placed = {r.get_json()["id"] for r in results if r.status_code == 201}
    assert {order_id for order_id, _ in holds} == placed and {total for _, total in holds} == {300}
    assert world.audit() == []


def test_a_placement_whose_member_changed_under_it_reserves_from_the_lots_as_they_are_now(app, world):
    """PostgreSQL reserves in one statement when the member's balance row is the version its snapshot read; here
    a rival debit holds the row, lowers the oldest lot and commits while the placement waits on it, so the
    placement's snapshot is stale: it must fall back and reserve from the lots as committed (oldest first, the
    rival's 300 gone), not be refused and not take points that are no longer there."""
    if db_dialect(app) != "postgresql":
        pytest.skip("a row lock to wait on needs PostgreSQL")
    assert world.adjust(400).status_code == 201  # the oldest lot: the rival takes 300 of it
    assert world.adjust(600).status_code == 201
    line = world.shop.add(world.shopper, world.sku(1000), 1)
    with app.app_context():
        rival = db.engine.connect()
        rival_tx = rival.begin()
        rival_session = Session(bind=rival)
        ledger.take(rival_session, user_id=world.shopper_id, amount=300, kind="adjust", key="rival", now=clock.now(),
                    reason={"rule": "race"})  # fmt: skip
        rival_session.flush()
    with ThreadPoolExecutor(1) as pool:
        placing = pool.submit(lambda: app.test_client().post(
            "/api/v1/orders", json={"line_ids": [line], "address_id": world.address, "points": 300},
            headers={**world.shopper, "Idempotency-Key": uuid.uuid4().hex}))  # fmt: skip
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(rival) and time.monotonic() < deadline and not placing.done():
            time.sleep(0.02)
        assert not placing.done(), placing.result().get_json()
        rival_tx.commit()
        placed = placing.result(timeout=10)
    rival.close()
    assert placed.status_code == 201, placed.get_json()
    assert world.balance() == (400, 0, 300)
    with app.app_context():
        holds = db.session.execute(sa.select(PointsHold.amount).where(PointsHold.order_id == placed.get_json()["id"])
                                   .order_by(PointsHold.id)).scalars().all()  # fmt: skip
    assert holds == [100, 200]  # what the rival left of the oldest lot, then the next one
    assert world.audit() == []
