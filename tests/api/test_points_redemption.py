"""Paying with points over HTTP (ADR 0029): the quote shows the most a shopper can use and refuses more (problem+
json), placement reserves oldest lots first, payment spends, cancellation returns to the same lots (a lot expired
meanwhile: a new lot with the grace period), and a line refunded in three parts re-credits exactly its points to
the lots they came from. The audit stays clean throughout."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.members.points_models import PointsBalance
from tests.catalog_helpers import assert_problem
from tests.points_helpers import T0, Points
from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit
QUOTE = "/api/v1/checkout/quote"


@pytest.fixture
def world(app, client, login, rewire) -> Points:
    rewire(points_expiry_days=30)  # lots expire 30 days after their grant: two lots, two expiries
    clock.freeze(T0)
    return Points(Shop(app, client, login))


def lots_granted(world: Points, *amounts: int) -> list[int]:
    """One lot per amount, a day apart (so oldest expiry first is grant order); their ids."""
    for i, amount in enumerate(amounts):
        if i:
            world.later(timedelta(days=1))
        assert world.adjust(amount).status_code == 201
    return [lot.id for lot in world.lots()]


def quote(world: Points, line_ids: list[int], **extra):
    return world.client.post(QUOTE, json={"line_ids": line_ids, **extra}, headers=world.shopper)


def place(world: Points, items: list[tuple[int, int]], points: int) -> dict:
    line_ids = [world.shop.add(world.shopper, sku, qty) for sku, qty in items]
    placed = world.shop.place(world.shopper, line_ids, world.address, points=points)
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    order["lines"] = {line["sku_id"]: line for sub in order["sub_orders"] for line in sub["lines"]}
    order["sub_id"] = order["sub_orders"][0]["id"]
    return order


def cancel(world: Points, order_id: int) -> None:
    cancelled = world.client.post(f"/api/v1/orders/{order_id}/cancel", headers=world.shopper)
    assert cancelled.status_code == 200, cancelled.get_json()


def moves(world: Points, **where) -> list[tuple[str, int, int]]:
    return [(e.kind, e.amount, e.lot_id) for e in world.entries(**where) if e.kind not in ("adjust", "earn")]


def test_the_quote_shows_the_most_points_usable_and_applies_what_was_asked(world):
    line = world.shop.add(world.shopper, world.sku(6000))
    none = quote(world, [line]).get_json()
    assert none["points"] == {"available": 0, "points_per_unit": 100, "max_share_bp": 5000, "max_points": 0,
                              "max_value": 0, "applied_points": 0, "applied_value": 0}  # fmt: skip
    lots_granted(world, 5000)
    shown = quote(world, [line]).get_json()
    assert shown["points"]["max_points"] == 3000 and shown["points"]["max_value"] == 3000  # half of 60.00 yuan
    assert shown["totals"]["payable"] == 6000

    used = quote(world, [line], points=3000).get_json()
    assert used["points"]["applied_points"] == 3000 and used["points"]["applied_value"] == 3000
    assert used["totals"] == {"items": 6000, "discounts": 3000, "shipping": 0, "payable": 3000}
    assert used["lines"][0]["discounts"] == [{"source": "points", "amount": 3000}]
    assert [(d["step"], d["source"], d["amount"]) for d in used["discounts"]] == [("points", "points", 3000)]
    assert world.balance() == (5000, 0, 0)  # a quote changes nothing


def test_asking_for_more_points_than_allowed_is_a_clear_problem_and_changes_nothing(world):
    lots_granted(world, 5000)
    line = world.shop.add(world.shopper, world.sku(6000))
    over = assert_problem(quote(world, [line], points=3100), 422, "points.over_limit", field="points")
    assert over["max_points"] == 3000
    assert_problem(quote(world, [line], points=150), 422, "points.not_whole_units", field="points")
    assert quote(world, [line], points=-100).status_code == 422
    assert quote(world, [line], points="lots").status_code == 422
    big = world.shop.add(world.shopper, world.sku(20000))
    short = assert_problem(quote(world, [big], points=6000), 409, "points.insufficient")
    assert short["available"] == 5000
    refused = world.shop.place(world.shopper, [line], world.address, points=3100)
    assert_problem(refused, 422, "points.over_limit", field="points")
    assert world.balance() == (5000, 0, 0) and world.audit() == []


def test_placement_reserves_oldest_lots_first_payment_spends_cancellation_returns(world):
    older, newer = lots_granted(world, 300, 500)
    sku = world.sku(2000)
    order = place(world, [(sku, 1)], points=600)
    assert order["payable_total"] == 1400
    assert moves(world, order_id=order["id"]) == [("redeem", -300, older), ("redeem", -300, newer)]
    assert world.balance() == (200, 0, 600) and world.me()["reserved"] == 600
    assert world.audit() == []
    assert world.shop.pay(world.shopper, order["id"]).status_code == 200
    assert world.balance() == (200, 0 + 14, 0) and world.audit() == []  # 14 earned (pending) on the 14.00 paid

    second = place(world, [(sku, 1)], points=200)
    assert world.balance() == (0, 14, 200)
    cancel(world, second["id"])
    assert moves(world, order_id=second["id"]) == [("redeem", -200, newer), ("return", 200, newer)]
    assert world.balance() == (200, 14, 0) and world.audit() == []


def test_points_of_a_cancelled_order_whose_lot_expired_meanwhile_come_back_as_a_new_lot_with_grace(world):
    [lot] = lots_granted(world, 400)
    order = place(world, [(world.sku(2000), 1)], points=400)
    clock.freeze(T0 + timedelta(days=31))  # the lot expired (at T0+30d) while the order waited
    world.later(timedelta(0))
    cancel(world, order["id"])
    fresh = world.lots()[-1]
    assert (fresh.source, fresh.amount, fresh.remaining) == ("recredit", 400, 400)
    assert fresh.expires_at == clock.now() + timedelta(days=30)
    assert moves(world, order_id=order["id"]) == [("redeem", -400, lot), ("recredit", 400, fresh.id)]
    assert world.balance() == (400, 0, 0) and world.audit() == []


def test_a_line_refunded_in_three_parts_re_credits_exactly_its_points_to_the_lots_they_came_from(world):
    older, newer = lots_granted(world, 1000, 3000)
    sku = world.sku(1000)
    order = place(world, [(sku, 7)], points=3500)  # the cap: half of 70.00 yuan
    assert world.shop.pay(world.shopper, order["id"]).status_code == 200
    line = order["lines"][sku]
    for quantity in (2, 2, 3):
        world.refund(order["sub_id"], line["id"], quantity)

    back = [(e.kind, e.amount, e.lot_id) for e in world.entries(kind="recredit")]
    # 3500*2//7 = 1000, 3500*4//7 - 1000 = 1000, the rest 1500; newest hold (the newer lot's 2500) first
    assert back == [("recredit", 1000, newer), ("recredit", 1000, newer), ("recredit", 500, newer),
                    ("recredit", 1000, older)]  # fmt: skip
    first, second = world.lots()[:2]
    assert (first.remaining, second.remaining) == (1000, 3000)  # each lot whole again, its expiry kept
    assert world.balance() == (4000, 0, 0) and world.audit() == []


def test_a_refund_after_the_lot_expired_re_credits_a_new_lot_with_the_grace_period(world):
    [lot] = lots_granted(world, 500)
    sku = world.sku(1000)
    order = place(world, [(sku, 2)], points=500)
    assert world.shop.pay(world.shopper, order["id"]).status_code == 200
    world.later(timedelta(days=31))
    world.refund(order["sub_id"], order["lines"][sku]["id"], 1)
    fresh = world.lots()[-1]
    assert (fresh.source, fresh.amount) == ("recredit", 250)
    assert fresh.expires_at == clock.now() + timedelta(days=30)
    assert [(e.kind, e.amount, e.lot_id) for e in world.entries(kind="recredit")] == [("recredit", 250, fresh.id)]
    assert world.audit() == []


def test_points_split_over_lines_come_back_line_by_line_and_add_up_to_the_order(world):
    older, newer = lots_granted(world, 700, 700)
    cheap, dear = world.sku(999), world.sku(2345)
    order = place(world, [(cheap, 3), (dear, 1)], points=1300)  # 53.42 yuan of items: at most 26 yuan of points
    assert world.shop.pay(world.shopper, order["id"]).status_code == 200
    shares = {sku: order["lines"][sku]["discounts"]["points"] for sku in (cheap, dear)}
    assert sum(shares.values()) == 1300  # minor units: 100 points = 100 fen here
    world.refund(order["sub_id"], order["lines"][dear]["id"], 1)
    assert sum(e.amount for e in world.entries(kind="recredit")) == shares[dear]
    world.refund(order["sub_id"], order["lines"][cheap]["id"], 3)
    assert sum(e.amount for e in world.entries(kind="recredit")) == 1300
    assert [lot.remaining for lot in world.lots(source="adjust")] == [700, 700] and world.audit() == []


def test_a_lot_expired_but_not_swept_yet_is_never_reserved(world):
    older, newer = lots_granted(world, 500, 500)
    clock.freeze(T0 + timedelta(days=30, hours=12))  # the older lot expired; the hourly sweep has not run
    world.later(timedelta(0))
    sku = world.sku(5000)
    line = world.shop.add(world.shopper, sku)
    assert quote(world, [line], points=800).status_code == 200  # the cached balance still counts it
    refused = world.shop.place(world.shopper, [line], world.address, points=800)
    assert_problem(refused, 409, "points.insufficient")
    assert world.balance() == (1000, 0, 0) and world.entries(kind="redeem") == []
    order = place(world, [(sku, 1)], points=500)
    assert moves(world, order_id=order["id"]) == [("redeem", -500, newer)]
    assert world.balance() == (500, 0, 500) and world.audit() == []


def test_a_retried_placement_reserves_once_and_the_audit_names_a_reserved_figure_that_drifted(world):
    lots_granted(world, 1000)
    line = world.shop.add(world.shopper, world.sku(3000))
    first = world.shop.place(world.shopper, [line], world.address, key="same", points=500)
    again = world.shop.place(world.shopper, [line], world.address, key="same", points=500)
    assert first.status_code == again.status_code == 201 and first.get_json()["id"] == again.get_json()["id"]
    assert world.balance() == (500, 0, 500) and len(world.entries(kind="redeem")) == 1 and world.audit() == []

    with world.app.app_context():
        db.session.execute(sa.update(PointsBalance).values(reserved=PointsBalance.reserved + 1))
        db.session.commit()
    assert world.audit() == [("member", world.shopper_id)]
