"""Bundles: several SKUs of one brand at one price, as many as their parts' stock allows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mall.catalog.models import Bundle, BundleItem
from tests.catalog_helpers import ADMIN, Catalog, assert_problem, catalog_counts, rows, sku_body


@pytest.fixture
def cat(client, login, app):
    return Catalog(client, login, app)


@pytest.fixture
def parts(cat):
    """A brand with two published products: SKUs with stock 7, 10 and 4."""
    brand_id, category_id = cat.brand()["id"], cat.category()["id"]
    first = cat.product(brand_id, category_id, publish=True, skus=[sku_body(3000, stock=7), sku_body(3500, stock=10)])
    second = cat.product(brand_id, category_id, publish=True, skus=[sku_body(2000, stock=4)])
    skus = first["skus"] + second["skus"]
    return brand_id, category_id, skus, [first, second]


def _available(skus: list[dict], items: list[dict]) -> int:
    stock = {s["id"]: s["stock"] for s in skus}
    return min(stock[i["sku_id"]] // i["quantity"] for i in items)


def test_a_bundle_is_limited_by_its_scarcest_part(cat, app, parts):
    brand_id, _, skus, _ = parts
    items = [{"sku_id": skus[0]["id"], "quantity": 2}, {"sku_id": skus[1]["id"], "quantity": 3},
             {"sku_id": skus[2]["id"], "quantity": 1}]  # fmt: skip
    resp = cat.create_bundle(brand_id, items, price=9900, description="Starter set")

    assert resp.status_code == 201, resp.json
    bundle = resp.json
    assert bundle["status"] == "draft"
    assert (bundle["brand_id"], bundle["price"], bundle["currency"]) == (brand_id, 9900, "CNY")
    assert bundle["items"] == items
    assert bundle["available_quantity"] == _available(skus, items) > 0
    stored = rows(app, sa.select(BundleItem.sku_id, BundleItem.quantity).order_by(BundleItem.id))
    assert [{"sku_id": s, "quantity": q} for s, q in stored] == items


def test_shoppers_see_a_bundle_only_once_published(cat, parts):
    brand_id, _, skus, _ = parts
    items = [{"sku_id": skus[0]["id"], "quantity": 1}, {"sku_id": skus[2]["id"], "quantity": 1}]
    draft = cat.bundle(brand_id, items)
    assert_problem(cat.client.get(f"/api/v1/bundles/{draft['id']}"), 404, "bundle.not_found")
    assert cat.client.get("/api/v1/bundles").json == []

    resp = cat.client.post(f"{ADMIN}/bundles/{draft['id']}/publish", headers=cat.brand_admin(brand_id))
    assert resp.status_code == 200 and resp.json["status"] == "active"
    public = cat.client.get(f"/api/v1/bundles/{draft['id']}")
    assert public.status_code == 200
    assert public.json == {**draft, "status": "active"}
    assert cat.client.get("/api/v1/bundles").json == [public.json]

    resp = cat.client.post(f"{ADMIN}/bundles/{draft['id']}/archive", headers=cat.brand_admin(brand_id))
    assert resp.status_code == 200 and resp.json["status"] == "archived"
    assert_problem(cat.client.get(f"/api/v1/bundles/{draft['id']}"), 404, "bundle.not_found")
    assert cat.client.get("/api/v1/bundles").json == []


def test_availability_follows_the_parts_stock(cat, parts):
    brand_id, _, skus, _ = parts
    items = [{"sku_id": skus[0]["id"], "quantity": 3}, {"sku_id": skus[2]["id"], "quantity": 2}]
    bundle = cat.bundle(brand_id, items, publish=True)
    url = f"/api/v1/bundles/{bundle['id']}"
    stock = {s["id"]: s["stock"] for s in skus}

    for sku_id, delta in [(skus[2]["id"], 6), (skus[0]["id"], 20), (skus[2]["id"], -9), (skus[0]["id"], -27)]:
        resp = cat.adjust_stock(sku_id, brand_id, delta)
        assert resp.status_code == 200, resp.json
        stock[sku_id] += delta
        expected = min(stock[i["sku_id"]] // i["quantity"] for i in items)
        assert cat.client.get(url).json["available_quantity"] == expected


@pytest.mark.parametrize("off_sale", ["sku archived", "product archived"])
def test_a_part_off_sale_makes_the_bundle_unavailable(cat, parts, off_sale):
    brand_id, _, skus, products = parts
    items = [{"sku_id": skus[0]["id"], "quantity": 1}, {"sku_id": skus[2]["id"], "quantity": 1}]
    bundle = cat.bundle(brand_id, items, publish=True)
    assert bundle["available_quantity"] > 0

    if off_sale == "sku archived":
        assert cat.patch_sku(skus[0]["id"], brand_id, status="archived").status_code == 200
    else:
        cat.archive(products[1]["id"], brand_id)

    assert cat.client.get(f"/api/v1/bundles/{bundle['id']}").json["available_quantity"] == 0


def test_a_draft_part_makes_the_bundle_unavailable(cat, parts):
    brand_id, category_id, skus, _ = parts
    draft = cat.product(brand_id, category_id, skus=[sku_body(1000, stock=50)])
    items = [{"sku_id": skus[0]["id"], "quantity": 1}, {"sku_id": draft["skus"][0]["id"], "quantity": 1}]
    assert cat.bundle(brand_id, items)["available_quantity"] == 0
    cat.publish(draft["id"], brand_id)
    bundle = cat.bundle(brand_id, items[:1] + [{"sku_id": draft["skus"][0]["id"], "quantity": 2}])
    assert bundle["available_quantity"] == min(skus[0]["stock"], 50 // 2)


def test_a_suspended_brands_bundles_disappear(cat, parts):
    brand_id, _, skus, _ = parts
    items = [{"sku_id": skus[0]["id"], "quantity": 1}, {"sku_id": skus[2]["id"], "quantity": 1}]
    bundle = cat.bundle(brand_id, items, publish=True)
    cat.set_brand_status(brand_id, "suspended")

    assert cat.client.get("/api/v1/bundles").json == []
    assert cat.client.get(f"/api/v1/bundles/{bundle['id']}").status_code == 404  # as its products' detail

    cat.set_brand_status(brand_id, "active")
    assert [b["id"] for b in cat.client.get("/api/v1/bundles").json] == [bundle["id"]]


def _items(skus, *quantities):
    return [{"sku_id": s["id"], "quantity": q} for s, q in zip(skus, quantities, strict=False)]


INVALID_BUNDLES = {
    "one unit only": (lambda s: {"items": _items(s, 1)}, 422, "bundle.too_small", "items"),
    "same SKU twice": (lambda s: {"items": _items([s[0], s[0]], 1, 1)}, 422, "bundle.duplicate_sku", "items"),
    "unknown SKU": (lambda s: {"items": [{"sku_id": 999_999, "quantity": 2}]}, 422, "bundle.sku_unknown", "items"),
    "no items": (lambda s: {"items": []}, 422, "request.invalid", "items"),
    "quantity zero": (lambda s: {"items": _items(s, 0, 1)}, 422, "request.invalid", "items"),
    "quantity as a string": (lambda s: {"items": _items(s, "2", 1)}, 422, "request.invalid", "items"),
    "negative price": (lambda s: {"price": -1}, 422, "request.invalid", "price"),
    "price as a float": (lambda s: {"price": 99.5}, 422, "request.invalid", "price"),
    "price as a string": (lambda s: {"price": "9900"}, 422, "request.invalid", "price"),
    "status is not writable": (lambda s: {"status": "active"}, 422, "request.invalid", "status"),
    "unknown field": (lambda s: {"discount": 10}, 422, "request.invalid", "discount"),
    "unknown item field": (
        lambda s: {"items": [{**i, "gift": True} for i in _items(s, 1, 1)]},
        422,
        "request.invalid",
        "items",
    ),  # fmt: skip
}


@pytest.mark.parametrize("change,status,code,field", INVALID_BUNDLES.values(), ids=INVALID_BUNDLES.keys())
def test_invalid_bundle_is_rejected_and_nothing_is_written(cat, app, parts, change, status, code, field):
    brand_id, _, skus, _ = parts
    body = {"items": _items(skus, 1, 1), **change(skus)}
    before = catalog_counts(app)
    assert_problem(cat.create_bundle(brand_id, body.pop("items"), **body), status, code, field=field)
    assert catalog_counts(app) == before


def test_a_bundle_cannot_hold_another_brands_sku(cat, app, parts):
    brand_id, category_id, skus, _ = parts
    other_brand = cat.brand()["id"]
    foreign = cat.product(other_brand, category_id, publish=True)["skus"][0]
    before = catalog_counts(app)
    resp = cat.create_bundle(
        brand_id, [{"sku_id": skus[0]["id"], "quantity": 1}, {"sku_id": foreign["id"], "quantity": 1}]
    )
    assert_problem(resp, 422, "bundle.sku_unknown", field="items")
    assert catalog_counts(app) == before


def test_a_bundle_has_one_currency(cat, app, parts):
    brand_id, category_id, skus, _ = parts
    dollars = cat.product(brand_id, category_id, currency="USD", skus=[sku_body(500)])["skus"][0]
    before = catalog_counts(app)
    resp = cat.create_bundle(
        brand_id, [{"sku_id": skus[0]["id"], "quantity": 1}, {"sku_id": dollars["id"], "quantity": 1}]
    )
    assert_problem(resp, 422, "bundle.mixed_currency", field="items")
    assert catalog_counts(app) == before


def test_another_brands_admin_cannot_create_or_publish_a_bundle(cat, app, parts):
    brand_id, _, skus, _ = parts
    items = _items(skus, 1, 1)
    bundle = cat.bundle(brand_id, items)
    intruder = cat.brand_admin(cat.brand()["id"])
    before = catalog_counts(app)

    assert_problem(cat.create_bundle(brand_id, items, headers=intruder, brand_id=brand_id), 403, "catalog.other_brand")
    resp = cat.client.post(f"{ADMIN}/bundles/{bundle['id']}/publish", headers=intruder)
    assert_problem(resp, 403, "catalog.other_brand")

    assert catalog_counts(app) == before
    assert rows(app, sa.select(Bundle.status)) == ["draft"]


def test_platform_admin_names_the_bundles_brand(cat, app, parts):
    brand_id, _, skus, _ = parts
    items = _items(skus, 1, 1)
    assert_problem(cat.create_bundle(brand_id, items, headers=cat.platform), 422, "catalog.brand_required")
    resp = cat.create_bundle(brand_id, items, headers=cat.platform, brand_id=brand_id)
    assert resp.status_code == 201 and resp.json["brand_id"] == brand_id


def test_unknown_bundle_is_not_found(cat, parts):
    brand_id = parts[0]
    assert_problem(cat.client.get("/api/v1/bundles/999999"), 404, "bundle.not_found")
    resp = cat.client.post(f"{ADMIN}/bundles/999999/publish", headers=cat.brand_admin(brand_id))
    assert_problem(resp, 404, "bundle.not_found")
