"""Shopper listing order: every sort, keyset pages that stay correct while products are published."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mall import clock
from mall.catalog.models import Product
from tests.catalog_helpers import Catalog, assert_problem, expected_order, sku_body, sort_key, write

SORTS = ["newest", "price_asc", "price_desc", "sales"]


@pytest.fixture
def cat(client, login, app):
    return Catalog(client, login, app)


@pytest.fixture
def frozen():
    clock.freeze(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


def _cursor(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


# ---- sorting and keyset pagination --------------------------------------------------------------


@pytest.fixture
def ranked(cat, app, frozen):
    """Eleven products with ties in price, publication time and sales, over two brands."""
    brands = [cat.brand()["id"], cat.brand()["id"]]
    category_id = cat.category()["id"]
    prices = [3000, 1000, 3000, 2000, 1000, 5000, 3000, 2000, 4000, 1000, 3000]
    sales = [5, 0, 5, 12, 3, 0, 12, 5, 1, 0, 7]
    products = []
    for n, (price, sold) in enumerate(zip(prices, sales, strict=True)):
        if n % 3:  # every third product is published in the same instant as the one before it
            clock.advance(timedelta(seconds=1))
        product = cat.product(brands[n % 2], category_id, publish=True, skus=[sku_body(price)])
        write(app, sa.update(Product).where(Product.id == product["id"]).values(sales_count=sold))
        products.append({**product, "sales_count": sold})
    return products


@pytest.mark.parametrize("limit", [1, 3, 11, 20])
@pytest.mark.parametrize("sort", SORTS)
def test_walking_every_page_lists_each_product_once_in_order(cat, ranked, sort, limit):
    assert cat.listed_ids(sort=sort, limit=limit) == expected_order(ranked, sort)


@pytest.mark.parametrize("sort", SORTS)
def test_the_last_page_has_no_cursor(cat, ranked, sort):
    resp = cat.listing(sort=sort, limit=len(ranked))
    assert len(resp.json["items"]) == len(ranked) and resp.json["next_cursor"] is None
    resp = cat.listing(sort=sort, limit=len(ranked) - 1)
    assert resp.json["next_cursor"] is not None


def test_pages_follow_filters_too(cat, ranked):
    brand_id = ranked[0]["brand_id"]
    mine = [p for p in ranked if p["brand_id"] == brand_id]
    for sort in SORTS:
        assert cat.listed_ids(sort=sort, limit=2, brand_id=brand_id) == expected_order(mine, sort)


def test_newest_pages_stay_correct_while_products_are_published(cat, ranked):
    first = cat.listing(sort="newest", limit=4).json
    brand_id, category_id = ranked[0]["brand_id"], ranked[0]["category_id"]
    for _ in range(3):
        clock.advance(timedelta(seconds=1))
        cat.product(brand_id, category_id, publish=True)

    rest = cat.listed_ids(sort="newest", limit=4, cursor=first["next_cursor"])

    assert [p["id"] for p in first["items"]] + rest == expected_order(ranked, "newest")


@pytest.mark.parametrize("sort", ["price_asc", "price_desc", "sales"])
def test_price_and_sales_pages_stay_correct_while_products_are_published(cat, app, ranked, sort):
    first = cat.listing(sort=sort, limit=4).json
    seen = [p["id"] for p in first["items"]]
    last = next(p for p in ranked if p["id"] == seen[-1])
    key = "sales_count" if sort == "sales" else "price_min"
    brand_id, category_id = ranked[0]["brand_id"], ranked[0]["category_id"]
    added = []
    # On both sides of the cursor, and on it: the same value with a higher id sorts after it when ascending.
    for value in (last[key] - 500, last[key], last[key] + 500, 0, 10**6):
        price = value if key == "price_min" else 1000
        product = cat.product(brand_id, category_id, publish=True, skus=[sku_body(price)])
        if key == "sales_count":
            write(app, sa.update(Product).where(Product.id == product["id"]).values(sales_count=value))
        added.append({**product, key: value})

    rest = cat.listed_ids(sort=sort, limit=4, cursor=first["next_cursor"])

    assert not set(seen) & set(rest), "a product of page 1 came again"
    everything = expected_order(ranked + added, sort)
    after_cursor = everything[everything.index(last["id"]) + 1 :]
    assert rest == after_cursor
    assert set(expected_order(ranked, sort)[len(seen) :]) <= set(rest), "a product that was there got skipped"


def test_a_cursor_from_another_sort_is_rejected(cat, ranked):
    cursor = cat.listing(sort="price_asc", limit=2).json["next_cursor"]
    for sort in ("price_desc", "newest", "sales"):
        assert_problem(cat.listing(sort=sort, cursor=cursor), 422, "catalog.cursor_invalid", field="cursor")


GARBAGE_CURSORS = {
    "not base64": ("price_asc", "!!!not-a-cursor!!!"),
    "base64 of text": ("price_asc", base64.urlsafe_b64encode(b"hello").decode()),
    "a number": ("price_asc", base64.urlsafe_b64encode(b"5").decode()),
    "an object": ("price_asc", base64.urlsafe_b64encode(b'{"a": 1}').decode()),
    "too few parts": ("price_asc", _cursor("price_asc", 1000)),
    "id not an integer": ("price_asc", _cursor("price_asc", 1000, "7")),
    "price not an integer": ("price_asc", _cursor("price_asc", "1000", 7)),
    "date not a date": ("newest", _cursor("newest", "yesterday", 7)),
    "date not a string": ("newest", _cursor("newest", 1000, 7)),
    "too long": ("newest", "A" * 501),
}


@pytest.mark.parametrize("sort,cursor", GARBAGE_CURSORS.values(), ids=GARBAGE_CURSORS.keys())
def test_a_garbage_cursor_is_rejected(cat, ranked, sort, cursor):
    code = "request.invalid" if len(cursor) > 500 else "catalog.cursor_invalid"
    assert_problem(cat.listing(sort=sort, cursor=cursor), 422, code, field="cursor")


def test_a_cursor_with_a_naive_date_is_rejected(cat, ranked):
    resp = cat.listing(sort="newest", cursor=_cursor("newest", "2026-12-01T09:00:00", ranked[0]["id"]))
    assert_problem(resp, 422, "catalog.cursor_invalid", field="cursor")


@pytest.mark.parametrize("sort", ["price_asc", "sales"])
def test_a_cursor_with_a_huge_number_is_rejected(cat, ranked, sort):
    resp = cat.listing(sort=sort, cursor=_cursor(sort, 10**30, 1))
    assert_problem(resp, 422, "catalog.cursor_invalid", field="cursor")


def test_sort_key_ties_are_broken_by_id(ranked):
    """The fixture really has ties for every sort (else the pagination tests prove less)."""
    for sort in SORTS:
        keys = [sort_key(sort)(p)[0] for p in ranked]
        assert len(set(keys)) < len(keys), sort


# ---- a property: random catalogues with ties, every sort and page size ---------------------------------

product_rows = st.lists(
    st.tuples(
        st.sampled_from([0, 990, 1990, 1990, 4990]),  # price: few values, so ties are common
        st.integers(0, 3),  # sales count
        st.booleans(),  # published in the same instant as the previous product?
    ),
    min_size=1,
    max_size=9,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=product_rows, sort=st.sampled_from(SORTS), limit=st.integers(1, 4))
def test_walking_pages_returns_every_product_once_in_order(cat, app, frozen, rows, sort, limit):
    # The database is not emptied between examples: each example lists its own new brand only.
    brand_id, category_id = cat.brand()["id"], cat.category()["id"]
    products = []
    for price, sold, same_instant in rows:
        if not same_instant:
            clock.advance(timedelta(milliseconds=1))
        product = cat.product(brand_id, category_id, publish=True, skus=[sku_body(price)])
        write(app, sa.update(Product).where(Product.id == product["id"]).values(sales_count=sold))
        products.append({**product, "sales_count": sold})

    assert cat.listed_ids(sort=sort, limit=limit, brand_id=brand_id) == expected_order(products, sort)
