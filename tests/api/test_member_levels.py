"""Member levels over HTTP (ADR 0030): the level table (platform admins change it, brand admins read it), the
level's benefits in the quote (member price on lines at their item price only, the level's free-shipping threshold,
the points multiplier), upgrades at payment, refunds taking growth (and the level it held) back at once,
downgrades after the grace period with notices, a dry-run that the real run then matches, the birthday coupon
once a year, and who may call what."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mall import clock
from mall.checkout import pricing
from mall.members import level_pricing
from tests.catalog_helpers import assert_problem
from tests.coupon_helpers import Coupons
from tests.level_helpers import GOLD, LEVELS, SILVER, Levels
from tests.member_helpers import Members
from tests.points_helpers import T0, Points
from tests.shop_helpers import Shop
from workers.jobs.levels import evaluate_levels, level_birthday_coupons

pytestmark = pytest.mark.refund_audit


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def world(shop) -> Points:
    clock.freeze(T0)
    return Points(shop, fee=800)


@pytest.fixture
def levels(app, client, world) -> Levels:
    return Levels(app, client, world.operator)


def _quote(world: Points, line_ids: list[int]) -> dict:
    resp = world.client.post("/api/v1/checkout/quote", json={"line_ids": line_ids, "coupon_ids": []},
                             headers=world.shopper)  # fmt: skip
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _me(world: Points, headers: dict | None = None) -> dict:
    resp = world.client.get("/api/v1/me/level", headers=headers or world.shopper)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# the table and who may change it --------------------------------------------------------------------------------


def test_platform_admins_replace_the_table_brand_admins_read_it_and_bad_tables_change_nothing(world, levels):
    replaced = levels.replace([GOLD, SILVER])
    assert [lv["level"] for lv in replaced["levels"]] == [1, 2]
    assert replaced["job_id"].startswith("member-levels-") and replaced["term"] == "calendar_year"

    read = world.client.get(LEVELS, headers=world.admin)
    assert read.status_code == 200 and read.get_json()["levels"][0]["name"] == "Silver"
    assert read.get_json()["levels"][0]["free_shipping_above"] == 5000

    flat = {**GOLD, "threshold": SILVER["threshold"]}
    assert_problem(levels.put([SILVER, flat]), 422, "level.threshold_not_rising", field="levels")
    assert_problem(levels.put([SILVER, {**GOLD, "level": 1}]), 422, "level.duplicate", field="levels")
    assert_problem(levels.put([{**SILVER, "discount_bp": 10_000}]), 422, "request.invalid", field="levels")
    assert_problem(levels.put([{**SILVER, "threshold": -1}]), 422, "request.invalid", field="levels")
    assert_problem(levels.put([{"level": 1, "name": "x"}]), 422, "request.invalid", field="levels")
    not_birthday = Coupons(world.shop).template(world.operator)
    assert_problem(levels.put([{**SILVER, "birthday_template_id": not_birthday}]), 422, "level.birthday_template")
    assert_problem(levels.dry_run([SILVER, flat]), 422, "level.threshold_not_rising")
    assert [lv["name"] for lv in world.client.get(LEVELS, headers=world.operator).get_json()["levels"]] == [
        "Silver", "Gold"]  # fmt: skip


def test_shoppers_and_brand_admins_cannot_change_levels(world, levels, client):
    assert_problem(levels.put([SILVER], headers=world.admin), 403, "auth.role_forbidden")
    assert_problem(levels.put([SILVER], headers=world.shopper), 403, "auth.role_forbidden")
    assert_problem(levels.dry_run([SILVER], headers=world.shopper), 403, "auth.role_forbidden")
    assert_problem(client.post(f"{LEVELS}/apply", headers=world.shopper), 403, "auth.role_forbidden")
    assert_problem(client.get(LEVELS, headers=world.shopper), 403, "auth.role_forbidden")
    assert client.get("/api/v1/me/level").status_code == 401
    assert client.post(f"{LEVELS}/apply", headers=world.operator).status_code == 202
    assert client.get(LEVELS, headers=world.operator).get_json()["levels"] == []


# benefits in the quote ----------------------------------------------------------------------------------------


def test_the_quote_gives_the_member_price_and_the_levels_free_shipping(world, levels, shop):
    levels.replace([SILVER, GOLD])
    sku = world.sku(2999)
    line = shop.add(world.shopper, sku, 2)

    plain = _quote(world, [line])
    assert plain["totals"]["payable"] == 2999 * 2 + 800 and plain["lines"][0]["price_source"] == "item"

    levels.set(world.shopper_id, level=1)
    member = _quote(world, [line])
    first = member["lines"][0]
    assert first["price_source"] == "member_price"
    assert first["discounts"] == [{"source": "member_price:1", "amount": 149 * 2}]  # 5% of 29.99 rounded down, x2
    assert member["totals"]["shipping"] == 0  # 57.00 reaches Silver's free shipping at 50.00; the brand has none
    assert member["totals"]["payable"] == 2999 * 2 - 298

    small = shop.add(world.shopper, world.sku(1000), 1)
    member_small = _quote(world, [small])
    assert member_small["totals"]["payable"] == 1000 - 50 + 800  # below the level's threshold: the brand's fee


def test_a_line_at_a_promotion_price_does_not_also_get_the_member_price():
    def line(key, source):
        return pricing.PricedLine(key=key, sku_id=key, product_id=key, brand_id=1, category_id=1, title="t",
                                  specs={}, tier="profit", currency="CNY", quantity=1, list_price=1000,
                                  unit_price=1000, price_source=source)  # fmt: skip

    quote = pricing.Quote("CNY", [line(1, "item"), line(2, "flash_sale"), line(3, "live"), line(4, "item")])
    quote.lines[3].bundle_id = 9
    ctx = pricing.PricingContext(shopper_id=1, member_level=2, facts={"level_discount_bp": 1000},
                                 promotion_prices={5: ("group_buy", 500)})  # fmt: skip
    level_pricing.member_price(quote, ctx)

    assert [(ln.price_source, ln.discount_total) for ln in quote.lines] == [
        ("member_price", 100), ("flash_sale", 0), ("live", 0), ("item", 0)]  # fmt: skip
    assert [(d.step, d.source, d.amount) for d in quote.discounts] == [("promotion_price", "member_price:2", 100)]


def test_identity_products_open_once_the_payment_raises_the_level(world, levels, shop):
    levels.replace([SILVER, GOLD])
    gated = shop.sku(world.brand, price=100, tier="identity", level=1)
    line = shop.add(world.shopper, gated, 1)
    assert _quote(world, [line])["problems"][0]["reason"] == "member_level"

    world.buy([(world.sku(5000), 1)])

    assert _quote(world, [line])["problems"] == []


# growth, upgrades, refunds ------------------------------------------------------------------------------------


def test_payment_raises_the_level_at_once_and_points_are_earned_at_the_level_paid_at(world, levels):
    levels.replace([SILVER, GOLD])
    first = world.buy([(world.sku(6000), 1)])

    assert levels.level_of(world.shopper_id) == 1
    me = _me(world)
    assert (me["level"], me["name"], me["growth"], me["managed"]) == (1, "Silver", 6000, True)
    assert me["next"] == {"level": 2, "name": "Gold", "threshold": 20000, "missing": 14000}
    assert me["benefits"]["discount_bp"] == 500 and me["benefits"]["multiplier_bp"] == 20_000
    assert [lot.amount for lot in world.lots() if lot.order_id == first["id"]] == [60]  # paid at level 0: 1.0

    second = world.buy([(world.sku(1000), 1)])  # 950 after Silver's 5%, free shipping not reached

    assert [lot.amount for lot in world.lots() if lot.order_id == second["id"]] == [19]  # 9.50 x 2.0
    assert world.entries(order_id=second["id"])[0].reason["multiplier_bp"] == 20_000
    assert _me(world)["growth"] == 6950


def test_a_refund_takes_its_growth_back_and_the_level_it_held_at_once(world, levels):
    levels.replace([SILVER, GOLD])
    order = world.buy([(world.sku(3000), 2)])
    assert levels.level_of(world.shopper_id) == 1

    line = order["lines"][next(iter(order["lines"]))]
    world.refund(order["sub_id"], line["id"], 1)

    assert levels.growth(world.shopper_id) == (3000, None)
    assert levels.level_of(world.shopper_id) == 0
    assert [(u, p["from_level"], p["level"]) for u, _, p in levels.messages("member.level_lowered")] == [
        (world.shopper_id, 1, 0)]  # fmt: skip


def test_a_refund_that_leaves_enough_growth_keeps_the_level(world, levels):
    levels.replace([SILVER, GOLD])
    order = world.buy([(world.sku(3000), 3)])
    line = order["lines"][next(iter(order["lines"]))]
    world.refund(order["sub_id"], line["id"], 1)

    assert (levels.level_of(world.shopper_id), levels.growth(world.shopper_id)[0]) == (1, 6000)
    assert levels.messages("member.level_lowered") == []


# downgrades after the grace period ----------------------------------------------------------------------------


def test_spend_leaving_the_term_lowers_the_level_after_the_grace_period_with_notices(app, world, levels):
    members = Members(app)
    brand = members.brand()
    levels.replace([SILVER, GOLD])
    lapsed, kept = members.shopper(), members.shopper()
    members.order(lapsed, {brand: 8000}, paid_at=datetime(2025, 5, 1, tzinfo=UTC))  # last year's term
    members.order(kept, {brand: 8000}, paid_at=datetime(2026, 5, 1, tzinfo=UTC))
    levels.set(lapsed, level=1)
    levels.set(kept, level=1)

    assert evaluate_levels() == {"start_grace": 1, "none": 2}  # kept, and the shopper who never paid
    assert levels.levels_of([lapsed, kept]) == {lapsed: 1, kept: 1}
    (user, key, payload), = levels.messages("member.level_at_risk")  # fmt: skip
    assert (user, payload["to_level"], payload["lowered_at"]) == (lapsed, 0, (T0 + timedelta(days=30)).isoformat())

    clock.freeze(T0 + timedelta(days=29, hours=23))
    assert evaluate_levels() == {"keep_grace": 1, "none": 2}
    assert levels.level_of(lapsed) == 1

    clock.freeze(T0 + timedelta(days=30))
    assert evaluate_levels() == {"down": 1, "none": 2}
    assert levels.levels_of([lapsed, kept]) == {lapsed: 0, kept: 1}
    assert [(u, p["from_level"], p["level"]) for u, _, p in levels.messages("member.level_lowered")] == [(lapsed, 1, 0)]
    assert evaluate_levels() == {"none": 3}  # nothing more: no second notice
    assert len(levels.messages("member.level_at_risk")) == 1 and len(levels.messages("member.level_lowered")) == 1


def test_paying_back_up_to_the_threshold_ends_the_grace_period(app, world, levels):
    levels.replace([SILVER, GOLD])
    levels.set(world.shopper_id, level=1)
    evaluate_levels()
    assert levels.growth(world.shopper_id) == (0, T0)

    world.buy([(world.sku(5300), 1)])  # 5035 after Silver's member price

    assert levels.growth(world.shopper_id) == (5035, None)
    clock.freeze(T0 + timedelta(days=31))
    evaluate_levels()
    assert levels.level_of(world.shopper_id) == 1


# the dry-run and the real run ---------------------------------------------------------------------------------


def test_the_dry_run_changes_nothing_and_the_real_run_then_does_what_it_said(app, world, levels):
    members = Members(app)
    brand = members.brand()
    levels.replace([SILVER, GOLD])
    spend = {"small": 3000, "silver": 9000, "gold": 25000, "big": 60000}
    held = {"small": 1, "silver": 1, "gold": 0, "big": 2}
    people = {}
    for name, amount in spend.items():
        people[name] = members.shopper(name)
        members.order(people[name], {brand: amount}, paid_at=datetime(2026, 3, 1, tzinfo=UTC))
        levels.set(people[name], level=held[name])
    proposed = [{**SILVER, "threshold": 10000}, {**GOLD, "threshold": 25000},
                {"level": 3, "name": "Black", "threshold": 50000, "discount_bp": 1500}]  # fmt: skip

    resp = levels.dry_run(proposed)
    assert resp.status_code == 200, resp.get_json()
    said = resp.get_json()
    assert (said["up"], said["down"], said["down_now"], said["grace_starting"]) == (2, 2, 0, 2)
    by_level = {lv["level"]: lv for lv in said["levels"]}
    assert {n: (lv["members_now"], lv["members_after"], lv["up_into"], lv["down_into"])
            for n, lv in by_level.items()} == {
        0: (2, 3, 0, 2), 1: (2, 0, 0, 0), 2: (1, 1, 1, 0), 3: (0, 1, 1, 0)}  # fmt: skip
    assert levels.levels_of(list(people.values())) == {people[n]: held[n] for n in people}  # unchanged
    assert all(levels.growth(p) is None for p in people.values())
    assert levels.messages("member.level_at_risk") == []

    levels.replace(proposed)
    done = evaluate_levels()
    assert done["up"] == said["up"] and done["start_grace"] == said["grace_starting"]
    clock.freeze(T0 + timedelta(days=30))
    assert evaluate_levels()["down"] == said["down"]
    final = levels.levels_of([*people.values(), world.shopper_id])  # every shopper, who paid or not
    counts = {n: sum(1 for level in final.values() if level == n) for n in by_level}
    assert counts == {n: lv["members_after"] for n, lv in by_level.items()}


# the birthday coupon ------------------------------------------------------------------------------------------


def test_the_levels_birthday_coupon_is_issued_once_on_the_birthday(world, levels, shop):
    coupons = Coupons(shop)
    template = coupons.template(world.operator, auto_grant="level_birthday", amount=1000)
    levels.replace([{**SILVER, "birthday_template_id": template}, GOLD])
    levels.set(world.shopper_id, level=1, birthday=date(1990, 12, 1))  # T0 is 10:00 on 1 December in Shanghai
    other = shop.user_id(shop.shopper())
    levels.set(other, level=1, birthday=date(1990, 12, 2))
    gold = shop.user_id(shop.shopper())
    levels.set(gold, level=2, birthday=date(1991, 12, 1))  # Gold has no birthday coupon

    assert level_birthday_coupons() == 1
    assert level_birthday_coupons() == 1  # looked at again, issued nothing more
    wallet = coupons.wallet(world.shopper)
    assert [(c["template_id"], c["source"]) for c in wallet] == [(template, "level_birthday")]
    assert _me(world)["benefits"]["birthday_coupon"] is True

    world.later(timedelta(days=365))
    level_birthday_coupons()
    assert len(coupons.wallet(world.shopper)) == 2  # next year's


def test_without_a_table_levels_are_left_as_set_and_points_use_the_setting(world, levels, rewire, shop):
    rewire(points_level_multipliers={1: 15_000})
    levels.set(world.shopper_id, level=1)
    order = world.buy([(world.sku(2000), 1)])

    assert levels.level_of(world.shopper_id) == 1 and evaluate_levels() == {}
    assert world.entries(order_id=order["id"])[0].reason["multiplier_bp"] == 15_000
    assert _me(world)["managed"] is False and _me(world)["next"] is None


@pytest.mark.parametrize(
    ("term", "start"),
    [("calendar_year", datetime(2025, 12, 31, 16, 0, tzinfo=UTC)),  # 1 January in Shanghai
     ("rolling_12_months", T0 - timedelta(days=365)), ("lifetime", None)],
)  # fmt: skip
def test_the_term_says_whose_spend_counts(app, term, start, rewire):
    from mall.members import growth

    rewire(member_level_term=term)
    assert growth.current().term_start(T0) == start
    members = Members(app)
    brand = members.brand()
    member = members.shopper()
    members.order(member, {brand: 1000}, paid_at=datetime(2025, 6, 1, tzinfo=UTC))  # 18 months before T0
    members.order(member, {brand: 2000}, paid_at=datetime(2026, 1, 15, tzinfo=UTC))  # this year
    members.order(member, {brand: 2500}, paid_at=datetime(2025, 12, 20, tzinfo=UTC))  # within the last 12 months
    with app.app_context():
        from api.extensions import db

        value = growth.compute(db.session, [member], T0)[member]
    assert value == {"calendar_year": 2000, "rolling_12_months": 4500, "lifetime": 5500}[term]
