"""Set-up for cart/order tests: brands and products through the services, shopping through HTTP."""

from __future__ import annotations

import uuid

from api.extensions import db
from mall.catalog import services as catalog
from mall.catalog import taxonomy
from mall.checkout.services import set_shipping_policy
from mall.identity.models import User
from mall.identity.roles import Actor, Role

PLATFORM = Actor(user_id=0, role=Role.PLATFORM_ADMIN)


class Shop:
    def __init__(self, app, client, login):
        self.app, self.client, self.login = app, client, login

    def brand(self, *, fee: int = 0, free_above: int | None = None) -> int:
        with self.app.app_context():
            slug = f"b-{uuid.uuid4().hex[:8]}"
            brand = taxonomy.create_brand(db.session, actor=PLATFORM, slug=slug, name=slug)
            if fee or free_above is not None:
                set_shipping_policy(db.session, actor=PLATFORM, brand_id=brand.id, fee=fee, free_above=free_above)
            db.session.commit()
            return brand.id

    def sku(self, brand_id: int, *, price: int, stock: int = 100, tier: str = "profit", level: int | None = None):
        """A published product with one SKU; returns the SKU id."""
        with self.app.app_context():
            category = taxonomy.create_category(db.session, actor=PLATFORM, name=f"c-{uuid.uuid4().hex[:6]}")
            product = catalog.create_product(
                db.session, actor=PLATFORM, brand_id=brand_id, currency="CNY", category_id=category.id,
                title=f"Product {uuid.uuid4().hex[:6]}", tier=tier, min_member_level=level,
                skus=[{"specs": {"size": "M"}, "price": price, "list_price": price, "stock": stock}],
            )  # fmt: skip
            catalog.set_product_status(db.session, actor=PLATFORM, product_id=product.id, status="active")
            db.session.commit()
            return product.skus[0].id

    def shopper(self, name: str | None = None) -> dict:
        return self.login("shopper", name=name or f"shopper-{uuid.uuid4().hex[:6]}")

    def merchant(self, brand_id: int) -> dict:
        return self.login("brand_admin", name=f"admin-{brand_id}", brand_id=brand_id)

    def user_id(self, headers: dict) -> int:
        return self.client.get("/api/v1/me", headers=headers).get_json()["id"]

    def set_level(self, headers: dict, level: int) -> None:
        with self.app.app_context():
            db.session.get(User, self.user_id(headers)).member_level = level
            db.session.commit()

    def address(self, headers: dict) -> int:
        body = {"recipient": "Li Lei", "phone": "13800000000", "province": "Zhejiang", "city": "Hangzhou",
                "detail": "1 West Lake Road"}  # fmt: skip
        resp = self.client.post("/api/v1/me/addresses", json=body, headers=headers)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["id"]

    def add(self, headers: dict, sku_id: int, quantity: int = 1, **extra) -> int:
        resp = self.client.post("/api/v1/cart/lines", json={"sku_id": sku_id, "quantity": quantity, **extra},
                                headers=headers)  # fmt: skip
        assert resp.status_code == 200, resp.get_json()
        return next(line["id"] for line in resp.get_json()["lines"] if line["sku_id"] == sku_id)

    def place(self, headers: dict, line_ids: list[int], address_id: int, key: str | None = None, **extra):
        return self.client.post(
            "/api/v1/orders", json={"line_ids": line_ids, "address_id": address_id, **extra},
            headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )  # fmt: skip

    def pay(self, headers: dict, order_id: int, key: str | None = None):
        return self.client.post(f"/api/v1/orders/{order_id}/pay",
                                headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})  # fmt: skip

    def stock(self, sku_id: int) -> int:
        from mall.catalog.models import Sku

        with self.app.app_context():
            return db.session.get(Sku, sku_id).stock


def answer_of(resp) -> tuple:
    """What a client gets, to compare a fast path's answer with Flask's: status, headers and body, less the
    X-Request-Id only Flask's answers carry (ADR 0035)."""
    headers = sorted((k, v) for k, v in resp.headers.items() if k != "X-Request-Id")
    return resp.status_code, headers, resp.get_data()
