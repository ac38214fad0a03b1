"""Pricing pipeline invariants over random carts (hypothesis): lines sum to totals, nothing negative."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from mall.checkout import pricing

line_st = st.builds(
    dict,
    unit_price=st.integers(0, 200_000),
    quantity=st.integers(1, 20),
    brand_id=st.integers(1, 3),
)
discount_st = st.tuples(st.integers(0, 2_000_000), st.lists(st.integers(0, 19), min_size=1, max_size=20))
policy_st = st.dictionaries(
    st.integers(1, 3), st.tuples(st.integers(0, 2000), st.one_of(st.none(), st.integers(0, 50_000)))
)


def make_quote(lines: list[dict]) -> pricing.Quote:
    priced = [
        pricing.PricedLine(
            key=i + 1,
            sku_id=i + 1,
            product_id=i + 1,
            brand_id=ln["brand_id"],
            category_id=1,
            title=f"p{i}",
            specs={},
            tier="profit",
            currency="CNY",
            quantity=ln["quantity"],
            list_price=ln["unit_price"],
            unit_price=ln["unit_price"],
        )  # fmt: skip
        for i, ln in enumerate(lines)
    ]
    return pricing.Quote("CNY", priced)


def discounts_provider(discounts):
    def provider(quote: pricing.Quote, ctx) -> None:
        for n, (amount, picks) in enumerate(discounts):
            chosen = [quote.lines[i % len(quote.lines)] for i in picks]  # may name a line twice
            quote.apply_discount(step="coupons", source=f"coupon:{n}", label="test", amount=amount, lines=chosen)

    return provider


def run(lines, discounts, policies) -> pricing.Quote:
    steps = tuple(
        pricing.Step(s.name, [*s.providers, discounts_provider(discounts)] if s.name == "coupons" else s.providers)
        for s in pricing.PIPELINE
    )
    ctx = pricing.PricingContext(shopper_id=1, shipping_policies=policies)
    return pricing.price(make_quote(lines), ctx, steps)


@settings(max_examples=300, deadline=None)
@given(st.lists(line_st, min_size=1, max_size=20), st.lists(discount_st, max_size=5), policy_st)
def test_lines_sum_to_totals_and_nothing_goes_negative(lines, discounts, policies):
    quote = run(lines, discounts, policies)
    assert all(line.payable >= 0 for line in quote.lines)
    assert quote.payable >= 0
    assert quote.payable == sum(line.payable for line in quote.lines) + quote.shipping_total
    assert quote.discount_total == sum(d.amount for d in quote.discounts)
    for d in quote.discounts:
        assert sum(a.amount for a in d.allocations) == d.amount
    for line in quote.lines:
        taken = sum(a.amount for d in quote.discounts for a in d.allocations if a.line_key == line.key)
        assert taken == line.discount_total <= line.subtotal


@settings(max_examples=100, deadline=None)
@given(st.lists(line_st, min_size=1, max_size=20), st.lists(discount_st, max_size=5), policy_st)
def test_same_inputs_give_the_same_numbers(lines, discounts, policies):
    first = run(copy.deepcopy(lines), discounts, policies)
    second = run(copy.deepcopy(lines), discounts, policies)
    assert [(ln.payable, ln.discounts) for ln in first.lines] == [(ln.payable, ln.discounts) for ln in second.lines]
    assert first.payable == second.payable


def test_a_discount_never_takes_more_than_its_lines_cost():
    quote = run([{"unit_price": 1000, "quantity": 2, "brand_id": 1}], [(5_000, [0])], {})
    assert quote.discounts[0].amount == 2000 and quote.payable == 0


def test_shipping_waived_at_the_threshold_after_discounts():
    lines = [{"unit_price": 5000, "quantity": 2, "brand_id": 1}]
    assert run(lines, [], {1: (800, 10_000)}).shipping_total == 0
    assert run(lines, [(1, [0])], {1: (800, 10_000)}).shipping_total == 800  # a discount drops it below
