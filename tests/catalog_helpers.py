"""Shared helpers for the catalog tests: build brands, categories, products and bundles
through the HTTP API, read rows back from the database, and check problem+json answers."""

from __future__ import annotations

import itertools
from datetime import datetime
from functools import cached_property

import sqlalchemy as sa

PROBLEM = "application/problem+json"
ADMIN = "/api/v1/admin"

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}"


def assert_problem(resp, status: int, code: str, *, field: str | None = None) -> dict:
    """The response is an RFC 9457 problem with this status and code (and, if given, a complaint about `field`)."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = resp.json
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] == f"urn:mall:problem:{code}"
    assert body["title"] and body["detail"]
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert any(f == field or f.startswith(f"{field}.") for f in fields if f), body
    return body


def rows(app, statement):
    """Run a read in its own app context (its own session), so it sees only committed rows."""
    from api.extensions import db

    with app.app_context():
        result = db.session.execute(statement)
        return result.scalars().all() if len(statement.selected_columns) == 1 else result.all()


def scalar(app, statement):
    from api.extensions import db

    with app.app_context():
        return db.session.scalar(statement)


def write(app, statement) -> None:
    """A direct database change (for state no API sets, e.g. sales counts)."""
    from api.extensions import db

    with app.app_context():
        db.session.execute(statement)
        db.session.commit()


def catalog_counts(app) -> dict[str, int]:
    """Rows per catalog table (and domain events): compare before and after a rejected request."""
    from mall.catalog.models import Brand, Bundle, BundleItem, Category, Product, Sku
    from mall.events import DomainEvent

    models = (Brand, Category, Product, Sku, Bundle, BundleItem, DomainEvent)
    return {m.__tablename__: scalar(app, sa.select(sa.func.count()).select_from(m)) for m in models}


def sku_body(price: int, *, specs: dict | None = None, **fields) -> dict:
    return {"specs": specs or {"size": unique("s")}, "price": price, "list_price": price + 1000, "stock": 10, **fields}


class Catalog:
    """Drives the catalog API as a platform admin, a brand admin or a shopper."""

    def __init__(self, client, login, app):
        self.client = client
        self.login = login
        self.app = app
        self._brand_admins: dict[int, dict] = {}

    @cached_property
    def platform(self) -> dict:
        return self.login("platform_admin", name="catalog-platform-admin")

    def brand_admin(self, brand_id: int) -> dict:
        if brand_id not in self._brand_admins:
            self._brand_admins[brand_id] = self.login("brand_admin", name=f"brand-admin-{brand_id}", brand_id=brand_id)
        return self._brand_admins[brand_id]

    # ---- platform admin -----------------------------------------------------------------

    def brand(self, **fields) -> dict:
        body = {"slug": unique("brand"), "name": unique("Brand"), **fields}
        resp = self.client.post(f"{ADMIN}/brands", json=body, headers=self.platform)
        assert resp.status_code == 201, resp.json
        return resp.json

    def set_brand_status(self, brand_id: int, status: str) -> dict:
        resp = self.client.patch(f"{ADMIN}/brands/{brand_id}", json={"status": status}, headers=self.platform)
        assert resp.status_code == 200, resp.json
        return resp.json

    def category(self, name: str | None = None, parent_id: int | None = None) -> dict:
        body = {"name": name or unique("Category"), "parent_id": parent_id}
        resp = self.client.post(f"{ADMIN}/categories", json=body, headers=self.platform)
        assert resp.status_code == 201, resp.json
        return resp.json

    def move_category(self, category_id: int, parent_id: int | None):
        return self.client.patch(
            f"{ADMIN}/categories/{category_id}", json={"parent_id": parent_id}, headers=self.platform
        )

    # ---- brand admin ----------------------------------------------------------------------

    def create_product(self, brand_id: int, category_id: int, /, *, headers=None, **fields):
        body = {"category_id": category_id, "title": unique("Product"), "skus": [sku_body(1990)], **fields}
        return self.client.post(f"{ADMIN}/products", json=body, headers=headers or self.brand_admin(brand_id))

    def product(self, brand_id: int, category_id: int, /, *, publish: bool = False, **fields) -> dict:
        """A product (draft, or active when `publish`), as the admin API returns it."""
        resp = self.create_product(brand_id, category_id, **fields)
        assert resp.status_code == 201, resp.json
        if publish:
            return self.publish(resp.json["id"], brand_id)
        return resp.json

    def publish(self, product_id: int, brand_id: int) -> dict:
        resp = self.client.post(f"{ADMIN}/products/{product_id}/publish", headers=self.brand_admin(brand_id))
        assert resp.status_code == 200, resp.json
        return resp.json

    def archive(self, product_id: int, brand_id: int) -> dict:
        resp = self.client.post(f"{ADMIN}/products/{product_id}/archive", headers=self.brand_admin(brand_id))
        assert resp.status_code == 200, resp.json
        return resp.json

    def admin_product(self, product_id: int, brand_id: int) -> dict:
        resp = self.client.get(f"{ADMIN}/products/{product_id}", headers=self.brand_admin(brand_id))
        assert resp.status_code == 200, resp.json
        return resp.json

    def patch_sku(self, sku_id: int, brand_id: int, **fields):
        return self.client.patch(f"{ADMIN}/skus/{sku_id}", json=fields, headers=self.brand_admin(brand_id))

    def adjust_stock(self, sku_id: int, brand_id: int, delta):
        return self.client.post(
            f"{ADMIN}/skus/{sku_id}/stock", json={"delta": delta}, headers=self.brand_admin(brand_id)
        )

    def create_bundle(self, brand_id: int, items: list[dict], /, *, price: int = 5000, headers=None, **fields):
        body = {"title": unique("Bundle"), "price": price, "items": items, **fields}
        return self.client.post(f"{ADMIN}/bundles", json=body, headers=headers or self.brand_admin(brand_id))

    def bundle(self, brand_id: int, items: list[dict], /, *, publish: bool = False, **fields) -> dict:
        resp = self.create_bundle(brand_id, items, **fields)
        assert resp.status_code == 201, resp.json
        if not publish:
            return resp.json
        resp = self.client.post(f"{ADMIN}/bundles/{resp.json['id']}/publish", headers=self.brand_admin(brand_id))
        assert resp.status_code == 200, resp.json
        return resp.json

    # ---- shopper --------------------------------------------------------------------------

    def listing(self, **params):
        return self.client.get("/api/v1/products", query_string=params)

    def detail(self, product_id: int):
        return self.client.get(f"/api/v1/products/{product_id}")

    def walk(self, cursor: str | None = None, **params) -> list[dict]:
        """Every item of a listing (from `cursor`, else the first page), following next_cursor to the end."""
        items = []
        for _ in range(1000):
            resp = self.listing(**params, **({"cursor": cursor} if cursor else {}))
            assert resp.status_code == 200, resp.json
            assert len(resp.json["items"]) <= params.get("limit", 20)
            items += resp.json["items"]
            cursor = resp.json["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError("the listing never reached its last page")

    def listed_ids(self, **params) -> list[int]:
        return [item["id"] for item in self.walk(**params)]


def sort_key(sort: str):
    """How a listing sorts admin product dicts (ties broken by id in the same direction)."""
    return {
        "newest": lambda p: (datetime.fromisoformat(p["published_at"]), p["id"]),
        "price_asc": lambda p: (p["price_min"], p["id"]),
        "price_desc": lambda p: (p["price_min"], p["id"]),
        "sales": lambda p: (p["sales_count"], p["id"]),
    }[sort]


def expected_order(products: list[dict], sort: str) -> list[int]:
    ordered = sorted(products, key=sort_key(sort), reverse=sort != "price_asc")
    return [p["id"] for p in ordered]
