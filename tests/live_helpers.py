"""Set-up for live-room tests: a brand with products and a host, rooms made and run over HTTP."""

from __future__ import annotations

import uuid
from datetime import timedelta

from api.extensions import db
from mall import clock
from mall.catalog.models import Sku
from tests.shop_helpers import Shop

ROOMS = "/api/v1/admin/live/rooms"


class Live:
    def __init__(self, shop: Shop):
        self.shop, self.client = shop, shop.client

    def product(self, brand_id: int, *, price: int = 9900, stock: int = 10) -> int:
        """A published product with one SKU; returns the product id."""
        sku_id = self.shop.sku(brand_id, price=price, stock=stock)
        with self.shop.app.app_context():
            return db.session.get(Sku, sku_id).product_id

    def host(self, name: str | None = None) -> tuple[dict, int]:
        headers = self.shop.login("host", name=name or f"host-{uuid.uuid4().hex[:6]}")
        return headers, self.shop.user_id(headers)

    def room(self, admin: dict, host_id: int, products: list[int], **extra) -> dict:
        start = clock.now() + timedelta(hours=1)
        body = {"title": "Spring launch", "host_user_id": host_id, "scheduled_start": start.isoformat(),
                "scheduled_end": (start + timedelta(hours=2)).isoformat(),
                "lineup": [{"product_id": p} for p in products], **extra}  # fmt: skip
        resp = self.client.post(ROOMS, json=body, headers=admin)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def act(self, headers: dict, room_id: int, verb: str, client=None, stream_offset_ms=None, **body):
        query = {} if stream_offset_ms is None else {"stream_offset_ms": stream_offset_ms}
        return (client or self.client).post(f"/api/v1/live/rooms/{room_id}/{verb}", json=body or None,
                                            query_string=query, headers=headers)  # fmt: skip

    def view(self, room_id: int, etag: str | None = None):
        headers = {"If-None-Match": etag} if etag else {}
        return self.client.get(f"/api/v1/live/rooms/{room_id}", headers=headers)
