"""Set-up for coupon tests: templates through the admin API, claims and quotes over HTTP, coupon rows.

Builds on `tests.shop_helpers.Shop` (brands, SKUs, shoppers, carts, orders)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.catalog import services as catalog
from mall.catalog import taxonomy
from mall.promotions.coupons.models import Coupon, CouponTemplate
from tests.shop_helpers import PLATFORM, Shop

DAYTIME = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai: outside marketing quiet hours
UNSET = object()


def iso(moment: datetime) -> str:
    return moment.isoformat()


class Coupons:
    """Coupon templates, claims and quotes for one test, on top of a `Shop`."""

    def __init__(self, shop: Shop):
        self.shop, self.app, self.client = shop, shop.app, shop.client

    def platform(self) -> dict:
        return self.shop.login("platform_admin", name="coupon-ops")

    # templates -----------------------------------------------------------------------------------
    def create(self, headers: dict | None = None, **fields):
        """POST a template (a 500-off fixed coupon valid 30 days from claim unless told otherwise)."""
        body = {"name": f"coupon-{uuid.uuid4().hex[:6]}", "value_type": "fixed", "amount": 500, **fields}
        if "valid_until" not in body and "valid_days" not in body:
            body["valid_days"] = 30
        return self.client.post("/api/v1/admin/coupon-templates", json=body, headers=headers or self.platform())

    def template(self, headers: dict | None = None, **fields) -> int:
        resp = self.create(headers, **fields)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["id"]

    def template_row(self, template_id: int) -> CouponTemplate:
        with self.app.app_context():
            row = db.session.get(CouponTemplate, template_id)
            db.session.expunge(row)
            return row

    # issuing -------------------------------------------------------------------------------------
    def claim(self, headers: dict, template_id: int, key: str | None = None, client=None):
        return (client or self.client).post(f"/api/v1/coupons/{template_id}/claim",
                                            headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})  # fmt: skip

    def give(self, headers: dict, template_id: int) -> int:
        """Claim one coupon for the shopper; returns its id."""
        resp = self.claim(headers, template_id)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["id"]

    def wallet(self, headers: dict, status: str | None = None) -> list[dict]:
        resp = self.client.get("/api/v1/me/coupons", query_string={"status": status} if status else {},
                               headers=headers)  # fmt: skip
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def row(self, coupon_id: int) -> Coupon:
        with self.app.app_context():
            row = db.session.get(Coupon, coupon_id)
            db.session.expunge_all()
            return row

    def rows(self, **where) -> list[Coupon]:
        with self.app.app_context():
            rows = db.session.scalars(sa.select(Coupon).filter_by(**where).order_by(Coupon.id)).all()
            db.session.expunge_all()
            return rows

    def shift(self, coupon_id: int, **values) -> None:
        """Move a held coupon's window (as if claimed at another time)."""
        with self.app.app_context():
            db.session.execute(sa.update(Coupon).where(Coupon.id == coupon_id).values(**values))
            db.session.commit()

    # checkout ------------------------------------------------------------------------------------
    def quote(self, headers: dict, line_ids: list[int], coupon_ids=UNSET) -> dict:
        body = {"line_ids": line_ids}
        if coupon_ids is not UNSET:
            body["coupon_ids"] = coupon_ids
        resp = self.client.post("/api/v1/checkout/quote", json=body, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def quote_response(self, headers: dict, line_ids: list[int], coupon_ids):
        return self.client.post("/api/v1/checkout/quote", json={"line_ids": line_ids, "coupon_ids": coupon_ids},
                                headers=headers)  # fmt: skip


def listed(quote: dict, coupon_id: int) -> dict:
    """The quote's entry for one held coupon."""
    return next(c for c in quote["coupons"] if c["coupon_id"] == coupon_id)


def coupon_discount(quote: dict, coupon_id: int) -> int:
    return sum(d["amount"] for d in quote["discounts"] if d["source"] == f"coupon:{coupon_id}")


def categories(app, depth: int = 2) -> list[int]:
    """A chain root > child > grandchild …; returns their ids, root first."""
    with app.app_context():
        ids, parent = [], None
        for level in range(depth):
            category = taxonomy.create_category(db.session, actor=PLATFORM, name=f"cat-{level}-{uuid.uuid4().hex[:6]}",
                                                parent_id=parent)  # fmt: skip
            ids.append(category.id)
            parent = category.id
        db.session.commit()
        return ids


def sku_in(app, brand_id: int, *, price: int, category_id: int, currency: str = "CNY", stock: int = 100):
    """A published one-SKU product in a given category: (sku id, product id)."""
    with app.app_context():
        product = catalog.create_product(
            db.session, actor=PLATFORM, brand_id=brand_id, currency=currency, category_id=category_id,
            title=f"Product {uuid.uuid4().hex[:6]}", tier="profit", min_member_level=None,
            skus=[{"specs": {"size": "M"}, "price": price, "list_price": price, "stock": stock}],
        )  # fmt: skip
        catalog.set_product_status(db.session, actor=PLATFORM, product_id=product.id, status="active")
        db.session.commit()
        return product.skus[0].id, product.id


def product_of(app, sku_id: int) -> int:
    from mall.catalog.models import Sku

    with app.app_context():
        return db.session.get(Sku, sku_id).product_id


def window(days_from: float, days_until: float) -> dict:
    """A fixed validity window relative to the (frozen) clock."""
    now = clock.now()
    return {"valid_from": iso(now + timedelta(days=days_from)), "valid_until": iso(now + timedelta(days=days_until))}
