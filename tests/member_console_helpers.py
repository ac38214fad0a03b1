"""Set-up for the member console and member centre tests: two brands, shoppers who bought through the services
(cart, placement, offline payment: points earned as in production) at chosen times, the nightly members run, and
a second run after more purchases (movements). The figures are hand-computed in the tests that use it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.extensions import db
from mall import clock, demo
from mall.attribution import ORGANIC
from mall.cart import services as cart
from tests.member_helpers import Members
from tests.shop_helpers import Shop

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND_RUN = T0 + 60 * DAY


class MemberWorld:
    """Brands A and B. s1 bought A four times (¥3, T-1 .. T-45), s2 once (¥1, T-2), s3 bought B (¥4, T-5), s4
    nothing yet; the nightly run at T0. `second_run`: s3 buys B again (T+50), s4 buys A (T+49), run at T+60."""

    def __init__(self, app, client, login):
        clock.freeze(T0)
        self.app, self.client, self.login = app, client, login
        self.shop = Shop(app, client, login)
        self.a, self.b = self.shop.brand(), self.shop.brand()
        self.skus = {"a300": self.shop.sku(self.a, price=300), "a100": self.shop.sku(self.a, price=100),
                     "b400": self.shop.sku(self.b, price=400)}  # fmt: skip
        self.heads = {n: self.shop.shopper(f"s{n}") for n in range(1, 5)}
        self.ids = {n: self.shop.user_id(h) for n, h in self.heads.items()}
        for days in (1, 10, 20, 45):
            self.buy(1, "a300", T0 - days * DAY)
        self.buy(2, "a100", T0 - 2 * DAY)
        self.buy(3, "b400", T0 - 5 * DAY)
        self.run(T0)

    def buy(self, shopper: int, sku: str, at: datetime) -> int:
        """A paid order of one unit, placed and paid at `at` through the services."""
        clock.freeze(at)
        try:
            with self.app.app_context():
                user_id = self.ids[shopper]
                line = cart.add_line(db.session, user_id=user_id, sku_id=self.skus[sku], quantity=1, source=ORGANIC)
                order_id = demo.paid_order(db.session, shopper_id=user_id, line_ids=[line]).id
                db.session.commit()
                return order_id
        finally:
            clock.freeze(T0)

    def run(self, at: datetime) -> dict:
        return Members(self.app).run(at)

    def second_run(self) -> None:
        self.buy(3, "b400", T0 + 50 * DAY)
        self.buy(4, "a100", T0 + 49 * DAY)
        self.run(SECOND_RUN)
        clock.freeze(SECOND_RUN)

    def admins(self) -> dict:
        """Tokens at the clock's day: the platform operator and each brand's admin."""
        return {"platform": self.login("platform_admin", name="ops"), "a": self.shop.merchant(self.a),
                "b": self.shop.merchant(self.b)}  # fmt: skip
