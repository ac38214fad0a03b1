"""The staff audit log (ADR 0034): catalog changes logged with before/after in their transaction, nothing for a
refused change or a shopper, and the read API's access rules, filters and keyset pages."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.audit_helpers import AUDIT, audit_rows, only
from tests.catalog_helpers import ADMIN, Catalog, assert_problem


@pytest.fixture
def cat(client, login, app) -> Catalog:
    return Catalog(client, login, app)


@pytest.fixture
def shop(cat):
    """A brand's product with one SKU (1990, stock 5): (brand id, product, SKU id)."""
    brand = cat.brand()
    category = cat.category()
    product = cat.product(brand["id"], category["id"], skus=[{"specs": {}, "price": 1990, "stock": 5}])
    return brand["id"], product, product["skus"][0]["id"]


def _admin_id(cat, brand_id: int) -> int:
    return cat.client.get("/api/v1/me", headers=cat.brand_admin(brand_id)).json["id"]


def test_a_price_change_is_logged_with_the_changed_fields_only(cat, shop, app):
    brand_id, product, sku_id = shop

    resp = cat.client.patch(f"{ADMIN}/skus/{sku_id}", json={"price": 1790, "barcode": ""},
                            headers={**cat.brand_admin(brand_id), "X-Request-Id": "req-42"})  # fmt: skip

    assert resp.status_code == 200, resp.json
    entry = only(app, action="sku.updated", object_id=sku_id)
    assert (entry["before"], entry["after"]) == ({"price": 1990}, {"price": 1790})  # barcode unchanged: not there
    assert entry["object_type"] == "sku" and entry["brand_id"] == brand_id
    assert (entry["actor_id"], entry["actor_role"]) == (_admin_id(cat, brand_id), "brand_admin")
    assert entry["request_id"] == "req-42"


@pytest.mark.parametrize("given", ["x" * 129, "two words", ""])
def test_a_request_id_that_is_not_one_is_replaced_by_the_one_the_answer_carries(cat, shop, app, given):
    brand_id, _, sku_id = shop

    resp = cat.client.post(f"{ADMIN}/skus/{sku_id}/stock", json={"delta": 1},
                           headers={**cat.brand_admin(brand_id), "X-Request-Id": given})  # fmt: skip

    assert resp.status_code == 200, resp.json
    made = resp.headers["X-Request-Id"]
    assert made != given and only(app, action="sku.restocked")["request_id"] == made


def test_a_restock_is_logged_and_a_refused_write_off_leaves_no_entry(cat, shop, app):
    brand_id, _, sku_id = shop

    assert cat.adjust_stock(sku_id, brand_id, 3).status_code == 200
    refused = cat.adjust_stock(sku_id, brand_id, -100)

    assert_problem(refused, 409, "sku.stock_negative")
    entry = only(app, action="sku.restocked", object_id=sku_id)
    assert (entry["before"], entry["after"]) == ({"stock": 5}, {"stock": 8})


def test_the_entry_is_written_in_the_change_s_transaction(cat, shop, app):
    """Flushed with the change, the entry goes with a rollback and stays with a commit."""
    from api.extensions import db
    from mall import audit
    from mall.catalog.models import Sku
    from mall.identity.roles import Actor, Role

    brand_id, _, sku_id = shop
    before = audit_rows(app)
    with app.app_context():
        audit.acting(db.session, Actor(1, Role.PLATFORM_ADMIN))
        db.session.get(Sku, sku_id).price = 1500
        db.session.flush()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry)) == len(before) + 1
        db.session.rollback()
        assert audit_rows(app) == before
        db.session.get(Sku, sku_id).price = 1600
        db.session.commit()
    entry = only(app, action="sku.updated")
    assert (entry["before"], entry["after"], entry["actor_id"]) == ({"price": 1990}, {"price": 1600}, 1)


def test_product_creation_and_publishing_are_logged(cat, shop, app):
    brand_id, product, sku_id = shop

    cat.publish(product["id"], brand_id)

    created = only(app, action="product.created", object_id=product["id"])
    assert created["before"] is None and created["after"]["title"] == product["title"]
    assert only(app, action="sku.created", object_id=sku_id)["after"]["price"] == 1990
    published = only(app, action="product.updated", object_id=product["id"])
    assert (published["before"], published["after"]) == ({"status": "draft"}, {"status": "active"})


def test_shopper_requests_are_not_logged(cat, shop, app, login):
    before = len(audit_rows(app))
    shopper = login("shopper", name="audit-shopper")

    cat.client.get("/api/v1/me", headers=shopper)
    cat.client.post("/api/v1/me/addresses", headers=shopper, json={
        "recipient": "A", "phone": "13800000000", "province": "P", "city": "C", "detail": "D"})  # fmt: skip

    assert len(audit_rows(app)) == before


# ---- reading ------------------------------------------------------------------------------------------------


def test_platform_admins_read_everything_filtered_and_paged(cat, shop, app):
    brand_id, _, sku_id = shop
    for delta in (1, 2, 3):
        cat.adjust_stock(sku_id, brand_id, delta)

    first = cat.client.get(AUDIT, query_string={"object_type": "sku", "object_id": sku_id,
                                                "action": "sku.restocked", "limit": 2}, headers=cat.platform)  # fmt: skip
    assert first.status_code == 200, first.json
    assert [e["after"] for e in first.json["items"]] == [{"stock": 11}, {"stock": 8}]  # newest first
    second = cat.client.get(AUDIT, query_string={"object_type": "sku", "object_id": sku_id, "action": "sku.restocked",
                                                 "limit": 2, "before_id": first.json["next_before_id"]},
                            headers=cat.platform)  # fmt: skip
    assert [e["after"] for e in second.json["items"]] == [{"stock": 6}]
    assert second.json["next_before_id"] is None
    everything = cat.client.get(AUDIT, query_string={"limit": 200}, headers=cat.platform).json["items"]
    assert {e["action"] for e in everything} >= {"brand.created", "category.created", "sku.restocked"}


def test_time_and_actor_filters(cat, shop, app):
    brand_id, _, sku_id = shop
    cat.adjust_stock(sku_id, brand_id, 1)
    entry = only(app, action="sku.restocked")
    at = entry["at"].isoformat()

    def ids(**params):
        resp = cat.client.get(AUDIT, query_string={"action": "sku.restocked", **params}, headers=cat.platform)
        assert resp.status_code == 200, resp.json
        return [e["id"] for e in resp.json["items"]]

    assert ids(since=at) == [entry["id"]] and ids(until=at) == []
    assert ids(actor_id=entry["actor_id"]) == [entry["id"]] and ids(actor_id=entry["actor_id"] + 1000) == []


def test_brand_admins_read_only_their_brand(cat, shop, app):
    brand_id, _, sku_id = shop
    other = cat.brand()["id"]
    cat.adjust_stock(sku_id, brand_id, 1)

    mine = cat.client.get(AUDIT, headers=cat.brand_admin(brand_id))
    assert mine.status_code == 200
    assert mine.json["items"] and {e["brand_id"] for e in mine.json["items"]} == {brand_id}
    assert cat.client.get(AUDIT, headers=cat.brand_admin(other)).json["items"] == [
        e for e in cat.client.get(AUDIT, headers=cat.platform).json["items"] if e["brand_id"] == other
    ]
    assert_problem(cat.client.get(AUDIT, query_string={"brand_id": other}, headers=cat.brand_admin(brand_id)),
                   403, "audit.other_brand")  # fmt: skip


@pytest.mark.parametrize("role", ["shopper", "guide", "host"])
def test_everyone_else_is_refused(cat, shop, login, role):
    brand_id = shop[0]
    headers = login(role, name=f"audit-{role}", brand_id=brand_id if role == "guide" else None)
    assert_problem(cat.client.get(AUDIT, headers=headers), 403, "auth.role_forbidden")
    assert cat.client.get(AUDIT).status_code == 401


def test_entries_cannot_be_changed_through_the_api(cat, shop):
    for method in ("put", "patch", "delete", "post"):
        assert getattr(cat.client, method)(AUDIT, headers=cat.platform).status_code == 405
