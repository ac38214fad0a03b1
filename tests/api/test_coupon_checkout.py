"""Coupons at checkout: the quote lists every held coupon with why it can or cannot be used and marks
the best combination; explicit choices are checked; an order locks its coupons, payment uses them,
cancellation or timeout gives them back (or lets them expire), a full refund keeps them used."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.extensions import db
from mall import clock
from mall.checkout import pricing
from mall.checkout.services import quote as build_quote
from tests.coupon_helpers import DAYTIME, Coupons, categories, coupon_discount, listed, sku_in, window
from tests.shop_helpers import Shop
from workers.jobs.orders import expire_unpaid_order

pytestmark = pytest.mark.refund_audit  # every order's refunds add up after each test (ADR 0012)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def coupons(shop) -> Coupons:
    clock.freeze(DAYTIME)
    return Coupons(shop)


@pytest.fixture
def brand(shop) -> int:
    """Brand A: 8.00 shipping per sub-order, never free."""
    return shop.brand(fee=800)


def brand_coupon(shop, coupons, brand_id, **fields) -> int:
    return coupons.template(shop.merchant(brand_id), **fields)


# the best combination ---------------------------------------------------------------------------


def test_a_brand_coupon_and_a_platform_threshold_coupon_beat_a_single_bigger_one(shop, coupons, brand):
    me = shop.shopper()
    line = shop.add(me, shop.sku(brand, price=10_000))
    own = coupons.give(me, brand_coupon(shop, coupons, brand, amount=1000))
    small = coupons.give(me, coupons.template(value_type="threshold", threshold=8000, amount=1500))
    big = coupons.give(me, coupons.template(value_type="threshold", threshold=10_000, amount=2000))

    q = coupons.quote(me, [line])
    # the brand coupon applies first: 90.00 left still reaches the small coupon's 80.00, not the big one's 100.00
    assert {c["coupon_id"]: (c["usable"], c["reason"], c["amount_alone"], c["best"], c["applied"])
            for c in q["coupons"]} == {own: (True, None, 1000, True, True), small: (True, None, 1500, True, True),
                                       big: (True, None, 2000, False, False)}  # fmt: skip
    assert sorted(q["applied_coupon_ids"]) == sorted([own, small])
    assert (coupon_discount(q, own), coupon_discount(q, small)) == (1000, 1500)
    assert q["totals"] == {"items": 10_000, "discounts": 2500, "shipping": 800, "payable": 8300}

    alone = coupons.quote(me, [line], coupon_ids=[big])  # the shopper may still pick the big one alone
    assert alone["totals"]["payable"] == 8800 and alone["applied_coupon_ids"] == [big]
    assert listed(alone, big)["applied"] and listed(alone, own)["best"] and not listed(alone, own)["applied"]


def test_percent_off_with_a_cap(shop, coupons, brand):
    me = shop.shopper()
    large, small = shop.add(me, shop.sku(brand, price=10_000)), shop.add(me, shop.sku(brand, price=5000))
    coupon = coupons.give(me, coupons.template(value_type="percent", percent_bp=2000, cap=1500))
    assert coupon_discount(coupons.quote(me, [large]), coupon) == 1500  # 20 % would be 20.00: capped
    assert coupon_discount(coupons.quote(me, [small]), coupon) == 1000  # 20 % of 50.00
    both = coupons.quote(me, [large, small])
    assert coupon_discount(both, coupon) == 1500 and both["totals"]["payable"] == 15_000 - 1500 + 800


def test_free_shipping_waives_its_brands_fee_and_wins_over_a_smaller_discount(shop, coupons, brand):
    other = shop.brand(fee=600)
    me = shop.shopper()
    lines = [shop.add(me, shop.sku(brand, price=10_000)), shop.add(me, shop.sku(other, price=2000))]
    free = coupons.give(me, brand_coupon(shop, coupons, brand, value_type="free_shipping"))
    fixed = coupons.give(me, brand_coupon(shop, coupons, brand, amount=500))
    q = coupons.quote(me, lines)
    assert q["applied_coupon_ids"] == [free] and not listed(q, fixed)["best"]
    parts = {b["brand_id"]: (b["shipping_fee"], b["shipping_waived"]) for b in q["brands"]}
    assert parts == {brand: (0, True), other: (600, False)}  # only the coupon's brand ships free
    assert q["totals"] == {"items": 12_000, "discounts": 0, "shipping": 600, "payable": 12_600}


def test_the_best_combination_counts_what_shipping_really_costs(shop, coupons):
    brand = shop.brand(fee=1000, free_above=5000)
    me = shop.shopper()
    line = shop.add(me, shop.sku(brand, price=6000))
    free = coupons.give(me, brand_coupon(shop, coupons, brand, value_type="free_shipping"))
    fixed = coupons.give(me, brand_coupon(shop, coupons, brand, amount=500))
    q = coupons.quote(me, [line])
    # shipping is already free above 50.00: the free-shipping coupon saves nothing, the 5.00 off saves 5.00
    assert q["applied_coupon_ids"] == [fixed] and not listed(q, free)["best"]
    assert q["totals"]["payable"] == 5500

    exact = shop.add(me, shop.sku(brand, price=5000))
    q = coupons.quote(me, [exact], coupon_ids=None)
    # 5.00 off would drop the order below free shipping and cost 5.00 more: the best is no brand coupon
    assert q["totals"]["payable"] == 5000 and q["applied_coupon_ids"] == []
    assert listed(q, fixed)["usable"] and not listed(q, fixed)["best"]


def test_no_coupons_still_lists_them_and_best_is_the_default(shop, coupons, brand):
    me = shop.shopper()
    line = shop.add(me, shop.sku(brand, price=3000))
    coupon = coupons.give(me, coupons.template(amount=700))
    none = coupons.quote(me, [line], coupon_ids=[])
    assert none["applied_coupon_ids"] == [] and none["totals"]["discounts"] == 0
    assert [(c["coupon_id"], c["usable"], c["best"], c["applied"]) for c in none["coupons"]] == [
        (coupon, True, True, False)
    ]
    for best in (coupons.quote(me, [line]), coupons.quote(me, [line], coupon_ids=None)):
        assert best["applied_coupon_ids"] == [coupon] and best["totals"]["discounts"] == 700


def test_a_shopper_without_coupons_gets_none_listed_until_one_is_given(shop, coupons, brand):
    me = shop.shopper()
    line = shop.add(me, shop.sku(brand, price=3000))
    template = coupons.template(amount=700)
    bare = coupons.quote(me, [line])
    assert bare["coupons"] == [] and bare["applied_coupon_ids"] == [] and bare["totals"]["payable"] == 3800
    coupon = coupons.give(me, template)
    given = coupons.quote(me, [line])
    assert [c["coupon_id"] for c in given["coupons"]] == [coupon] and given["totals"]["payable"] == 3100
    stranger = shop.shopper()
    resp = coupons.quote_response(stranger, [shop.add(stranger, shop.sku(brand, price=3000))], [coupon])
    assert resp.status_code == 422 and resp.get_json()["code"] == "coupon.not_available"


# amounts never exceed the lines -------------------------------------------------------------------


def test_a_coupon_takes_at_most_its_eligible_lines_and_payable_never_goes_below_zero(shop, coupons, brand):
    other = shop.brand()
    me = shop.shopper()
    cheap, pricey = shop.add(me, shop.sku(brand, price=3000)), shop.add(me, shop.sku(other, price=5000))
    coupon = coupons.give(me, brand_coupon(shop, coupons, brand, amount=5000))
    q = coupons.quote(me, [cheap, pricey])
    assert coupon_discount(q, coupon) == 3000  # only brand A's line is in scope, and it costs 30.00
    payable = {ln["line_id"]: ln["payable"] for ln in q["lines"]}
    assert payable == {cheap: 0, pricey: 5000}
    assert q["totals"] == {"items": 8000, "discounts": 3000, "shipping": 800, "payable": 5800}

    platform = coupons.give(me, coupons.template(amount=100_000))
    q = coupons.quote(me, [cheap], coupon_ids=[platform])
    assert coupon_discount(q, platform) == 3000 and q["totals"]["payable"] == 800  # the fee is still due


def test_an_order_the_coupons_pay_for_entirely_is_paid_at_once_and_uses_them(shop, coupons):
    brand = shop.brand()  # no shipping fee
    me = shop.shopper()
    coupon = coupons.give(me, coupons.template(amount=10_000))
    resp = shop.place(me, [shop.add(me, shop.sku(brand, price=2500))], shop.address(me), coupon_ids=[coupon])
    assert resp.status_code == 201, resp.get_json()
    assert (resp.get_json()["payable_total"], resp.get_json()["status"]) == (0, "paid")
    assert coupons.row(coupon).status == "used"


# why a coupon cannot be used --------------------------------------------------------------------------


def test_each_reason_a_coupon_cannot_be_used(app, shop, coupons, brand):
    other = shop.brand()
    root, child = categories(app)
    elsewhere = categories(app, depth=1)[0]
    sku, product = sku_in(app, brand, price=10_000, category_id=child)
    me = shop.shopper()
    line = shop.add(me, sku)
    template = coupons.template
    expired = coupons.give(me, template(**window(-1, 1)))
    clock.advance(timedelta(days=2))
    held = {
        "below_threshold": template(value_type="threshold", threshold=20_000, amount=1000),
        "out_of_scope/brand": brand_coupon(shop, coupons, other),
        "out_of_scope/category": template(scope_type="categories", scope_ids=[elsewhere]),
        "out_of_scope/product": template(scope_type="products", scope_ids=[product + 1000]),
        "out_of_scope/excluded": template(excluded_product_ids=[product]),
        "not_started": template(**window(2, 9)),
        "currency_mismatch": template(currency="USD"),
        "in_scope/category subtree": template(scope_type="categories", scope_ids=[root]),
        "in_scope/product": template(scope_type="products", scope_ids=[product]),
        "locked": template(),
    }
    held = {reason: coupons.give(me, t) for reason, t in held.items()}
    held["expired"] = expired
    pending = shop.place(me, [shop.add(me, shop.sku(brand, price=900))], shop.address(me),
                         coupon_ids=[held["locked"]])  # fmt: skip
    assert pending.status_code == 201, pending.get_json()

    q = coupons.quote(me, [line], coupon_ids=[])
    reasons = {reason: listed(q, coupon_id)["reason"] for reason, coupon_id in held.items()}
    assert reasons == {
        "below_threshold": "below_threshold", "out_of_scope/brand": "out_of_scope",
        "out_of_scope/category": "out_of_scope", "out_of_scope/product": "out_of_scope",
        "out_of_scope/excluded": "out_of_scope", "not_started": "not_started",
        "currency_mismatch": "currency_mismatch", "in_scope/category subtree": None, "in_scope/product": None,
        "locked": "locked", "expired": "expired",
    }  # fmt: skip
    assert all(listed(q, c)["usable"] is (reasons[r] is None) for r, c in held.items())


def test_an_explicit_unusable_coupon_is_422_with_its_reason_and_orders_nothing(shop, coupons, brand):
    me, someone = shop.shopper(), shop.shopper()
    sku = shop.sku(brand, price=5000, stock=5)
    line, address = shop.add(me, sku), shop.address(me)
    threshold = coupons.give(me, coupons.template(value_type="threshold", threshold=9900, amount=1000))
    theirs = coupons.give(someone, coupons.template())

    resp = coupons.quote_response(me, [line], [threshold])
    assert resp.status_code == 422 and resp.get_json()["code"] == "coupon.not_applicable"
    assert (resp.get_json()["reason"], resp.get_json()["coupon_id"]) == ("below_threshold", threshold)
    placed = shop.place(me, [line], address, coupon_ids=[threshold])
    assert placed.status_code == 422 and placed.get_json()["reason"] == "below_threshold"
    not_mine = shop.place(me, [line], address, coupon_ids=[theirs])
    assert not_mine.status_code == 422 and not_mine.get_json()["code"] == "coupon.not_available"
    assert shop.stock(sku) == 5 and coupons.row(theirs).status == "available"
    assert [ln["id"] for ln in shop.client.get("/api/v1/cart", headers=me).get_json()["lines"]] == [line]


def test_one_coupon_per_brand_and_one_platform_coupon_per_order(shop, coupons, brand):
    me = shop.shopper()
    line = shop.add(me, shop.sku(brand, price=20_000))
    first, second = (coupons.give(me, brand_coupon(shop, coupons, brand, amount=a)) for a in (500, 700))
    p1, p2 = (coupons.give(me, coupons.template(amount=a)) for a in (300, 400))
    for pair in ([first, second], [p1, p2]):
        resp = coupons.quote_response(me, [line], pair)
        assert resp.status_code == 422 and resp.get_json()["code"] == "coupon.not_applicable"
        assert resp.get_json()["reason"] == "not_combinable"
    best = coupons.quote(me, [line])
    assert sorted(best["applied_coupon_ids"]) == sorted([second, p2])  # the larger of each slot
    assert best["totals"]["discounts"] == 1100


def promoted_quote(app, shopper_id: int, sku_id: int, line_id: int, price_source: str):
    """A quote through the pricing pipeline whose line a promotion step priced (flash sale, group buy,
    member price): those steps plug into `promotion_price`, here a stand-in."""

    def promotion(quote, ctx):
        for line in quote.lines:
            line.unit_price, line.price_source = line.unit_price // 2, price_source

    with app.app_context():
        result = build_quote(db.session, shopper_id=shopper_id, line_ids=[line_id], coupon_ids=())
        base = result.quote
        fresh = pricing.Quote(base.currency, [pricing.PricedLine(**{**ln.__dict__, "discounts": {}})
                                              for ln in base.lines])  # fmt: skip
        ctx = pricing.PricingContext(shopper_id=shopper_id, coupon_ids=None, session=db.session)
        steps = tuple(pricing.Step(s.name, [promotion]) if s.name == "promotion_price" else s for s in pricing.PIPELINE)
        return pricing.price(fresh, ctx, steps)


@pytest.mark.parametrize(
    ("price_source", "combinable_with", "usable"),
    [
        ("flash_sale", None, False),
        ("group_buy", None, False),
        ("flash_sale", ["flash_sale"], True),
        ("member_price", None, True),  # member prices take coupons unless the template says otherwise
        ("member_price", [], False),
    ],
)
def test_promotion_priced_lines_take_coupons_only_when_the_template_allows(
    app, shop, coupons, brand, price_source, combinable_with, usable
):
    me = shop.shopper()
    sku = shop.sku(brand, price=8000)
    line = shop.add(me, sku)
    fields = {} if combinable_with is None else {"combinable_with": combinable_with}
    coupon = coupons.give(me, coupons.template(amount=1000, **fields))
    q = promoted_quote(app, shop.user_id(me), sku, line, price_source)
    [entry] = q.extras["coupons"]
    assert q.lines[0].price_source == price_source
    assert (entry["usable"], entry["reason"]) == (usable, None if usable else "not_combinable")
    assert q.extras["applied_coupon_ids"] == ([coupon] if usable else [])
    assert q.lines[0].payable == 4000 - (1000 if usable else 0)


# locked at placement, used at payment, back on cancel or timeout -----------------------------------------


def test_placing_locks_the_coupon_and_paying_uses_it(shop, coupons, brand):
    me = shop.shopper()
    coupon = coupons.give(me, coupons.template(amount=600))
    line, address = shop.add(me, shop.sku(brand, price=4000)), shop.address(me)
    order = shop.place(me, [line], address)  # coupon_ids omitted: the best combination, locked
    assert order.status_code == 201, order.get_json()
    order = order.get_json()
    assert order["discount_total"] == 600 and order["payable_total"] == 4000 - 600 + 800
    locked = coupons.row(coupon)
    assert (locked.status, locked.order_id) == ("locked", order["id"])
    assert [c["status"] for c in coupons.wallet(me)] == ["locked"]

    assert shop.pay(me, order["id"]).status_code == 200
    used = coupons.row(coupon)
    assert (used.status, used.order_id, used.used_at) == ("used", order["id"], DAYTIME)
    again = shop.place(me, [shop.add(me, shop.sku(brand, price=4000))], address, coupon_ids=[coupon])
    assert again.status_code == 422 and again.get_json()["code"] == "coupon.not_available"


def test_cancelling_returns_the_coupon_for_another_order(shop, coupons, brand, client):
    me = shop.shopper()
    coupon = coupons.give(me, coupons.template(amount=600))
    sku, address = shop.sku(brand, price=4000), shop.address(me)
    order = shop.place(me, [shop.add(me, sku)], address, coupon_ids=[coupon]).get_json()
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=me).status_code == 200
    back = coupons.row(coupon)
    assert (back.status, back.order_id) == ("available", None)
    second = shop.place(me, [shop.add(me, sku)], address, coupon_ids=[coupon])
    assert second.status_code == 201 and second.get_json()["discount_total"] == 600
    assert coupons.row(coupon).order_id == second.get_json()["id"]


def test_a_payment_timeout_returns_the_coupon_or_lets_it_expire(shop, coupons, brand):
    me = shop.shopper()
    lasting = coupons.give(me, coupons.template(amount=600))
    ending = coupons.give(me, coupons.template(amount=700, valid_from=DAYTIME.isoformat(),
                                               valid_until=(DAYTIME + timedelta(minutes=20)).isoformat()))  # fmt: skip
    sku, address = shop.sku(brand, price=4000), shop.address(me)
    first = shop.place(me, [shop.add(me, sku)], address, coupon_ids=[lasting]).get_json()
    second = shop.place(me, [shop.add(me, sku)], address, coupon_ids=[ending]).get_json()
    assert coupons.row(lasting).status == coupons.row(ending).status == "locked"
    clock.advance(timedelta(minutes=31))
    assert expire_unpaid_order(first["id"]) and expire_unpaid_order(second["id"])
    assert (coupons.row(lasting).status, coupons.row(lasting).order_id) == ("available", None)
    assert (coupons.row(ending).status, coupons.row(ending).order_id) == ("expired", None)


def refund_everything(shop, client, brand, me, order) -> None:
    sub = order["sub_orders"][0]
    lines = [{"order_line_id": ln["id"], "quantity": ln["quantity"]} for ln in sub["lines"]]
    asked = client.post(f"/api/v1/sub-orders/{sub['id']}/after-sales", json={"reason": "changed my mind",
                                                                          "lines": lines}, headers=me)  # fmt: skip
    assert asked.status_code == 201, asked.get_json()
    approved = client.post(f"/api/v1/admin/after-sales/{asked.get_json()['id']}/approve", json={},
                           headers=shop.merchant(brand))  # fmt: skip
    assert approved.status_code == 200, approved.get_json()
    assert client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()["status"] == "closed"


def test_a_full_refund_keeps_the_coupon_used_by_default(shop, coupons, brand, client):
    me = shop.shopper()
    coupon = coupons.give(me, coupons.template(amount=600))
    order = shop.place(me, [shop.add(me, shop.sku(brand, price=4000))], shop.address(me), coupon_ids=[coupon])
    assert shop.pay(me, order.get_json()["id"]).status_code == 200
    refund_everything(shop, client, brand, me, order.get_json())
    assert coupons.row(coupon).status == "used"
    closed = client.get(f"/api/v1/orders/{order.get_json()['id']}", headers=me).get_json()
    # what was paid comes back (items after the coupon, and the fee: refunded before shipping), not the coupon
    assert closed["refunded_total"] == closed["paid_total"] == 4000 - 600 + 800
    assert [c["status"] for c in coupons.wallet(me)] == ["used"]


def test_a_full_refund_returns_the_coupon_when_the_deployment_says_so(shop, coupons, brand, client, rewire):
    rewire(coupon_return_on_full_refund=True)
    me = shop.shopper()
    coupon = coupons.give(me, coupons.template(amount=600))
    order = shop.place(me, [shop.add(me, shop.sku(brand, price=4000))], shop.address(me), coupon_ids=[coupon])
    assert shop.pay(me, order.get_json()["id"]).status_code == 200
    refund_everything(shop, client, brand, me, order.get_json())
    assert (coupons.row(coupon).status, coupons.row(coupon).order_id) == ("available", None)
