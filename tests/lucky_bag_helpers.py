"""Set-up for lucky-bag tests: a live room of a brand with a gift SKU and a coupon template, bags over HTTP,
and the winners recomputed from nothing but what the public endpoints publish (ADR 0020)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta

from mall import clock
from tests.coupon_helpers import Coupons
from tests.live_helpers import Live

BAGS = "/api/v1/live/lucky-bags"


def recompute(published: dict) -> list[int]:
    """ADR 0020's rule, written from the ADR and not imported from the code: check the seed against the hash
    published before the bag opened, rank the entrants by HMAC-SHA256(seed, user id), take prizes_awarded."""
    seed = bytes.fromhex(published["seed"])
    assert hashlib.sha256(seed).hexdigest() == published["seed_hash"]
    entrants = published["entrants"]
    assert entrants == sorted(entrants) and len(set(entrants)) == len(entrants)

    def ticket(user_id: int) -> str:
        return hmac.new(seed, str(user_id).encode(), hashlib.sha256).hexdigest()

    return sorted(entrants, key=lambda u: (ticket(u), u))[: published["prizes_awarded"]]


class Bags:
    def __init__(self, live: Live):
        self.live, self.shop, self.client = live, live.shop, live.client

    def show(self, *, gift_stock: int = 10, start: bool = True) -> dict:
        """A brand with a product (its SKU the gift), its admin, a host, a room (live unless told) and a coupon."""
        shop = self.shop
        brand = shop.brand()
        gift_sku = shop.sku(brand, price=5900, stock=gift_stock)
        product = self.live.product(brand)
        admin = shop.merchant(brand)
        host, host_id = self.live.host()
        room = self.live.room(admin, host_id, [product])
        if start:
            assert self.live.act(host, room["id"], "start").status_code == 200
        template = Coupons(shop).template(
            admin, brand_id=brand, scope_type="brand", scope_ids=[brand], per_shopper_limit=1
        )
        return {"brand": brand, "gift_sku": gift_sku, "admin": admin, "host": host, "host_id": host_id,
                "room": room, "template": template}  # fmt: skip

    def create_response(self, headers: dict, room_id: int, **fields):
        now = clock.now()
        body = {"title": "福袋", "winner_count": 2, "opens_at": now.isoformat(),
                "closes_at": (now + timedelta(minutes=5)).isoformat(), **fields}  # fmt: skip
        return self.client.post(f"/api/v1/live/rooms/{room_id}/lucky-bags", json=body, headers=headers)

    def create(self, headers: dict, room_id: int, **fields) -> dict:
        resp = self.create_response(headers, room_id, **fields)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def enter(self, headers: dict, bag_id: int, client=None):
        return (client or self.client).post(f"{BAGS}/{bag_id}/enter", headers=headers)

    def entrants(self, bag_id: int, count: int) -> list[tuple[dict, int]]:
        people = []
        for _ in range(count):
            headers = self.shop.shopper()
            assert self.enter(headers, bag_id).status_code == 200
            people.append((headers, self.shop.user_id(headers)))
        return people

    def draw(self, headers: dict, bag_id: int, client=None):
        return (client or self.client).post(f"{BAGS}/{bag_id}/draw", headers=headers)

    def read(self, bag_id: int) -> dict:
        resp = self.client.get(f"{BAGS}/{bag_id}")
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def prize(self, headers: dict, bag_id: int):
        return self.client.get(f"{BAGS}/{bag_id}/prize", headers=headers)

    def claim(self, headers: dict, bag_id: int, address_id: int | None, client=None):
        body = {} if address_id is None else {"address_id": address_id}
        return (client or self.client).post(f"{BAGS}/{bag_id}/claim", json=body,
                                headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
