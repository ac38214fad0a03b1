"""Platform admins manage brands and the category tree."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mall.catalog.models import Brand, Category
from tests.catalog_helpers import ADMIN, Catalog, assert_problem, catalog_counts, rows


@pytest.fixture
def cat(client, login, app):
    return Catalog(client, login, app)


# ---- brands ------------------------------------------------------------------------------------


def test_platform_admin_creates_a_brand_shoppers_can_read(cat, app):
    body = {
        "slug": "lumiere",
        "name": "Lumière Beauty",
        "logo_url": "https://img.example/lumiere.png",
        "story": "Founded in Lyon.",
    }
    resp = cat.client.post(f"{ADMIN}/brands", json=body, headers=cat.platform)
    assert resp.status_code == 201, resp.json
    brand = resp.json
    assert {k: brand[k] for k in body} == body and brand["status"] == "active"
    assert rows(app, sa.select(Brand.slug, Brand.name, Brand.logo_url, Brand.story, Brand.status)) == [
        (*body.values(), "active")
    ]

    public = cat.client.get(f"/api/v1/brands/{brand['id']}")
    assert public.status_code == 200 and public.json == brand
    assert cat.client.get("/api/v1/brands").json == [brand]


@pytest.mark.parametrize("role", ["shopper", "brand_admin"])
def test_only_platform_admins_create_brands_and_categories(cat, app, role):
    headers = cat.login(role, brand_id=cat.brand()["id"] if role == "brand_admin" else None)
    before = catalog_counts(app)
    resp = cat.client.post(f"{ADMIN}/brands", json={"slug": "mine", "name": "Mine"}, headers=headers)
    assert_problem(resp, 403, "auth.role_forbidden")
    resp = cat.client.post(f"{ADMIN}/categories", json={"name": "Mine"}, headers=headers)
    assert_problem(resp, 403, "auth.role_forbidden")
    assert catalog_counts(app) == before


def test_brand_slugs_are_unique(cat, app):
    first, second = cat.brand(slug="alpha"), cat.brand(slug="beta")
    before = catalog_counts(app)
    resp = cat.client.post(f"{ADMIN}/brands", json={"slug": "alpha", "name": "Again"}, headers=cat.platform)
    assert_problem(resp, 409, "brand.slug_taken", field="slug")
    resp = cat.client.patch(f"{ADMIN}/brands/{second['id']}", json={"slug": "alpha"}, headers=cat.platform)
    assert_problem(resp, 409, "brand.slug_taken", field="slug")
    assert catalog_counts(app) == before
    assert rows(app, sa.select(Brand.slug).order_by(Brand.id)) == [first["slug"], second["slug"]]


INVALID_BRANDS = {
    "upper-case slug": ({"slug": "Alpha"}, "slug"),
    "logo is not a URL": ({"logo_url": "logo.png"}, "logo_url"),
    "unknown status": ({"status": "closed"}, "status"),
    "name as a number": ({"name": 5}, "name"),
    "unknown field": ({"country": "FR"}, "country"),
    "id is read-only": ({"id": 7}, "id"),
}


@pytest.mark.parametrize("change,field", INVALID_BRANDS.values(), ids=INVALID_BRANDS.keys())
def test_invalid_brand_is_rejected_and_nothing_is_written(cat, app, change, field):
    headers = cat.platform
    before = catalog_counts(app)
    resp = cat.client.post(f"{ADMIN}/brands", json={"slug": "alpha", "name": "Alpha", **change}, headers=headers)
    assert_problem(resp, 422, "request.invalid", field=field)
    assert catalog_counts(app) == before


def test_editing_a_brand_changes_only_what_is_sent(cat, app):
    brand = cat.brand(story="Old story.", logo_url="https://img.example/old.png")
    resp = cat.client.patch(f"{ADMIN}/brands/{brand['id']}", json={"name": "Renamed"}, headers=cat.platform)
    assert resp.status_code == 200, resp.json
    assert resp.json == {**brand, "name": "Renamed"}
    assert rows(app, sa.select(Brand.name, Brand.story, Brand.logo_url, Brand.status)) == [
        ("Renamed", "Old story.", "https://img.example/old.png", "active")
    ]


def test_a_suspended_brand_disappears_for_shoppers_but_not_for_admins(cat):
    kept, suspended = cat.brand(), cat.brand()
    cat.set_brand_status(suspended["id"], "suspended")

    assert [b["id"] for b in cat.client.get("/api/v1/brands").json] == [kept["id"]]
    assert_problem(cat.client.get(f"/api/v1/brands/{suspended['id']}"), 404, "brand.not_found")
    listed = cat.client.get(f"{ADMIN}/brands", headers=cat.platform).json
    assert {b["id"]: b["status"] for b in listed} == {kept["id"]: "active", suspended["id"]: "suspended"}

    cat.set_brand_status(suspended["id"], "active")
    assert cat.client.get(f"/api/v1/brands/{suspended['id']}").status_code == 200


def test_unknown_brand_is_not_found(cat):
    assert_problem(cat.client.get("/api/v1/brands/999999"), 404, "brand.not_found")
    resp = cat.client.patch(f"{ADMIN}/brands/999999", json={"name": "x"}, headers=cat.platform)
    assert_problem(resp, 404, "brand.not_found")


# ---- the category tree ------------------------------------------------------------------------------


def _paths(app) -> dict[int, tuple[int | None, str]]:
    return {r.id: (r.parent_id, r.path) for r in rows(app, sa.select(Category.id, Category.parent_id, Category.path))}


def test_categories_form_a_tree_listed_parents_first(cat):
    root = cat.category("Beauty")
    child = cat.category("Skincare", parent_id=root["id"])
    grandchild = cat.category("Serums", parent_id=child["id"])
    other_root = cat.category("Outdoor")

    assert root["path"] == f"/{root['id']}/"
    assert child["path"] == f"{root['path']}{child['id']}/"
    assert grandchild["path"] == f"{child['path']}{grandchild['id']}/"
    listed = cat.client.get("/api/v1/categories").json
    assert {c["id"] for c in listed} == {root["id"], child["id"], grandchild["id"], other_root["id"]}
    position = {c["id"]: i for i, c in enumerate(listed)}
    for c in listed:
        if c["parent_id"] is not None:
            assert position[c["parent_id"]] < position[c["id"]]


def test_a_category_under_an_unknown_parent_is_rejected(cat, app):
    headers = cat.platform
    before = catalog_counts(app)
    resp = cat.client.post(f"{ADMIN}/categories", json={"name": "Orphan", "parent_id": 999_999}, headers=headers)
    assert_problem(resp, 422, "category.parent_unknown", field="parent_id")
    assert catalog_counts(app) == before


@pytest.mark.parametrize(
    "body,field",
    [({"name": ""}, "name"), ({"name": "X", "position": "1"}, "position"), ({"name": "X", "path": "/1/"}, "path"),
     ({"name": "X", "parent_id": 2**40}, "parent_id"), ({"name": "X", "position": 10**20}, "position")],
)  # fmt: skip
def test_invalid_category_is_rejected(cat, app, body, field):
    headers = cat.platform
    before = catalog_counts(app)
    assert_problem(cat.client.post(f"{ADMIN}/categories", json=body, headers=headers), 422, "request.invalid",
                   field=field)  # fmt: skip
    assert catalog_counts(app) == before


def test_moving_a_category_moves_its_whole_subtree(cat, app):
    a, b = cat.category("A"), cat.category("B")
    a1 = cat.category("A1", parent_id=a["id"])
    a11 = cat.category("A11", parent_id=a1["id"])
    a12 = cat.category("A12", parent_id=a1["id"])
    before = _paths(app)

    resp = cat.move_category(a1["id"], b["id"])

    assert resp.status_code == 200, resp.json
    assert resp.json["parent_id"] == b["id"]
    new_a1 = f"{b['path']}{a1['id']}/"
    assert resp.json["path"] == new_a1
    assert _paths(app) == {
        **before,
        a1["id"]: (b["id"], new_a1),
        a11["id"]: (a1["id"], f"{new_a1}{a11['id']}/"),
        a12["id"]: (a1["id"], f"{new_a1}{a12['id']}/"),
    }


def test_a_category_can_move_to_the_top(cat, app):
    a = cat.category("A")
    a1 = cat.category("A1", parent_id=a["id"])
    a11 = cat.category("A11", parent_id=a1["id"])
    resp = cat.move_category(a1["id"], None)
    assert resp.status_code == 200, resp.json
    assert _paths(app)[a1["id"]] == (None, f"/{a1['id']}/")
    assert _paths(app)[a11["id"]] == (a1["id"], f"/{a1['id']}/{a11['id']}/")


def test_a_moved_subtree_is_found_under_its_new_root(cat):
    brand_id = cat.brand()["id"]
    a, b = cat.category("A"), cat.category("B")
    a1 = cat.category("A1", parent_id=a["id"])
    a11 = cat.category("A11", parent_id=a1["id"])
    product = cat.product(brand_id, a11["id"], publish=True)
    assert cat.listed_ids(category_id=a["id"]) == [product["id"]]

    assert cat.move_category(a1["id"], b["id"]).status_code == 200

    assert cat.listed_ids(category_id=a["id"]) == []
    assert cat.listed_ids(category_id=b["id"]) == [product["id"]]


@pytest.mark.parametrize("target", ["itself", "child", "grandchild"])
def test_a_category_cannot_move_under_itself_or_its_descendants(cat, app, target):
    a = cat.category("A")
    a1 = cat.category("A1", parent_id=a["id"])
    a11 = cat.category("A11", parent_id=a1["id"])
    parent = {"itself": a, "child": a1, "grandchild": a11}[target]
    before = _paths(app)

    resp = cat.move_category(a["id"], parent["id"])

    assert_problem(resp, 422, "category.cycle", field="parent_id")
    assert _paths(app) == before


def test_moving_under_an_unknown_parent_changes_nothing(cat, app):
    a = cat.category("A")
    a1 = cat.category("A1", parent_id=a["id"])
    before = _paths(app)
    assert_problem(cat.move_category(a1["id"], 999_999), 422, "category.parent_unknown", field="parent_id")
    assert _paths(app) == before


def test_renaming_a_category_keeps_its_place(cat, app):
    a = cat.category("A")
    a1 = cat.category("A1", parent_id=a["id"])
    resp = cat.client.patch(f"{ADMIN}/categories/{a1['id']}", json={"name": "Renamed", "parent_id": a["id"]},
                            headers=cat.platform)  # fmt: skip
    assert resp.status_code == 200, resp.json
    assert rows(app, sa.select(Category.name, Category.parent_id, Category.path).where(Category.id == a1["id"])) == [
        ("Renamed", a["id"], a1["path"])
    ]


def test_unknown_category_is_not_found(cat):
    resp = cat.client.patch(f"{ADMIN}/categories/999999", json={"name": "x"}, headers=cat.platform)
    assert_problem(resp, 404, "category.not_found")
