"""Set-up for members tests: brands, products and shoppers through the services, paid orders written as rows
(with the paid time, amounts and refunds a hand-computed RFM example needs), the nightly job run at a clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.catalog import services as catalog
from mall.catalog import taxonomy
from mall.identity.models import User
from mall.members.models import RfmScore
from mall.members.rfm import latest_run_id
from mall.orders.models import Order, OrderLine, SubOrder
from tests.shop_helpers import PLATFORM
from workers.jobs.members import members_nightly

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


class Members:
    def __init__(self, app):
        self.app = app
        self.products: dict[int, tuple[int, int]] = {}

    def brand(self) -> int:
        with self.app.app_context():
            slug = f"b-{uuid.uuid4().hex[:8]}"
            brand = taxonomy.create_brand(db.session, actor=PLATFORM, slug=slug, name=slug)
            category = taxonomy.create_category(db.session, actor=PLATFORM, name=f"c-{uuid.uuid4().hex[:6]}")
            product = catalog.create_product(
                db.session, actor=PLATFORM, brand_id=brand.id, currency="CNY", category_id=category.id,
                title=f"Product {slug}", tier="profit",
                skus=[{"specs": {"size": "M"}, "price": 100, "list_price": 100, "stock": 100}],
            )  # fmt: skip
            db.session.commit()
            self.products[brand.id] = (product.id, product.skus[0].id)
            return brand.id

    def category_of(self, brand_id: int) -> int:
        from mall.catalog.models import Product

        with self.app.app_context():
            return db.session.get(Product, self.products[brand_id][0]).category_id

    def shopper(self, name: str | None = None) -> int:
        with self.app.app_context():
            user = User(role="shopper", display_name=name or f"m-{uuid.uuid4().hex[:6]}")
            db.session.add(user)
            db.session.commit()
            return user.id

    def order(self, user_id: int, parts: dict[int, int], paid_at: datetime, refunded: dict[int, int] | None = None,
              **line) -> int:  # fmt: skip
        """A paid order of `parts` (brand id -> amount paid), `refunded` (brand id -> amount refunded)."""
        refunded = refunded or {}
        with self.app.app_context():
            total, back = sum(parts.values()), sum(refunded.values())
            order = Order(user_id=user_id, status="paid", currency="CNY", items_total=total, discount_total=0,
                          shipping_total=0, payable_total=total, paid_total=total, refunded_total=back, address={},
                          discounts=[], expires_at=paid_at, paid_at=paid_at, created_at=paid_at, updated_at=paid_at)  # fmt: skip
            db.session.add(order)
            db.session.flush()
            for brand_id, amount in parts.items():
                sub = SubOrder(order_id=order.id, brand_id=brand_id, status="paid", items_total=amount,
                               discount_total=0, shipping_fee=0, payable_total=amount,
                               refunded_total=refunded.get(brand_id, 0), created_at=paid_at, updated_at=paid_at)  # fmt: skip
                db.session.add(sub)
                db.session.flush()
                product_id, sku_id = self.products[brand_id]
                fully = refunded.get(brand_id, 0) >= amount
                db.session.add(OrderLine(order_id=order.id, sub_order_id=sub.id, sku_id=sku_id, product_id=product_id,
                                         title="p", unit_price=amount, quantity=1, subtotal=amount, discount_total=0,
                                         payable=amount, refunded_quantity=int(fully),
                                         refunded_amount=refunded.get(brand_id, 0), **line))  # fmt: skip
            db.session.commit()
            return order.id

    def run(self, at: datetime) -> dict:
        clock.freeze(at)
        return members_nightly()

    def scores(self, scope: int) -> dict[int, RfmScore]:
        with self.app.app_context():
            run_id = latest_run_id(db.session)
            rows = db.session.scalars(sa.select(RfmScore).filter_by(run_id=run_id, scope=scope)).all()
            db.session.expunge_all()
            return {row.user_id: row for row in rows}
