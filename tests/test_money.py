"""Money: integer minor units, and allocate() splitting a total without losing a cent."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mall.money import Money, allocate

totals = st.integers(min_value=0, max_value=10**12)
weights = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30).filter(lambda w: sum(w) > 0)


@given(total=totals, weights=weights)
def test_allocate_parts_sum_to_the_total_and_stay_near_their_exact_share(total, weights):
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, sum(weights))
        assert abs(part - exact) < 1
        assert weight or part == 0  # a zero weight never receives anything


@given(total=totals, weights=weights)
def test_allocate_is_proportional_between_lines(total, weights):
    """A line never gets more than a line with a larger weight."""
    parts = allocate(total, weights)
    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] < weights[j]:
                assert parts[i] <= parts[j]


@given(total=totals, weight=st.integers(1, 10**6), n=st.integers(1, 20))
def test_equal_weights_split_evenly_earlier_lines_first(total, weight, n):
    parts = allocate(total, [weight] * n)
    assert max(parts) - min(parts) <= 1
    assert parts == sorted(parts, reverse=True)


def test_allocate_example():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(1000, [300, 700]) == [300, 700]


@pytest.mark.parametrize("total", [0, 5])
def test_zero_weights_take_nothing_and_refuse_a_positive_total(total):
    if total:
        with pytest.raises(ValueError):
            allocate(total, [0, 0])
    else:
        assert allocate(total, [0, 0]) == [0, 0]


def test_a_positive_total_cannot_be_allocated_over_no_lines():
    with pytest.raises(ValueError):
        allocate(5, [])
    assert allocate(0, []) == []


@pytest.mark.parametrize("weights", [[-1, 2], [3, -1, 1], [-5]])
def test_negative_weights_are_refused(weights):
    with pytest.raises(ValueError):
        allocate(10, weights)


def test_negative_total_is_refused():
    with pytest.raises(ValueError):
        allocate(-1, [1])


def test_money_adds_and_subtracts_one_currency_only():
    assert Money(150, "CNY") + Money(50, "CNY") == Money(200, "CNY")
    assert (Money(150, "CNY") - Money(200, "CNY")).as_dict() == {"amount": -50, "currency": "CNY"}
    with pytest.raises(ValueError):
        Money(1, "CNY") + Money(1, "USD")


@pytest.mark.parametrize("amount", [1.5, "100", True, None])
def test_money_amount_is_an_int_of_minor_units(amount):
    with pytest.raises(TypeError):
        Money(amount, "CNY")


def test_money_currency_must_be_known():
    with pytest.raises(ValueError):
        Money(1, "XYZ")
