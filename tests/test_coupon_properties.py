"""The coupon step over random carts and coupon sets (hypothesis), on transient templates and coupons:
nothing goes negative, every amount is allocated exactly, at most one coupon per slot, coupons touch
only the lines they cover, and the best combination is never beaten by any combination picked by hand."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

import mall.models  # noqa: F401  (every mapper configured before transient objects are made)
from mall.checkout import pricing
from mall.errors import Invalid
from mall.promotions.coupons import rules
from mall.promotions.coupons.checkout import choose_and_apply
from mall.promotions.coupons.models import Coupon, CouponTemplate

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
PATHS = {10: "/10/", 11: "/10/11/", 12: "/10/11/12/", 20: "/20/"}  # 10 > 11 > 12, and 20 apart
WINDOWS = {"valid": (-1, 10), "expired": (-10, 0), "not_started": (1, 10)}  # days around NOW
SHIPPING = next(step for step in pricing.PIPELINE if step.name == "shipping")


def money(common: list[int], high: int, low: int = 0):
    """Round amounts that meet each other (a discount landing exactly on a threshold), or any amount."""
    return st.one_of(st.sampled_from(common), st.integers(low, high))


line_st = st.fixed_dictionaries({
    "unit_price": money([0, 1000, 2500, 5000], 20_000), "quantity": st.integers(1, 3), "brand_id": st.integers(1, 2),
    "product_id": st.integers(1, 6), "category_id": st.sampled_from(sorted(PATHS)),
    "price_source": st.sampled_from(["item", "item", "item", "flash_sale", "group_buy", "member_price"]),
})  # fmt: skip

coupon_st = st.fixed_dictionaries({
    "value_type": st.sampled_from(["fixed", "threshold", "percent", "free_shipping"]),
    "amount": money([100, 500, 1000, 3000], 15_000, low=1), "threshold": money([0, 2500, 5000, 10_000], 40_000),
    "percent_bp": st.integers(1, 9999),
    "cap": st.one_of(st.none(), st.integers(0, 20_000)), "brand_id": st.one_of(st.none(), st.integers(1, 2)),
    "scope": st.one_of(
        st.just(("mall", [])), st.tuples(st.just("brand"), st.lists(st.integers(1, 3), min_size=1, max_size=2)),
        st.tuples(st.just("categories"), st.lists(st.sampled_from(sorted(PATHS)), min_size=1, max_size=2)),
        st.tuples(st.just("products"), st.lists(st.integers(1, 6), min_size=1, max_size=3)),
    ),
    "excluded": st.lists(st.integers(1, 6), max_size=2),
    "combinable_with": st.lists(st.sampled_from(["flash_sale", "group_buy", "member_price"]), max_size=2),
    "status": st.sampled_from(["available"] * 6 + ["locked"]),
    "window": st.sampled_from(["valid"] * 6 + ["expired", "not_started"]),
    "currency": st.sampled_from(["CNY"] * 9 + ["USD"]),
})  # fmt: skip

# brand -> (fee, free_above): thresholds near what carts cost, so discounts cross them
policy_st = st.dictionaries(
    st.integers(1, 2),
    st.tuples(st.sampled_from([0, 500, 1200]), st.one_of(st.none(), money([0, 2500, 5000, 10_000], 30_000))),
)


def make_coupons(specs: list[dict]) -> list[Coupon]:
    held = []
    for n, spec in enumerate(specs, start=1):
        scope_type, scope_ids = spec["scope"]
        template = CouponTemplate(
            id=n, brand_id=spec["brand_id"], funded_by="platform", name=f"c{n}", value_type=spec["value_type"],
            amount=spec["amount"] if spec["value_type"] in ("fixed", "threshold") else 0,
            threshold=spec["threshold"] if spec["value_type"] != "fixed" else 0,
            percent_bp=spec["percent_bp"] if spec["value_type"] == "percent" else 0,
            cap=spec["cap"] if spec["value_type"] == "percent" else None, currency=spec["currency"],
            scope_type=scope_type, scope_ids=scope_ids, excluded_product_ids=spec["excluded"],
            combinable_with=spec["combinable_with"], status="active",
        )  # fmt: skip
        start, end = WINDOWS[spec["window"]]
        coupon = Coupon(id=100 + n, template_id=n, user_id=1, claim_seq=1, status=spec["status"], source="claim",
                        grant_ref="claim-1", valid_from=NOW + timedelta(days=start),
                        valid_until=NOW + timedelta(days=end))  # fmt: skip
        coupon.template = template
        held.append(coupon)
    return held


def make_quote(lines: list[dict]) -> pricing.Quote:
    priced = [
        pricing.PricedLine(
            key=i + 1,
            sku_id=i + 1,
            product_id=ln["product_id"],
            brand_id=ln["brand_id"],
            category_id=ln["category_id"],
            title=f"p{i}",
            specs={},
            tier="profit",
            currency="CNY",
            quantity=ln["quantity"],
            list_price=ln["unit_price"],
            unit_price=ln["unit_price"],
            price_source=ln["price_source"],
        )  # fmt: skip
        for i, ln in enumerate(lines)
    ]
    return pricing.Quote("CNY", priced)


def run(lines, held, policies, coupon_ids) -> pricing.Quote:
    """The coupon step (after the promotion step set the prices), then shipping, as the pipeline runs them."""
    quote = make_quote(lines)
    ctx = pricing.PricingContext(shopper_id=1, coupon_ids=coupon_ids, shipping_policies=policies)
    choose_and_apply(quote, ctx, held=held, paths=PATHS, now=NOW)
    SHIPPING.run(quote, ctx)
    return quote


def covered(coupon: Coupon, line: pricing.PricedLine) -> bool:
    view = rules.LineView(line.key, line.brand_id, line.product_id, line.category_id, line.price_source, 0)
    combinable = line.price_source not in rules.PROMOTION_PRICES or line.price_source in coupon.template.combinable_with
    return rules.in_scope(coupon.template, view, PATHS) and combinable


def check_invariants(quote: pricing.Quote, held: list[Coupon]) -> None:
    by_id = {c.id: c for c in held}
    assert all(0 <= line.payable <= line.subtotal for line in quote.lines)
    assert quote.payable >= 0
    assert quote.payable == sum(line.payable for line in quote.lines) + quote.shipping_total
    assert quote.payable == quote.items_total - quote.discount_total + quote.shipping_total
    assert quote.discount_total == sum(d.amount for d in quote.discounts)
    lines = {line.key: line for line in quote.lines}
    for discount in quote.discounts:
        assert discount.amount > 0 and sum(a.amount for a in discount.allocations) == discount.amount
        coupon = by_id[int(discount.source.removeprefix("coupon:"))]
        assert all(covered(coupon, lines[a.line_key]) for a in discount.allocations)
        assert discount.amount <= sum(lines[a.line_key].subtotal for a in discount.allocations)
    applied = [by_id[i] for i in quote.extras["applied_coupon_ids"]]
    slots = [rules.slot(c.template) for c in applied]
    assert len(slots) == len(set(slots))  # one platform coupon, one per brand
    assert all(c.status == "available" and c.valid_from <= NOW < c.valid_until and c.template.currency == "CNY"
               for c in applied)  # fmt: skip
    report = {entry["coupon_id"]: entry for entry in quote.extras["coupons"]}
    assert sorted(report) == sorted(by_id)
    assert {i for i, entry in report.items() if entry["applied"]} == set(quote.extras["applied_coupon_ids"])
    assert all(entry["usable"] == (entry["reason"] is None) for entry in report.values())
    assert all(report[c.id]["usable"] for c in applied)
    free = [c for c in applied if c.template.value_type == "free_shipping"]  # waive only the brands they cover
    assert quote.free_shipping_brands <= {ln.brand_id for c in free for ln in quote.lines if covered(c, ln)}


def line(price: int, brand_id: int = 1) -> dict:
    return {"unit_price": price, "quantity": 1, "brand_id": brand_id, "product_id": 1, "category_id": 10,
            "price_source": "item"}  # fmt: skip


def spec(value_type: str, amount: int = 0, brand_id: int | None = 1) -> dict:
    return {"value_type": value_type, "amount": amount, "threshold": 0, "percent_bp": 1, "cap": None,
            "brand_id": brand_id, "scope": ("mall", []), "excluded": [], "combinable_with": [],
            "status": "available", "window": "valid", "currency": "CNY"}  # fmt: skip


def combinations(held: list[Coupon]):
    """Every choice of at most one coupon per slot."""
    slots: dict[str, list[Coupon]] = {}
    for coupon in held:
        slots.setdefault(rules.slot(coupon.template), []).append(coupon)
    for picked in itertools.product(*[[None, *coupons] for coupons in slots.values()]):
        yield [c.id for c in picked if c is not None]


@settings(max_examples=200, deadline=None)
@given(st.lists(line_st, min_size=1, max_size=6), st.lists(coupon_st, max_size=6), policy_st)
# shipping already free above 50.00: a free-shipping coupon saves nothing, 5.00 off saves 5.00
@example([line(6000)], [spec("free_shipping"), spec("fixed", 500)], {1: (1000, 5000)})
# 3.00 off would drop the order below free shipping and cost 10.00 more: no coupon is best
@example([line(5000)], [spec("fixed", 300, brand_id=None)], {1: (1000, 5000)})
def test_best_combination_keeps_every_invariant_and_no_choice_beats_it(lines, specs, policies):
    held = make_coupons(specs)
    best = run(lines, held, policies, None)
    check_invariants(best, held)
    report = {entry["coupon_id"]: entry for entry in best.extras["coupons"]}
    assert {i for i, entry in report.items() if entry["best"]} == set(best.extras["applied_coupon_ids"])
    assert best.payable <= run(lines, held, policies, ()).payable
    for ids in combinations(held):
        try:
            chosen = run(lines, held, policies, tuple(ids))
        except Invalid:
            continue
        assert best.payable <= chosen.payable, (ids, best.extras["applied_coupon_ids"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(line_st, min_size=1, max_size=6),
    st.lists(coupon_st, min_size=1, max_size=6),
    policy_st,
    st.lists(st.integers(101, 108), max_size=4),
)
def test_explicit_choices_keep_every_invariant_or_are_refused(lines, specs, policies, picks):
    held = make_coupons(specs)
    try:
        quote = run(lines, held, policies, tuple(picks))
    except Invalid as refused:
        assert refused.code in ("coupon.not_available", "coupon.not_applicable")
        return
    check_invariants(quote, held)
    assert set(quote.extras["applied_coupon_ids"]) == set(picks)  # exactly what was asked for, or refused


def test_with_too_many_combinations_each_slots_top_coupon_is_used_only_where_it_pays():
    """17³ combinations exceed MAX_COMBINATIONS: the step falls back to each slot's best coupon alone, and
    still leaves out one that would cost the shopper shipping."""
    lines = [line(5000, brand_id=1), line(8000, brand_id=2), line(9000, brand_id=3)]
    specs = [spec("fixed", 100 * n, brand_id=b) for b in (1, 2, 3) for n in range(1, 17)]
    held = make_coupons(specs)
    policies = {1: (2000, 5000)}  # brand 1 ships free from 50.00: any discount there costs 20.00 shipping
    quote = run(lines, held, policies, None)
    check_invariants(quote, held)
    applied = sorted(
        (c.template.brand_id, c.template.amount) for c in held if c.id in quote.extras["applied_coupon_ids"]
    )
    assert applied == [(2, 1600), (3, 1600)]
    assert quote.payable == 5000 + 8000 + 9000 - 3200
