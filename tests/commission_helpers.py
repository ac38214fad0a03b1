"""Set-up for commission ledger tests: a brand with an admin, a guide (bound to a shopper through a storefront link),
products in categories, rate cards, and guided orders paid, refunded and settled; readable ledger facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.guides import ledger
from mall.guides.ledger_models import CommissionEntry
from mall.guides.models import Guide
from tests.coupon_helpers import sku_in
from tests.guide_helpers import Guides
from tests.shop_helpers import Shop

CARDS = "/api/v1/admin/guides/rate-cards"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=7)  # the default ORDER_AFTER_SALE_DAYS


class Commission:
    """One brand, its admin, guide `guide` and a shopper bound to the guide; `card`/`buy`/`refund`/`settle`."""

    def __init__(self, shop: Shop, *, fee: int = 0, grade: str | None = None):
        self.shop, self.client, self.app = shop, shop.client, shop.app
        self.guides = Guides(shop)
        self.brand = shop.brand(fee=fee)
        self.admin = self.guides.login("brand_admin", self.brand)
        self.shopper = self.guides.login()
        self.shopper_id = shop.user_id(self.shopper)
        self.guide = self.guides.guide(self.admin, self.brand)
        if grade is not None:
            self.set_grade(grade)
        self.guides.opened(self.shopper, self.guides.link(self.guide))  # bound through the storefront link
        self.address = shop.address(self.shopper)

    def set_grade(self, grade: str | None) -> None:
        self._set_guide(grade=grade)

    def link_identity(self) -> None:
        """The guide's own shopper account is the bound shopper (linked after the binding: self-binding is refused)."""
        self._set_guide(shopper_user_id=self.shopper_id)

    def _set_guide(self, **values) -> None:
        with self.app.app_context():
            guide = db.session.get(Guide, self.guide["id"])
            for name, value in values.items():
                setattr(guide, name, value)
            db.session.commit()

    def category(self, parent_id: int | None = None) -> int:
        from mall.catalog import taxonomy
        from tests.shop_helpers import PLATFORM

        with self.app.app_context():
            row = taxonomy.create_category(db.session, actor=PLATFORM, name=f"c-{uuid.uuid4().hex[:6]}",
                                           parent_id=parent_id)  # fmt: skip
            db.session.commit()
            return row.id

    def sku(self, price: int, category_id: int | None = None, stock: int = 100) -> tuple[int, int]:
        """A published one-SKU product of the brand (in a new category unless named): (sku id, product id)."""
        category_id = category_id or self.category()
        return sku_in(self.app, self.brand, price=price, category_id=category_id, stock=stock)

    def card(self, headers: dict | None = None, **body) -> dict:
        resp = self.client.post(CARDS, json=body, headers=headers or self.admin)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def place(self, items: list[tuple[int, int]], **extra) -> dict:
        lines = [self.shop.add(self.shopper, sku, qty) for sku, qty in items]
        resp = self.shop.place(self.shopper, lines, self.address, **extra)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def buy(self, items: list[tuple[int, int]], **extra) -> dict:
        """A paid order of `items` (sku, quantity): the order's JSON, `line_ids` by sku added."""
        order = self.place(items, **extra)
        paid = self.shop.pay(self.shopper, order["id"])
        assert paid.status_code == 200, paid.get_json()
        lines = [line for sub in order["sub_orders"] for line in sub["lines"]]
        order["line_ids"] = {line["sku_id"]: line["id"] for line in lines}
        order["sub_id"] = order["sub_orders"][0]["id"]
        return order

    def entries(self, line_id: int | None = None, guide_id: int | None = None) -> list[CommissionEntry]:
        with self.app.app_context():
            query = sa.select(CommissionEntry).order_by(CommissionEntry.id)
            if line_id is not None:
                query = query.where(CommissionEntry.order_line_id == line_id)
            if guide_id is not None:
                query = query.where(CommissionEntry.guide_id == guide_id)
            rows = list(db.session.scalars(query))
            db.session.expunge_all()
            return rows

    def facts(self, line_id: int) -> list[tuple[str, str, int]]:
        """(kind, state, amount) of a line's entries, oldest first."""
        return [(e.kind, e.state, e.amount) for e in self.entries(line_id)]

    def balance(self, guide_id: int | None = None, currency: str = "CNY") -> ledger.Balance:
        with self.app.app_context():
            return ledger.balance(db.session, guide_id or self.guide["id"], currency)

    def audit(self) -> list:
        with self.app.app_context():
            db.session.remove()
            return ledger.audit(db.session)

    def ship_and_confirm(self, sub_id: int) -> None:
        shipped = self.client.post(f"/api/v1/admin/sub-orders/{sub_id}/ship", headers=self.admin,
                                   json={"carrier": "SF", "tracking_number": "1"})  # fmt: skip
        assert shipped.status_code == 200, shipped.get_json()
        done = self.client.post(f"/api/v1/sub-orders/{sub_id}/confirm-receipt", headers=self.shopper)
        assert done.status_code == 200 and done.get_json()["after_sale_deadline"] is not None, done.get_json()

    def later(self, delta: timedelta) -> None:
        self.guides.later(delta)


def settle_all() -> int:
    from workers.jobs.orders import settle_sub_orders

    return settle_sub_orders()


def at(moment: datetime) -> None:
    clock.freeze(moment)


def ask_refund(world: Commission, sub_id: int, line_id: int, quantity: int, *, approve: bool = True) -> int:
    """An after-sale request for `quantity` units of a line, approved (refunded) unless told otherwise: its id."""
    from tests.api.test_after_sale import ask, decide

    resp = ask(world.client, world.shopper, sub_id, line_id, quantity)
    assert resp.status_code == 201, resp.get_json()
    case_id = resp.get_json()["id"]
    if approve:
        done = decide(world.client, world.shop, world.brand, case_id)
        assert done.status_code == 200, done.get_json()
    return case_id


def dashboard_refund(world: Commission, order_id: int, refund_id: str, amount: int) -> str:
    """A refund made in the payment provider's dashboard (tests/test_external_refunds.py), committed."""
    from mall.payments.models import Payment
    from tests.test_external_refunds import dashboard

    with world.app.app_context():
        payment = db.session.scalar(sa.select(Payment).filter_by(order_id=order_id))
        outcome = dashboard(db.session, payment, refund_id, amount)
        db.session.commit()
        from mall import events

        events.release(db.session)
        return outcome
