"""Set-up for guide tests over HTTP: a brand's guides invited and activated, their links, shoppers opening them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.guides.models import Binding
from tests.shop_helpers import Shop

ADMIN = "/api/v1/admin/guides"
OPEN = "/api/v1/guide/links/open"


class Guides:
    def __init__(self, shop: Shop):
        self.shop, self.client = shop, shop.client
        self._people: list[tuple[dict, str, str, int | None]] = []

    def login(self, role: str = "shopper", brand_id: int | None = None, name: str | None = None) -> dict:
        """Headers that `later` keeps valid (tokens expire after days; bindings are tested over weeks)."""
        name = name or f"{role}-{uuid.uuid4().hex[:6]}"
        headers = self.shop.login(role, name=name, brand_id=brand_id)
        self._people.append((headers, role, name, brand_id))
        return headers

    def later(self, delta: timedelta) -> None:
        """Move the clock on, and sign everyone in again (the same users)."""
        clock.advance(delta)
        for headers, role, name, brand_id in self._people:
            headers.update(self.shop.login(role, name=name, brand_id=brand_id))

    def guide(self, admin: dict, brand_id: int, *, shopper_user_id: int | None = None, client=None) -> dict:
        """An active guide of the brand: its headers (`headers`), guide id (`id`) and user id (`user_id`)."""
        headers = self.login("guide", brand_id)
        user_id = self.shop.user_id(headers)
        resp = self.client.post(ADMIN, json={"user_id": user_id, "shopper_user_id": shopper_user_id}, headers=admin)
        assert resp.status_code == 201, resp.get_json()
        guide_id = resp.get_json()["id"]
        assert self.client.post(f"{ADMIN}/{guide_id}/activate", headers=admin).status_code == 200
        return {"headers": headers, "id": guide_id, "user_id": user_id}

    def rule(self, admin: dict, mode: str, **extra) -> dict:
        resp = self.client.post(f"{ADMIN}/binding-rule", json={"mode": mode, **extra}, headers=admin)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def link(self, guide: dict, target: str = "storefront", **body) -> dict:
        resp = self.client.post("/api/v1/guide/links", json={"target": target, **body}, headers=guide["headers"])
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def open(self, shopper: dict, link: dict, client=None, **extra):
        return (client or self.client).post(OPEN, json={"token": link["token"], **extra}, headers=shopper)

    def opened(self, shopper: dict, link: dict, **extra) -> dict:
        resp = self.open(shopper, link, **extra)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()["binding"]

    def why(self, headers: dict, shopper_id: int, *, admin: bool = True) -> list[dict]:
        url = f"{ADMIN}/customers/{shopper_id}/why" if admin else f"/api/v1/guide/customers/{shopper_id}/why"
        resp = self.client.get(url, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def active(self, shopper_id: int, brand_id: int) -> list[Binding]:
        with self.shop.app.app_context():
            return list(db.session.scalars(sa.select(Binding).where(
                Binding.shopper_id == shopper_id, Binding.brand_id == brand_id, Binding.ended_at.is_(None))))  # fmt: skip

    def buy(self, shopper: dict, link: dict, *, quantity: int = 1, extra_lines: tuple[int, ...] = ()) -> dict:
        """The shopper opens a product link, places the order (with `extra_lines` of the cart) and pays it."""
        line_id = self.open(shopper, link, quantity=quantity).get_json()["line_id"]
        placed = self.shop.place(shopper, [line_id, *extra_lines], self.shop.address(shopper))
        assert placed.status_code == 201, placed.get_json()
        paid = self.shop.pay(shopper, placed.get_json()["id"])
        assert paid.status_code == 200, paid.get_json()
        return placed.get_json()
