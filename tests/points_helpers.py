"""Set-up for points tests: a brand, a shopper who buys, ships, refunds and settles; readable ledger facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from api.extensions import db
from mall.members import ledger
from mall.members.points_models import PointsEntry, PointsLot
from tests.guide_helpers import Guides
from tests.shop_helpers import Shop

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
WINDOW = timedelta(days=7)  # the default ORDER_AFTER_SALE_DAYS
ADJUST = "/api/v1/admin/points/adjustments"


class Points:
    """One brand (`fee` shipping), its admin, a platform operator and a shopper; buy / ship / refund / settle."""

    def __init__(self, shop: Shop, *, fee: int = 0):
        self.shop, self.client, self.app = shop, shop.client, shop.app
        self._people = Guides(shop)  # its `login` / `later`: headers that stay valid while the clock moves on
        self.brand = shop.brand(fee=fee)
        self.admin = self.login("brand_admin", self.brand)
        self.operator = self.login("platform_admin")
        self.shopper = self.login()
        self.shopper_id = shop.user_id(self.shopper)
        self.address = shop.address(self.shopper)

    def login(self, role: str = "shopper", brand_id: int | None = None) -> dict:
        return self._people.login(role, brand_id)

    def later(self, delta: timedelta) -> None:
        """Move the clock on, and sign everyone in again (tokens expire after days)."""
        self._people.later(delta)

    def sku(self, price: int) -> int:
        return self.shop.sku(self.brand, price=price)

    def buy(self, items: list[tuple[int, int]], **extra) -> dict:
        """A paid order of `items` (sku, quantity): its JSON, with `lines` by sku and `sub_id`."""
        line_ids = [self.shop.add(self.shopper, sku, qty) for sku, qty in items]
        placed = self.shop.place(self.shopper, line_ids, self.address, **extra)
        assert placed.status_code == 201, placed.get_json()
        order = placed.get_json()
        paid = self.shop.pay(self.shopper, order["id"])
        assert paid.status_code == 200, paid.get_json()
        order["lines"] = {line["sku_id"]: line for sub in order["sub_orders"] for line in sub["lines"]}
        order["sub_id"] = order["sub_orders"][0]["id"]
        return order

    def ship_and_confirm(self, sub_id: int) -> None:
        shipped = self.client.post(f"/api/v1/admin/sub-orders/{sub_id}/ship", headers=self.admin,
                                   json={"carrier": "SF", "tracking_number": "1"})  # fmt: skip
        assert shipped.status_code == 200, shipped.get_json()
        done = self.client.post(f"/api/v1/sub-orders/{sub_id}/confirm-receipt", headers=self.shopper)
        assert done.status_code == 200, done.get_json()

    def refund(self, sub_id: int, line_id: int, quantity: int) -> None:
        """An after-sale request for `quantity` units, approved (refunded)."""
        from tests.api.test_after_sale import ask, decide

        asked = ask(self.client, self.shopper, sub_id, line_id, quantity)
        assert asked.status_code == 201, asked.get_json()
        done = decide(self.client, self.shop, self.brand, asked.get_json()["id"])
        assert done.status_code == 200, done.get_json()

    def adjust(self, points: int, *, user_id: int | None = None, reason: str = "goodwill", key: str | None = None,
               headers: dict | None = None, **extra):  # fmt: skip
        body = {"user_id": user_id or self.shopper_id, "points": points, "reason": reason, **extra}
        return self.client.post(ADJUST, json=body,
                                headers={**(headers or self.operator), "Idempotency-Key": key or uuid.uuid4().hex})  # fmt: skip

    def me(self, headers: dict | None = None) -> dict:
        resp = self.client.get("/api/v1/me/points", headers=headers or self.shopper)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def balance(self, user_id: int | None = None) -> tuple[int, int, int]:
        with self.app.app_context():
            b = ledger.balance(db.session, user_id or self.shopper_id)
            return b.available, b.pending, b.reserved

    def lots(self, **where) -> list[PointsLot]:
        return self._rows(PointsLot, **where)

    def entries(self, **where) -> list[PointsEntry]:
        return self._rows(PointsEntry, **where)

    def _rows(self, model, **where):
        with self.app.app_context():
            rows = list(db.session.scalars(sa.select(model).filter_by(**where).order_by(model.id)))
            db.session.expunge_all()
            return rows

    def audit(self) -> list:
        with self.app.app_context():
            db.session.remove()
            found = ledger.audit(db.session)
            db.session.remove()
            return found


def run(job, *args):
    """A worker job, as `rq` runs it."""
    return job(*args)
