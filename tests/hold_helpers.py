"""Set-up for commission hold tests: a brand with guides and a product, shoppers bound to a guide placing and paying
orders to a given address (optionally with a coupon), and the hold rules asked about an order."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from api.extensions import db
from mall.guides import holds
from mall.guides.models import Guide
from mall.orders.models import Order, OrderLine
from tests.coupon_helpers import Coupons
from tests.guide_helpers import Guides
from tests.shop_helpers import Shop

HOLDS = "/api/v1/admin/guides/commission"
HOME = {"recipient": "Wang Fang", "phone": "13912345678", "province": "Zhejiang", "city": "Hangzhou",
        "district": "Xihu", "detail": "8 Wensan Road, Room 1201"}  # fmt: skip


def address(**changes) -> dict:
    return {**HOME, **changes}


class Holds:
    def __init__(self, shop: Shop):
        self.shop, self.app, self.client = shop, shop.app, shop.client
        self.guides, self.coupons = Guides(shop), Coupons(shop)
        self.brand_id = shop.brand()
        self.admin = self.guides.login("brand_admin", self.brand_id)
        self.sku = shop.sku(self.brand_id, price=10_000)
        self.a = self.guides.guide(self.admin, self.brand_id)
        self.b = self.guides.guide(self.admin, self.brand_id)
        self.link_a, self.link_b = self.guides.link(self.a), self.guides.link(self.b)

    def shopper(self, guide: dict | None = None) -> dict:
        """A new shopper, bound to `guide` (through its storefront link) if given."""
        headers = self.guides.login()
        if guide is not None:
            link = self.link_a if guide is self.a else self.link_b
            assert self.guides.opened(headers, link)["kind"] == "bound"
        return headers

    def save_address(self, headers: dict, shipping: dict | None = None) -> int:
        resp = self.client.post("/api/v1/me/addresses", json=shipping or HOME, headers=headers)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["id"]

    def buy(self, headers: dict, shipping: dict | None = None, *, coupon_id: int | None = None) -> int:
        """A paid order of the product shipped to `shipping`; its id."""
        extra = {"coupon_ids": [coupon_id]} if coupon_id else {}
        line = self.shop.add(headers, self.sku)
        placed = self.shop.place(headers, [line], self.save_address(headers, shipping), **extra)
        assert placed.status_code == 201, placed.get_json()
        order_id = placed.get_json()["id"]
        assert self.shop.pay(headers, order_id).status_code == 200
        return order_id

    def reason(self, guide: dict, order_id: int) -> dict | None:
        """What the hold rules say about the guide's commission on the order (as the earn path asks them)."""
        with self.app.app_context():
            order = db.session.get(Order, order_id)
            lines = list(db.session.scalars(sa.select(OrderLine).where(OrderLine.order_id == order_id,
                                                                        OrderLine.guide_id == guide["id"])))  # fmt: skip
            found = holds.hold_reason(db.session, guide=db.session.get(Guide, guide["id"]), order=order, lines=lines)
            db.session.commit()
            return found

    def settings(self, **changes) -> dict:
        resp = self.client.put(f"{HOLDS}/hold-settings", json=changes, headers=self.admin)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def guide_coupon(self, guide: dict) -> int:
        """A claimable coupon template of the brand, owned by the guide."""
        template = self.coupons.template(self.admin, brand_id=self.brand_id, name=f"g-{uuid.uuid4().hex[:6]}",
                                         per_shopper_limit=5)  # fmt: skip
        resp = self.client.post(f"/api/v1/admin/guides/{guide['id']}/coupons", json={"template_id": template},
                                headers=self.admin)  # fmt: skip
        assert resp.status_code == 201, resp.get_json()
        return template
