"""Points over HTTP (ADR 0027): earning on what a line actually paid (after discounts, never shipping) times the
level multiplier, pending until the sub-order settles, a line refunded in three parts taking back exactly what it
earned, lots expiring oldest first over a moved clock, the daily check-in once per shop day, operators'
adjustments, the audit, the expiry reminder, the liability report, and who may read what."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.members import expiry
from mall.notifications.models import Message
from tests.catalog_helpers import assert_problem
from tests.points_helpers import ADJUST, T0, WINDOW, Points
from tests.shop_helpers import Shop
from workers.jobs.orders import settle_sub_orders
from workers.jobs.points import expire_points, remind_expiring_points

pytestmark = pytest.mark.refund_audit


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def world(shop) -> Points:
    clock.freeze(T0)
    return Points(shop)


# earning -----------------------------------------------------------------------------------------------------


def test_discounted_lines_earn_on_what_they_paid_without_shipping_times_the_level_multiplier(shop, rewire):
    from tests.coupon_helpers import Coupons

    rewire(points_level_multipliers={2: 15_000})
    clock.freeze(T0)
    world = Points(shop, fee=800)
    big, small = world.sku(3000), world.sku(1000)
    coupons = Coupons(shop)
    coupon = coupons.give(world.shopper, coupons.template(world.admin, amount=555))
    order = world.buy([(big, 1), (small, 1)], coupon_ids=[coupon])

    lines = order["lines"]
    assert (lines[big]["payable"], lines[small]["payable"]) == (2584, 861)  # 555 off by largest remainder
    assert order["shipping_total"] == 800
    assert [(lot.order_line_id, lot.amount, lot.state) for lot in world.lots()] == [
        (lines[big]["id"], 25, "pending"),
        (lines[small]["id"], 8, "pending"),
    ]  # 25.84 and 8.61 yuan, rounded down
    assert world.balance() == (0, 33, 0)
    assert world.me()["pending"] == 33 and world.me()["available"] == 0

    shop.set_level(world.shopper, 2)  # x1.5 from now on
    order = world.buy([(big, 1), (small, 1)])
    assert [lot.amount for lot in world.lots(order_id=order["id"])] == [45, 15]
    assert world.entries(order_id=order["id"])[0].reason["multiplier_bp"] == 15_000
    assert world.balance() == (0, 93, 0) and world.audit() == []


def test_points_are_pending_until_the_sub_order_settles_then_available(world):
    sku = world.sku(5000)
    order = world.buy([(sku, 1)])
    assert world.balance() == (0, 50, 0)
    world.ship_and_confirm(order["sub_id"])
    assert settle_sub_orders() == 0 and world.balance() == (0, 50, 0)  # the after-sale window is open
    world.later(WINDOW + timedelta(minutes=1))
    assert settle_sub_orders() == 1
    assert world.balance() == (50, 0, 0)
    [lot] = world.lots()
    assert lot.state == "available" and lot.available_at is not None
    assert world.me()["next_expiry"]["points"] == 50 and world.audit() == []


def test_a_line_refunded_in_three_parts_takes_back_exactly_what_it_earned(world):
    sku = world.sku(1430)
    order = world.buy([(sku, 7)])  # pays 100.10 yuan: earns 100 points
    line = order["lines"][sku]
    for quantity in (2, 2, 3):
        world.refund(order["sub_id"], line["id"], quantity)

    assert [(e.kind, e.amount) for e in world.entries(order_line_id=line["id"])] == [
        ("earn", 100),
        ("clawback", -28),
        ("clawback", -29),
        ("clawback", -43),
    ]  # 100*2//7, 100*4//7 - 28, rest
    [lot] = world.lots()
    assert lot.remaining == 0 and world.balance() == (0, 0, 0) and world.audit() == []


def test_a_partly_refunded_line_makes_the_rest_available_at_settlement(world):
    sku = world.sku(1430)
    order = world.buy([(sku, 7)])
    world.refund(order["sub_id"], order["lines"][sku]["id"], 2)
    assert world.balance() == (0, 72, 0)
    world.ship_and_confirm(order["sub_id"])
    world.later(WINDOW + timedelta(minutes=1))
    settle_sub_orders()
    assert world.balance() == (72, 0, 0) and world.audit() == []


# expiry ------------------------------------------------------------------------------------------------------


def test_lots_are_spent_and_expire_oldest_first_over_a_moved_clock(world, rewire):
    rewire(points_expiry_days=30)
    assert world.adjust(100).status_code == 201  # lot A: expires T0+30d
    world.later(timedelta(days=10))
    assert world.adjust(50).status_code == 201  # lot B: expires T0+40d
    assert world.adjust(-30).status_code == 201  # from A, the older
    first, second = world.lots()
    assert (first.remaining, second.remaining) == (70, 50)

    clock.freeze(T0 + timedelta(days=30))  # A is due: no longer spendable, even before the sweep ran
    world.later(timedelta(0))
    assert_problem(world.adjust(-60), 409, "points.insufficient")
    assert expire_points() == 1
    assert [(e.kind, e.amount, e.lot_id) for e in world.entries(kind="expire")] == [("expire", -70, first.id)]
    assert world.balance() == (50, 0, 0)
    assert world.me()["next_expiry"] == {"points": 50, "expires_at": (T0 + timedelta(days=40)).isoformat()}
    assert expire_points() == 0  # nothing twice

    clock.freeze(T0 + timedelta(days=41))
    world.later(timedelta(0))
    assert expire_points() == 1 and world.balance() == (0, 0, 0)
    assert world.me()["next_expiry"] is None and world.audit() == []


def test_the_expiry_sweep_works_in_bounded_batches_across_members(world, shop):
    others = [shop.user_id(world.login()) for _ in range(3)]
    for user_id in [world.shopper_id, *others]:
        for points in (5, 7):
            assert world.adjust(points, user_id=user_id).status_code == 201
    clock.freeze(datetime(2028, 1, 1, tzinfo=T0.tzinfo))  # past the default expiry (end of 2027, Shanghai)
    with world.app.app_context():
        assert expiry.expire_due(db.session, limit=3) == 3
        db.session.commit()
    assert expire_points(batch=2) == 5
    assert all(world.balance(u) == (0, 0, 0) for u in [world.shopper_id, *others]) and world.audit() == []


def test_a_reminder_goes_out_before_points_expire_once_per_member_and_expiry(world, rewire):
    rewire(points_expiry_days=40, points_expiry_reminder_days=30)
    world.adjust(100)
    assert remind_expiring_points() == 0  # 40 days away
    world.later(timedelta(days=11))
    assert remind_expiring_points() == 1
    assert remind_expiring_points() == 0
    with world.app.app_context():
        [message] = db.session.scalars(sa.select(Message).filter_by(template_key="points.expiring")).all()
        assert (message.user_id, message.kind, message.payload["points"]) == (world.shopper_id, "marketing", 100)
        assert expiry.points_left(db.session, world.shopper_id, message.guard)
    world.adjust(-100)
    with world.app.app_context():
        assert not expiry.points_left(db.session, world.shopper_id, message.guard)  # the send is skipped


# grants ------------------------------------------------------------------------------------------------------


def test_check_in_grants_once_per_shop_day(world, client):
    first = client.post("/api/v1/me/points/check-in", headers=world.shopper)
    assert first.status_code == 200
    assert first.get_json() | {"balance": None} == {"day": "2026-12-01", "points": 10, "granted": True, "balance": None}
    again = client.post("/api/v1/me/points/check-in", headers=world.shopper).get_json()
    assert (again["granted"], again["balance"]["available"]) == (False, 10)
    world.later(timedelta(hours=14, minutes=30))  # 00:30 the next day in Shanghai
    nxt = client.post("/api/v1/me/points/check-in", headers=world.shopper).get_json()
    assert (nxt["day"], nxt["granted"], nxt["balance"]["available"]) == ("2026-12-02", True, 20)
    assert {lot.expires_at for lot in world.lots()} == {datetime.fromisoformat("2027-12-31T16:00:00+00:00")}
    assert world.audit() == []


def test_the_sign_up_grant_is_a_lot(shop, rewire):
    rewire(points_signup_grant=50)
    clock.freeze(T0)
    world = Points(shop)
    assert world.balance() == (50, 0, 0)
    assert [(e.kind, e.amount) for e in world.entries(user_id=world.shopper_id)] == [("signup", 50)]


def test_operators_adjust_with_a_reason_idempotently(world, client):
    done = world.adjust(200, reason="apology for a late parcel", key="k1")
    assert done.status_code == 201 and done.get_json() == {"user_id": world.shopper_id, "available": 200,
                                                           "pending": 0, "reserved": 0}  # fmt: skip
    assert world.adjust(200, reason="apology for a late parcel", key="k1").get_json()["available"] == 200  # replay
    [entry] = world.entries()
    assert (entry.kind, entry.reason["note"], entry.actor_id) == ("adjust", "apology for a late parcel",
                                                                  world.shop.user_id(world.operator))  # fmt: skip
    assert world.adjust(-150).get_json()["available"] == 50
    assert_problem(world.adjust(-51), 409, "points.insufficient")
    assert_problem(world.adjust(0), 422, "points.zero_adjustment")
    assert client.post(ADJUST, json={"user_id": world.shopper_id, "points": 5},
                       headers={**world.operator, "Idempotency-Key": "x"}).status_code == 422  # no reason  # fmt: skip
    assert_problem(world.adjust(5, user_id=world.shop.user_id(world.admin)), 404, "points.member_not_found")
    assert world.adjust(5, headers=world.admin).status_code == 403
    assert world.adjust(5, headers=world.shopper).status_code == 403
    assert world.balance() == (50, 0, 0) and world.audit() == []


# reading -----------------------------------------------------------------------------------------------------


def test_a_shopper_reads_only_their_own_points_page_by_page(world, client):
    other = world.login()
    world.adjust(7, user_id=world.shop.user_id(other))
    for points in (1, 2, 3, 4, 5):
        world.adjust(points)
    seen, before = [], None
    while True:
        query = {"limit": 2} | ({"before_id": before} if before else {})
        page = client.get("/api/v1/me/points/entries", query_string=query, headers=world.shopper).get_json()
        seen += [item["amount"] for item in page["items"]]
        before = page["next_before_id"]
        if before is None:
            break
    assert seen == [5, 4, 3, 2, 1]
    assert world.me()["available"] == 15 and world.me(other)["available"] == 7
    assert world.me()["value"] == {"amount": 15, "currency": "CNY"}  # 100 points = 1 yuan
    assert client.get("/api/v1/me/points").status_code == 401
    assert client.get("/api/v1/me/points", headers=world.admin).status_code == 403


def test_the_liability_report_values_outstanding_points_net_of_the_matured_cohorts_breakage(world, client, rewire):
    rewire(points_expiry_days=30)
    world.adjust(400, brand_id=world.brand)
    world.adjust(-100)  # from the brand's lot (the older)
    world.adjust(1000)  # the platform's
    clock.freeze(T0 + timedelta(days=31))
    world.later(timedelta(0))
    expire_points()  # the brand's cohort: 300 of 400 expired; the platform's: 1000 of 1000
    world.adjust(1000, brand_id=world.brand)
    world.adjust(2000)

    report = client.get("/api/v1/admin/points/liability", headers=world.operator).get_json()
    rows = {row["brand_id"]: row for row in report["funders"]}
    assert rows[world.brand] | {} == {"brand_id": world.brand, "available": 1000, "pending": 0, "points": 1000,
                                      "value": 1000, "breakage_bp": 7500, "cohort_points": 400,
                                      "cohort_expired": 300, "net_value": 250}  # fmt: skip
    assert (rows[None]["points"], rows[None]["value"], rows[None]["breakage_bp"], rows[None]["net_value"]) == (
        2000,
        2000,
        10_000,
        0,
    )
    assert report["total"] == {"available": 3000, "pending": 0, "points": 3000, "value": 3000, "net_value": 250}
    assert "breakage" in report["method"]

    mine = client.get("/api/v1/admin/points/liability", headers=world.admin).get_json()
    assert [row["brand_id"] for row in mine["funders"]] == [world.brand]
    other = world.shop.brand()
    assert_problem(client.get("/api/v1/admin/points/liability", query_string={"brand_id": other},
                              headers=world.admin), 404, "points.brand_not_found")  # fmt: skip
    assert client.get("/api/v1/admin/points/liability", headers=world.shopper).status_code == 403


def test_the_audit_command_is_clean_and_names_a_cache_that_drifted(world, app):
    from mall.members.points_models import PointsBalance

    world.adjust(30)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mall", "points-audit"])
    assert result.exit_code == 0 and "equals" in result.output
    with app.app_context():
        db.session.execute(sa.update(PointsBalance).values(available=31))
        db.session.commit()
    result = runner.invoke(args=["mall", "points-audit"])
    assert result.exit_code == 1 and f"member {world.shopper_id}" in result.output
