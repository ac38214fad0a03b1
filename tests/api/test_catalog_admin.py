"""Brand admins manage their brand's products and SKUs; every change is validated."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mall.catalog.models import Product, Sku
from tests.catalog_helpers import ADMIN, Catalog, assert_problem, catalog_counts, rows, sku_body


@pytest.fixture
def cat(client, login, app):
    return Catalog(client, login, app)


@pytest.fixture
def shop(cat):
    """One brand with a category, and its admin's headers."""
    brand = cat.brand()
    return brand["id"], cat.category()["id"], cat.brand_admin(brand["id"])


# ---- creating products ---------------------------------------------------------------------


def test_brand_admin_creates_a_draft_product_with_skus(cat, shop, app):
    brand_id, category_id, headers = shop
    skus = [
        sku_body(1990, specs={"colour": "red", "size": "M"}, stock=7, weight_grams=350, barcode="6901234567890"),
        sku_body(2990, specs={"colour": "red", "size": "L"}, list_price=3990, stock=0),
    ]
    body = {
        "category_id": category_id,
        "title": "Shell jacket",
        "subtitle": "Waterproof",
        "description": "Three layers.",
        "selling_points": ["Waterproof", "Packable"],
        "images": ["https://img.example/1.jpg", "https://img.example/2.jpg"],
        "tier": "hero",
        "skus": skus,
    }
    resp = cat.client.post(f"{ADMIN}/products", json=body, headers=headers)

    assert resp.status_code == 201, resp.json
    product = resp.json
    assert product["status"] == "draft" and product["published_at"] is None
    assert product["brand_id"] == brand_id
    for name in ("category_id", "title", "subtitle", "description", "selling_points", "images", "tier"):
        assert product[name] == body[name]
    assert product["currency"] == "CNY"
    assert (product["price_min"], product["price_max"]) == (1990, 2990)
    stored = rows(app, sa.select(Sku.specs, Sku.price, Sku.list_price, Sku.stock, Sku.weight_grams, Sku.barcode)
                 .where(Sku.product_id == product["id"]).order_by(Sku.id))  # fmt: skip
    assert [tuple(r) for r in stored] == [
        (s["specs"], s["price"], s["list_price"], s["stock"], s.get("weight_grams", 0), s.get("barcode", ""))
        for s in skus
    ]


def test_list_price_defaults_to_the_price(cat, shop):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[{"specs": {"size": "M"}, "price": 1500}])
    assert [(s["price"], s["list_price"], s["stock"]) for s in product["skus"]] == [(1500, 1500, 0)]


def test_platform_admin_must_name_the_brand(cat, shop, app):
    _, category_id, _ = shop
    before = catalog_counts(app)
    resp = cat.create_product(0, category_id, headers=cat.platform)
    assert_problem(resp, 422, "catalog.brand_required", field="brand_id")
    assert catalog_counts(app) == before


def test_platform_admin_creates_for_a_named_brand(cat, shop):
    brand_id, category_id, _ = shop
    resp = cat.create_product(brand_id, category_id, headers=cat.platform, brand_id=brand_id)
    assert resp.status_code == 201
    assert resp.json["brand_id"] == brand_id


def test_platform_admin_cannot_create_for_an_unknown_brand(cat, shop, app):
    _, category_id, _ = shop
    headers = cat.platform
    before = catalog_counts(app)
    resp = cat.create_product(0, category_id, headers=headers, brand_id=999_999)
    assert_problem(resp, 422, "brand.unknown", field="brand_id")
    assert catalog_counts(app) == before


def test_brand_admin_cannot_create_for_another_brand(cat, shop, app):
    brand_id, category_id, headers = shop
    other = cat.brand()["id"]
    before = catalog_counts(app)
    resp = cat.create_product(brand_id, category_id, headers=headers, brand_id=other)
    assert_problem(resp, 403, "catalog.other_brand")
    assert catalog_counts(app) == before


@pytest.mark.parametrize("role", ["shopper", "host"])
def test_shoppers_and_hosts_cannot_manage_products(cat, shop, role, app):
    brand_id, category_id, _ = shop
    headers = cat.login(role)
    before = catalog_counts(app)
    resp = cat.create_product(brand_id, category_id, headers=headers, brand_id=brand_id)
    assert_problem(resp, 403, "auth.role_forbidden")
    assert catalog_counts(app) == before


def test_creating_without_a_token_is_unauthorized(cat, shop):
    brand_id, category_id, _ = shop
    resp = cat.client.post(f"{ADMIN}/products", json={"category_id": category_id, "title": "x"})
    assert_problem(resp, 401, "auth.token_missing")


def _sku(**over):
    return {"specs": {"size": "M"}, "price": 1000, **over}


INVALID_PRODUCTS = {
    "negative price": ({"skus": [_sku(price=-1)]}, "request.invalid", "skus.0.price"),
    "price as a decimal string": ({"skus": [_sku(price="12.5")]}, "request.invalid", "skus.0.price"),
    "price as a float": ({"skus": [_sku(price=12.5)]}, "request.invalid", "skus.0.price"),
    "price as a whole float": ({"skus": [_sku(price=12.0)]}, "request.invalid", "skus.0.price"),
    "price as an integer string": ({"skus": [_sku(price="1200")]}, "request.invalid", "skus.0.price"),
    "price as a boolean": ({"skus": [_sku(price=True)]}, "request.invalid", "skus.0.price"),
    "negative list price": ({"skus": [_sku(list_price=-5)]}, "request.invalid", "skus.0.list_price"),
    "list price below price": ({"skus": [_sku(list_price=999)]}, "sku.list_price_below_price", "list_price"),
    "negative stock": ({"skus": [_sku(stock=-1)]}, "request.invalid", "skus.0.stock"),
    "stock as a string": ({"skus": [_sku(stock="5")]}, "request.invalid", "skus.0.stock"),
    "weight as a float": ({"skus": [_sku(weight_grams=1.5)]}, "request.invalid", "skus.0.weight_grams"),
    "specs value not a string": ({"skus": [_sku(specs={"size": 42})]}, "request.invalid", "skus.0.specs"),
    "unknown product field": ({"colour": "red"}, "request.invalid", "colour"),
    "unknown sku field": ({"skus": [_sku(cost=500)]}, "request.invalid", "skus.0.cost"),
    "status is not writable": ({"status": "active"}, "request.invalid", "status"),
    "category id as a string": ({"category_id": "1"}, "request.invalid", "category_id"),
    "unknown tier": ({"tier": "luxury"}, "request.invalid", "tier"),
    "selling points not a list": ({"selling_points": "Cheap"}, "request.invalid", "selling_points"),
    "empty title": ({"title": ""}, "request.invalid", "title"),
    "identity without a member level": ({"tier": "identity"}, "product.member_level_required", "min_member_level"),
    "member level on a profit product": (
        {"min_member_level": 2},
        "product.member_level_not_allowed",
        "min_member_level",
    ),  # fmt: skip
    "unknown category": ({"category_id": 999_999}, "category.unknown", "category_id"),
    "huge category id": ({"category_id": 2**63}, "request.invalid", "category_id"),
    "unknown currency": ({"currency": "XYZ"}, "request.invalid", "currency"),
}


@pytest.mark.parametrize("change,code,field", INVALID_PRODUCTS.values(), ids=INVALID_PRODUCTS.keys())
def test_invalid_product_is_rejected_and_nothing_is_written(cat, shop, app, change, code, field):
    brand_id, category_id, _ = shop
    before = catalog_counts(app)
    resp = cat.create_product(brand_id, category_id, **change)
    assert_problem(resp, 422, code, field=field)
    assert catalog_counts(app) == before


def test_a_bad_second_sku_leaves_no_product_behind(cat, shop, app):
    brand_id, category_id, _ = shop
    before = catalog_counts(app)
    resp = cat.create_product(brand_id, category_id, skus=[sku_body(1000), sku_body(1000, list_price=10)])
    assert_problem(resp, 422, "sku.list_price_below_price")
    assert catalog_counts(app) == before


def test_identity_product_names_its_member_level(cat, shop):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, tier="identity", min_member_level=3)
    assert (product["tier"], product["min_member_level"]) == ("identity", 3)


# ---- SKU spec combinations are unique within a product --------------------------------------------


SAME_SPECS = [
    ({"colour": "red", "size": "M"}, {"size": "M", "colour": "red"}),
    ({"colour": "red", "size": "M"}, {"Colour": "RED", "size": "m"}),
    ({"size": "M", "colour": "red"}, {"Size": " m ", "colour": "Red"}),
    ({"Size": "M", "colour": "red"}, {"size": "M", "colour": "red"}),
]


@pytest.mark.parametrize("first,second", SAME_SPECS)
def test_duplicate_specs_in_one_request_are_rejected(cat, shop, app, first, second):
    brand_id, category_id, _ = shop
    before = catalog_counts(app)
    resp = cat.create_product(brand_id, category_id, skus=[sku_body(1000, specs=first), sku_body(2000, specs=second)])
    assert_problem(resp, 422, "request.invalid", field="skus")
    assert catalog_counts(app) == before


@pytest.mark.parametrize("first,second", SAME_SPECS)
def test_adding_a_sku_with_existing_specs_conflicts(cat, shop, app, first, second):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, specs=first)])
    before = catalog_counts(app)
    resp = cat.client.post(f"{ADMIN}/products/{product['id']}/skus", json=sku_body(500, specs=second), headers=headers)
    assert_problem(resp, 409, "sku.duplicate_specs", field="specs")
    assert catalog_counts(app) == before
    assert cat.admin_product(product["id"], brand_id)["price_min"] == 1000


INVALID_NEW_SKUS = {
    "negative price": ({"price": -1}, "request.invalid", "price"),
    "float price": ({"price": 12.5}, "request.invalid", "price"),
    "decimal string price": ({"price": "12.5"}, "request.invalid", "price"),
    "list price below price": ({"list_price": 1}, "sku.list_price_below_price", "list_price"),
    "negative stock": ({"stock": -3}, "request.invalid", "stock"),
    "stock as a string": ({"stock": "3"}, "request.invalid", "stock"),
    "too many spec names": ({"specs": {f"n{i}": "v" for i in range(6)}}, "request.invalid", "specs"),
    "barcode too long": ({"barcode": "1" * 65}, "request.invalid", "barcode"),
    "unknown field": ({"sku_code": "A1"}, "request.invalid", "sku_code"),
    "id is read-only": ({"id": 5}, "request.invalid", "id"),
}


@pytest.mark.parametrize("change,code,field", INVALID_NEW_SKUS.values(), ids=INVALID_NEW_SKUS.keys())
def test_invalid_new_sku_is_rejected_and_nothing_is_written(cat, shop, app, change, code, field):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000)])
    before = catalog_counts(app)
    body = {**sku_body(2000), **change}
    resp = cat.client.post(f"{ADMIN}/products/{product['id']}/skus", json=body, headers=headers)
    assert_problem(resp, 422, code, field=field)
    assert catalog_counts(app) == before
    assert cat.admin_product(product["id"], brand_id) == product


def test_same_specs_on_different_products_are_fine(cat, shop):
    brand_id, category_id, _ = shop
    specs = {"colour": "red"}
    first = cat.product(brand_id, category_id, skus=[sku_body(1000, specs=specs)])
    second = cat.product(brand_id, category_id, skus=[sku_body(1000, specs=specs)])
    assert first["skus"][0]["specs"] == second["skus"][0]["specs"] == specs


def test_spec_names_differing_only_in_case_are_rejected(cat, shop, app):
    brand_id, category_id, _ = shop
    before = catalog_counts(app)
    resp = cat.create_product(brand_id, category_id, skus=[sku_body(1000, specs={"Size": "M", "size": "L"})])
    assert_problem(resp, 422, "sku.specs_invalid", field="specs")
    assert catalog_counts(app) == before


def test_long_specs_are_stored(cat, shop, app):
    """Five spec names of 30 characters with 60-character values: the schema's maximum."""
    brand_id, category_id, _ = shop
    specs = {f"{n}".ljust(30, "k"): f"{n}".ljust(60, "v") for n in range(5)}
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, specs=specs)])
    assert rows(app, sa.select(Sku.specs).where(Sku.product_id == product["id"])) == [specs]


def test_specs_that_only_look_alike_are_different(cat, shop):
    """A separator inside a value must not make two different spec sets collide."""
    brand_id, category_id, _ = shop
    skus = [sku_body(1000, specs={"a": "b;c=d"}), sku_body(1000, specs={"a": "b", "c": "d"})]
    product = cat.product(brand_id, category_id, skus=skus)
    assert len(product["skus"]) == 2


def test_changing_a_sku_to_existing_specs_conflicts(cat, shop, app):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, specs={"size": "M"}),
                                                       sku_body(1000, specs={"size": "L"})])  # fmt: skip
    second = product["skus"][1]["id"]
    resp = cat.patch_sku(second, brand_id, specs={"Size": "m"})
    assert_problem(resp, 409, "sku.duplicate_specs", field="specs")
    assert rows(app, sa.select(Sku.specs).where(Sku.id == second)) == [{"size": "L"}]


def test_a_sku_can_keep_its_own_specs_in_another_spelling(cat, shop, app):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, specs={"size": "M"})])
    sku_id = product["skus"][0]["id"]
    resp = cat.patch_sku(sku_id, brand_id, specs={"Size": "M"})
    assert resp.status_code == 200, resp.json
    assert rows(app, sa.select(Sku.specs).where(Sku.id == sku_id)) == [{"Size": "M"}]


# ---- editing products and SKUs ---------------------------------------------------------------


def test_brand_admin_edits_a_product(cat, shop, app):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id)
    other_category = cat.category()["id"]
    change = {"title": "New title", "selling_points": ["One"], "category_id": other_category, "tier": "traffic"}
    resp = cat.client.patch(f"{ADMIN}/products/{product['id']}", json=change, headers=headers)
    assert resp.status_code == 200, resp.json
    stored = rows(app, sa.select(Product.title, Product.selling_points, Product.category_id, Product.tier)
                 .where(Product.id == product["id"]))  # fmt: skip
    assert [tuple(r) for r in stored] == [tuple(change.values())]


def test_a_partial_edit_keeps_the_fields_it_leaves_out(cat, shop, app):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id, images=["https://img.example/a.jpg"], selling_points=["Soft"],
                          description="Long story.")  # fmt: skip
    resp = cat.client.patch(f"{ADMIN}/products/{product['id']}", json={"title": "Renamed"}, headers=headers)
    assert resp.status_code == 200, resp.json
    stored = rows(app, sa.select(Product.title, Product.images, Product.selling_points, Product.description)
                 .where(Product.id == product["id"]))  # fmt: skip
    assert [tuple(r) for r in stored] == [("Renamed", product["images"], product["selling_points"], "Long story.")]


def test_a_sku_edit_needs_only_the_fields_it_changes(cat, shop, app):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, specs={"size": "M"}, barcode="123")])
    sku_id = product["skus"][0]["id"]
    resp = cat.patch_sku(sku_id, brand_id, price=900, barcode="456")
    assert resp.status_code == 200, resp.json
    stored = rows(app, sa.select(Sku.specs, Sku.price, Sku.list_price, Sku.barcode).where(Sku.id == sku_id))
    assert [tuple(r) for r in stored] == [({"size": "M"}, 900, product["skus"][0]["list_price"], "456")]


def test_identity_product_can_become_a_profit_product(cat, shop):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id, tier="identity", min_member_level=2)
    url = f"{ADMIN}/products/{product['id']}"
    resp = cat.client.patch(url, json={"tier": "profit"}, headers=headers)
    assert_problem(resp, 422, "product.member_level_not_allowed")
    resp = cat.client.patch(url, json={"tier": "profit", "min_member_level": None}, headers=headers)
    assert resp.status_code == 200
    assert (resp.json["tier"], resp.json["min_member_level"]) == ("profit", None)


INVALID_EDITS = {
    "unknown field": ({"colour": "red"}, "request.invalid", "colour"),
    "status is not editable here": ({"status": "active"}, "request.invalid", "status"),
    "brand is not editable": ({"brand_id": 2}, "request.invalid", "brand_id"),
    "title as a number": ({"title": 5}, "request.invalid", "title"),
    "member level as a string": ({"min_member_level": "2"}, "request.invalid", "min_member_level"),
    "unknown category": ({"category_id": 999_999}, "category.unknown", "category_id"),
    "identity without a level": ({"tier": "identity"}, "product.member_level_required", "min_member_level"),
}


@pytest.mark.parametrize("change,code,field", INVALID_EDITS.values(), ids=INVALID_EDITS.keys())
def test_invalid_edit_changes_nothing(cat, shop, app, change, code, field):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id)
    before = catalog_counts(app)
    resp = cat.client.patch(f"{ADMIN}/products/{product['id']}", json=change, headers=headers)
    assert_problem(resp, 422, code, field=field)
    assert catalog_counts(app) == before
    assert cat.admin_product(product["id"], brand_id) == product


def test_an_archived_product_must_be_restored_before_editing(cat, shop):
    brand_id, category_id, headers = shop
    product = cat.archive(cat.product(brand_id, category_id)["id"], brand_id)
    resp = cat.client.patch(f"{ADMIN}/products/{product['id']}", json={"title": "x"}, headers=headers)
    assert_problem(resp, 409, "product.archived")
    assert cat.admin_product(product["id"], brand_id)["title"] == product["title"]


def test_another_brands_admin_can_neither_see_nor_change_a_product(cat, shop, app):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, publish=True)
    sku_id = product["skus"][0]["id"]
    intruder = cat.brand_admin(cat.brand()["id"])
    attempts = [
        ("get", f"/products/{product['id']}", None),
        ("patch", f"/products/{product['id']}", {"title": "mine"}),
        ("post", f"/products/{product['id']}/archive", None),
        ("post", f"/products/{product['id']}/skus", sku_body(100)),
        ("patch", f"/skus/{sku_id}", {"price": 1}),
        ("post", f"/skus/{sku_id}/stock", {"delta": -1}),
        ("get", f"/brands/{brand_id}/products", None),
    ]
    before = catalog_counts(app)
    for method, path, body in attempts:
        resp = getattr(cat.client, method)(f"{ADMIN}{path}", json=body, headers=intruder)
        assert_problem(resp, 403, "catalog.other_brand")
    assert catalog_counts(app) == before
    assert cat.admin_product(product["id"], brand_id) == product


def test_sku_price_changes_move_the_product_price_range(cat, shop):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000), sku_body(3000)])
    cheap, dear = (s["id"] for s in product["skus"])
    assert cat.patch_sku(cheap, brand_id, price=1500).status_code == 200
    assert [cat.admin_product(product["id"], brand_id)[k] for k in ("price_min", "price_max")] == [1500, 3000]
    resp = cat.client.post(f"{ADMIN}/products/{product['id']}/skus", json=sku_body(500), headers=headers)
    assert resp.status_code == 201
    assert [cat.admin_product(product["id"], brand_id)[k] for k in ("price_min", "price_max")] == [500, 3000]
    assert cat.patch_sku(dear, brand_id, status="archived").status_code == 200
    assert [cat.admin_product(product["id"], brand_id)[k] for k in ("price_min", "price_max")] == [500, 1500]


INVALID_SKU_EDITS = {
    "negative price": ({"price": -1}, "request.invalid", "price"),
    "float price": ({"price": 10.5}, "request.invalid", "price"),
    "string price": ({"price": "1000"}, "request.invalid", "price"),
    "price above the list price": ({"price": 99_999}, "sku.list_price_below_price", "list_price"),
    "list price below price": ({"list_price": 1}, "sku.list_price_below_price", "list_price"),
    "stock is adjusted, not set": ({"stock": 5}, "request.invalid", "stock"),
    "unknown status": ({"status": "deleted"}, "request.invalid", "status"),
    "unknown field": ({"cost": 1}, "request.invalid", "cost"),
    "null list price": ({"list_price": None}, "request.invalid", "list_price"),
}


@pytest.mark.parametrize("change,code,field", INVALID_SKU_EDITS.values(), ids=INVALID_SKU_EDITS.keys())
def test_invalid_sku_edit_changes_nothing(cat, shop, change, code, field):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000)])
    resp = cat.patch_sku(product["skus"][0]["id"], brand_id, **change)
    assert_problem(resp, 422, code, field=field)
    assert cat.admin_product(product["id"], brand_id)["skus"] == product["skus"]


# ---- publishing and archiving --------------------------------------------------------------------


def test_publish_archive_and_republish(cat, shop):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id)
    published = cat.publish(product["id"], brand_id)
    assert published["status"] == "active" and published["published_at"]
    assert cat.detail(product["id"]).status_code == 200

    archived = cat.archive(product["id"], brand_id)
    assert archived["status"] == "archived"
    assert product["id"] not in cat.listed_ids()

    republished = cat.publish(product["id"], brand_id)
    assert republished["status"] == "active"
    assert product["id"] in cat.listed_ids()


def test_publishing_needs_an_active_sku(cat, shop, app):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id, skus=[])
    resp = cat.client.post(f"{ADMIN}/products/{product['id']}/publish", headers=headers)
    assert_problem(resp, 409, "product.no_active_sku")
    assert rows(app, sa.select(Product.status).where(Product.id == product["id"])) == ["draft"]


def test_a_product_whose_skus_are_all_archived_cannot_be_published(cat, shop, app):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id)
    assert cat.patch_sku(product["skus"][0]["id"], brand_id, status="archived").status_code == 200
    resp = cat.client.post(f"{ADMIN}/products/{product['id']}/publish", headers=headers)
    assert_problem(resp, 409, "product.no_active_sku")
    assert rows(app, sa.select(Product.status).where(Product.id == product["id"])) == ["draft"]


def test_the_last_active_sku_of_an_active_product_cannot_be_archived(cat, shop, app):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, publish=True, skus=[sku_body(1000), sku_body(2000)])
    first, last = (s["id"] for s in product["skus"])
    assert cat.patch_sku(first, brand_id, status="archived").status_code == 200
    resp = cat.patch_sku(last, brand_id, status="archived")
    assert_problem(resp, 409, "product.no_active_sku")
    assert rows(app, sa.select(Sku.status).where(Sku.id == last)) == ["active"]
    assert cat.detail(product["id"]).json["price"]["min"] == 2000


def test_publishing_twice_is_an_invalid_transition(cat, shop, app):
    brand_id, category_id, headers = shop
    product = cat.product(brand_id, category_id, publish=True)
    resp = cat.client.post(f"{ADMIN}/products/{product['id']}/publish", headers=headers)
    assert_problem(resp, 409, "product.invalid_transition")
    assert cat.admin_product(product["id"], brand_id)["published_at"] == product["published_at"]


def test_a_draft_can_be_archived_directly(cat, shop):
    brand_id, category_id, _ = shop
    assert cat.archive(cat.product(brand_id, category_id)["id"], brand_id)["status"] == "archived"


def test_unknown_product_is_not_found(cat, shop):
    _, _, headers = shop
    assert_problem(cat.client.post(f"{ADMIN}/products/999999/publish", headers=headers), 404, "product.not_found")


def test_brand_products_list_filters_by_status_and_pages_by_id(cat, shop):
    brand_id, category_id, headers = shop
    drafts = [cat.product(brand_id, category_id)["id"] for _ in range(3)]
    actives = [cat.product(brand_id, category_id, publish=True)["id"] for _ in range(2)]
    cat.product(cat.brand()["id"], category_id)  # another brand's product is never listed
    url = f"{ADMIN}/brands/{brand_id}/products"

    resp = cat.client.get(url, headers=headers)
    assert [p["id"] for p in resp.json] == sorted(drafts + actives)
    resp = cat.client.get(url, query_string={"status": "active"}, headers=headers)
    assert [p["id"] for p in resp.json] == actives
    first = cat.client.get(url, query_string={"limit": 2}, headers=headers).json
    rest = cat.client.get(url, query_string={"after": first[-1]["id"]}, headers=headers).json
    assert [p["id"] for p in first + rest] == sorted(drafts + actives)


# ---- stock -------------------------------------------------------------------------------------


def test_restock_and_write_off(cat, shop, app):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, stock=5)])
    sku_id = product["skus"][0]["id"]

    resp = cat.adjust_stock(sku_id, brand_id, 7)
    assert resp.status_code == 200 and resp.json["stock"] == 12
    resp = cat.adjust_stock(sku_id, brand_id, -12)
    assert resp.status_code == 200 and resp.json["stock"] == 0
    assert rows(app, sa.select(Sku.stock).where(Sku.id == sku_id)) == [0]


def test_stock_never_goes_below_zero(cat, shop, app):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, stock=3)])
    sku_id = product["skus"][0]["id"]
    resp = cat.adjust_stock(sku_id, brand_id, -4)
    assert_problem(resp, 409, "sku.stock_negative", field="delta")
    assert rows(app, sa.select(Sku.stock).where(Sku.id == sku_id)) == [3]


def test_stock_has_a_ceiling(cat, shop, app):
    """Restocking past the schema's maximum stock is refused instead of overflowing the column."""
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, stock=10**9)])
    sku_id = product["skus"][0]["id"]
    for _ in range(3):
        resp = cat.adjust_stock(sku_id, brand_id, 10**9)
        assert_problem(resp, 409, "sku.stock_too_high", field="delta")
    assert rows(app, sa.select(Sku.stock).where(Sku.id == sku_id)) == [10**9]


@pytest.mark.parametrize("delta", ["5", 1.5, None, True])
def test_stock_delta_must_be_an_integer(cat, shop, app, delta):
    brand_id, category_id, _ = shop
    product = cat.product(brand_id, category_id, skus=[sku_body(1000, stock=3)])
    sku_id = product["skus"][0]["id"]
    assert_problem(cat.adjust_stock(sku_id, brand_id, delta), 422, "request.invalid", field="delta")
    assert rows(app, sa.select(Sku.stock).where(Sku.id == sku_id)) == [3]


def test_unknown_sku_is_not_found(cat, shop):
    _, _, headers = shop
    resp = cat.client.post(f"{ADMIN}/skus/999999/stock", json={"delta": 1}, headers=headers)
    assert_problem(resp, 404, "sku.not_found")
