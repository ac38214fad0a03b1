"""Shoppers browse active products: what they may see, product detail, listing filters."""

from __future__ import annotations

import pytest

from tests.catalog_helpers import Catalog, assert_problem, expected_order, sku_body


@pytest.fixture
def cat(client, login, app):
    return Catalog(client, login, app)


# ---- what shoppers may see -------------------------------------------------------------------


def test_a_draft_is_invisible_to_shoppers(cat):
    brand_id, category_id = cat.brand()["id"], cat.category()["id"]
    draft = cat.product(brand_id, category_id)
    assert_problem(cat.detail(draft["id"]), 404, "product.not_found")
    assert cat.listed_ids() == []


def test_an_archived_product_shows_as_archived_and_unavailable(cat):
    brand_id, category_id = cat.brand()["id"], cat.category()["id"]
    product = cat.product(brand_id, category_id, publish=True, skus=[sku_body(1000, stock=5)])
    cat.archive(product["id"], brand_id)

    resp = cat.detail(product["id"])
    assert resp.status_code == 200
    assert resp.json["status"] == "archived"
    assert resp.json["available"] is False
    assert [s["available"] for s in resp.json["skus"]] == [False]
    assert cat.listed_ids() == []


def test_a_suspended_brands_products_disappear(cat):
    kept_brand, suspended_brand = cat.brand()["id"], cat.brand()["id"]
    category_id = cat.category()["id"]
    kept = cat.product(kept_brand, category_id, publish=True)
    hidden = cat.product(suspended_brand, category_id, publish=True)
    assert sorted(cat.listed_ids()) == sorted([kept["id"], hidden["id"]])

    cat.set_brand_status(suspended_brand, "suspended")

    assert cat.listed_ids() == [kept["id"]]
    assert cat.listed_ids(brand_id=suspended_brand) == []
    assert_problem(cat.detail(hidden["id"]), 404, "product.not_found")

    cat.set_brand_status(suspended_brand, "active")
    assert cat.detail(hidden["id"]).status_code == 200


def test_unknown_product_is_not_found(cat):
    assert_problem(cat.detail(999_999), 404, "product.not_found")


def test_detail_shows_active_skus_availability_spec_options_and_brand(cat):
    brand = cat.brand(name="Peak Outdoor", logo_url="https://img.example/peak.png")
    category_id = cat.category()["id"]
    skus = [
        sku_body(39900, specs={"colour": "black", "size": "M"}, stock=4),
        sku_body(39900, specs={"colour": "black", "size": "L"}, stock=0),
        sku_body(42900, specs={"colour": "olive", "size": "XL"}, stock=2),
        sku_body(10, specs={"colour": "red", "size": "S"}, stock=9),
    ]
    product = cat.product(
        brand["id"], category_id, skus=skus, title="Shell jacket", description="Three layers.",
        selling_points=["Waterproof"], images=["https://img.example/1.jpg"], tier="hero",
    )  # fmt: skip
    archived_sku = product["skus"][3]
    assert cat.patch_sku(archived_sku["id"], brand["id"], status="archived").status_code == 200
    cat.publish(product["id"], brand["id"])

    resp = cat.detail(product["id"])

    assert resp.status_code == 200, resp.json
    detail = resp.json
    active = product["skus"][:3]
    assert [s["id"] for s in detail["skus"]] == [s["id"] for s in active]
    assert [(s["specs"], s["price"], s["list_price"], s["stock"]) for s in detail["skus"]] == [
        (s["specs"], s["price"], s["list_price"], s["stock"]) for s in active
    ]
    assert [s["available"] for s in detail["skus"]] == [s["stock"] > 0 for s in active]
    assert detail["available"] is True
    assert detail["spec_options"] == {"colour": ["black", "olive"], "size": ["M", "L", "XL"]}
    assert detail["price"] == {"min": 39900, "max": 42900, "currency": "CNY"}
    assert detail["brand"] == {"id": brand["id"], "name": "Peak Outdoor", "logo_url": "https://img.example/peak.png"}
    for name in ("title", "description", "selling_points", "images", "tier", "category_id", "status"):
        assert detail[name] == cat.admin_product(product["id"], brand["id"])[name]


def test_a_product_with_no_stock_is_unavailable(cat):
    brand_id, category_id = cat.brand()["id"], cat.category()["id"]
    product = cat.product(brand_id, category_id, publish=True, skus=[sku_body(1000, stock=0)])
    detail = cat.detail(product["id"]).json
    assert detail["available"] is False
    assert cat.walk()[0]["in_stock"] is False

    assert cat.adjust_stock(product["skus"][0]["id"], brand_id, 3).status_code == 200
    assert cat.detail(product["id"]).json["available"] is True
    assert cat.walk()[0]["in_stock"] is True


def test_listing_card(cat):
    brand = cat.brand(name="Chashe")
    category_id = cat.category()["id"]
    product = cat.product(
        brand["id"], category_id, publish=True, title="Longjing", subtitle="Spring pick", tier="identity",
        min_member_level=2, images=["https://img.example/a.jpg", "https://img.example/b.jpg"],
        skus=[sku_body(5800, stock=0), sku_body(12800, stock=3)],
    )  # fmt: skip
    [card] = cat.walk()
    assert card == {
        "id": product["id"],
        "title": "Longjing",
        "subtitle": "Spring pick",
        "image": "https://img.example/a.jpg",
        "tier": "identity",
        "min_member_level": 2,
        "price": {"min": 5800, "max": 12800, "currency": "CNY"},
        "sales_count": 0,
        "in_stock": True,
        "brand": {"id": brand["id"], "name": "Chashe"},
    }


# ---- filters -----------------------------------------------------------------------------------


@pytest.fixture
def world(cat):
    """Two brands, a three-level category tree beside another root, products across tiers and stock."""
    brands = [cat.brand()["id"], cat.brand()["id"]]
    root = cat.category("Beauty")
    child = cat.category("Skincare", parent_id=root["id"])
    grandchild = cat.category("Serums", parent_id=child["id"])
    other_root = cat.category("Outdoor")
    categories = {c["id"]: c for c in (root, child, grandchild, other_root)}
    specs = [
        # (brand, category, title, price, tier, stock)
        (0, root, "Rose Cream", 1990, "traffic", 5),
        (0, child, "Night Serum", 5990, "hero", 0),
        (0, grandchild, "Vitamin C Serum 100% pure", 12900, "profit", 3),
        (1, grandchild, "Retinol serum_x", 8800, "identity", 1),
        (1, other_root, "Shell Jacket", 99900, "hero", 2),
        (1, other_root, "Trail shoe 100 percent", 45900, "traffic", 0),
        (0, child, "serumX mask", 2990, "profit", 7),
    ]
    products = []
    for brand, category, title, price, tier, stock in specs:
        fields = {"min_member_level": 3} if tier == "identity" else {}
        products.append(
            cat.product(brands[brand], category["id"], publish=True, title=title, tier=tier,
                        skus=[sku_body(price, stock=stock)], **fields)
        )  # fmt: skip
    cat.product(brands[0], root["id"], title="Draft serum")  # never listed
    for p in products:
        p["stock"] = sum(s["stock"] for s in p["skus"])
        p["path"] = categories[p["category_id"]]["path"]
    return {"brands": brands, "root": root, "child": child, "grandchild": grandchild, "other_root": other_root,
            "products": products}  # fmt: skip


def _matching(world, predicate) -> list[int]:
    return expected_order([p for p in world["products"] if predicate(p)], "newest")


def test_without_filters_every_active_product_is_listed_newest_first(cat, world):
    assert cat.listed_ids() == _matching(world, lambda p: True)


def test_filter_by_brand(cat, world):
    for brand_id in world["brands"]:
        assert cat.listed_ids(brand_id=brand_id) == _matching(world, lambda p, b=brand_id: p["brand_id"] == b)


@pytest.mark.parametrize("level", ["root", "child", "grandchild", "other_root"])
def test_filter_by_category_includes_its_whole_subtree(cat, world, level):
    category = world[level]
    listed = cat.listed_ids(category_id=category["id"])
    assert listed == _matching(world, lambda p: p["path"].startswith(category["path"]))
    assert listed  # each level of the tree holds products


def test_a_grandchild_category_product_appears_under_the_root(cat, world):
    in_grandchild = [p["id"] for p in world["products"] if p["category_id"] == world["grandchild"]["id"]]
    assert in_grandchild and set(in_grandchild) <= set(cat.listed_ids(category_id=world["root"]["id"]))


def test_filter_by_unknown_category_lists_nothing(cat, world):
    assert cat.listed_ids(category_id=999_999) == []


@pytest.mark.parametrize("keyword", ["serum", "SERUM", "Serum", "shell jacket", "100%", "m_x", "%", "_"])
def test_keyword_is_case_insensitive_and_literal(cat, world, keyword):
    listed = cat.listed_ids(q=keyword)
    assert listed == _matching(world, lambda p: keyword.lower() in p["title"].lower())


def test_percent_and_underscore_are_not_wildcards(cat, world):
    titles = {p["id"]: p["title"] for p in world["products"]}
    assert [titles[i] for i in cat.listed_ids(q="100%")] == ["Vitamin C Serum 100% pure"]
    assert [titles[i] for i in cat.listed_ids(q="m_x")] == ["Retinol serum_x"]


@pytest.mark.parametrize("low,high", [(None, 5990), (5990, None), (2990, 12900), (6000, 8000), (0, 10**12)])
def test_filter_by_price_range(cat, world, low, high):
    params = {k: v for k, v in (("price_min", low), ("price_max", high)) if v is not None}
    listed = cat.listed_ids(**params)
    assert listed == _matching(
        world, lambda p: (low is None or p["price_min"] >= low) and (high is None or p["price_min"] <= high)
    )


@pytest.mark.parametrize("tier", ["traffic", "hero", "profit", "identity"])
def test_filter_by_tier(cat, world, tier):
    listed = cat.listed_ids(tier=tier)
    assert listed and listed == _matching(world, lambda p: p["tier"] == tier)


@pytest.mark.parametrize("in_stock", [True, False])
def test_filter_by_stock(cat, world, in_stock):
    listed = cat.listed_ids(in_stock=str(in_stock).lower())
    assert listed and listed == _matching(world, lambda p: (p["stock"] > 0) == in_stock)


def test_filter_by_stock_ignores_archived_skus(cat, world):
    brand_id = world["brands"][0]
    product = cat.product(brand_id, world["root"]["id"], publish=True,
                          skus=[sku_body(1000, stock=0), sku_body(2000, stock=5)])  # fmt: skip
    assert product["id"] in cat.listed_ids(in_stock="true")
    assert cat.patch_sku(product["skus"][1]["id"], brand_id, status="archived").status_code == 200
    assert product["id"] in cat.listed_ids(in_stock="false")
    assert product["id"] not in cat.listed_ids(in_stock="true")


def test_filters_combine(cat, world):
    brand_id = world["brands"][0]
    listed = cat.listed_ids(brand_id=brand_id, category_id=world["child"]["id"], q="serum", in_stock="true")
    assert listed == _matching(
        world,
        lambda p: p["brand_id"] == brand_id and p["path"].startswith(world["child"]["path"])
        and "serum" in p["title"].lower() and p["stock"] > 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "params,field",
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"sort": "random"}, "sort"), ({"tier": "gold"}, "tier"),
     ({"price_min": -1}, "price_min"), ({"price_min": "12.5"}, "price_min"), ({"brand_id": "one"}, "brand_id"),
     ({"category_id": 2**40}, "category_id"), ({"in_stock": "perhaps"}, "in_stock"), ({"q": ""}, "q")],
)  # fmt: skip
def test_invalid_listing_arguments(cat, params, field):
    assert_problem(cat.listing(**params), 422, "request.invalid", field=field)
