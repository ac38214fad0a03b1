"""The soak's mixed workload: one keep-alive client per shopper, each picking its next operation at random (by
WEIGHTS) until time is up. An operation is a few requests (a checkout is add, quote, place, pay); its latency
runs from its first request to its last answer. Every response's status is counted; a status the operation does
not expect (a 500, a 429, a 409 where none can happen) counts as an error of that operation, and the client
carries on with its next one. Sold-out flash items and exhausted coupons answer 409: expected refusals.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from bench import harness
from bench.checkout import Shopper
from bench.flows import Request, _read_response
from soak.seed import Shop

API = "/api/v1"
WEIGHTS = {
    "browse": 16, "cart": 6, "quote": 10, "order_pay": 16, "cancel": 3, "refund": 5, "ship": 5, "claim": 5,
    "flash": 8, "live_poll": 16, "pin": 1, "link_open": 5,
}  # fmt: skip


class Unexpected(Exception):
    def __init__(self, request: Request, status: int, body: bytes):
        super().__init__(f"{request.method} {request.path} -> {status}: {body[:300]!r}")
        self.status = status


@dataclass
class Stats:
    statuses: Counter = field(default_factory=Counter)  # every response, by status (or transport failure)
    latencies: dict = field(default_factory=lambda: defaultdict(list))  # op -> seconds of each completed one
    errors: dict = field(default_factory=lambda: defaultdict(Counter))  # op -> status -> count
    samples: list = field(default_factory=list)
    requests: int = 0

    def error(self, op: str, kind: str, detail: str) -> None:
        self.errors[op][kind] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{op}: {detail}")


class Http:
    """One keep-alive connection to gunicorn; reconnects when the server closes it."""

    def __init__(self, port: int, stats: Stats, timeout: float):
        self.port, self.stats, self.timeout = port, stats, timeout
        self.host = f"{harness.HOST}:{port}"
        self.reader = self.writer = None

    async def call(self, method: str, path: str, body=None, headers=None, expect=(200,), key: bool = False):
        headers = {**(headers or {}), **({"Idempotency-Key": uuid.uuid4().hex} if key else {})}
        request = Request(method, path, body, headers)
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(harness.HOST, self.port)
        try:
            self.writer.write(request.encode(self.host))
            status, raw, close = await asyncio.wait_for(_read_response(self.reader), self.timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.close()
            self.stats.statuses["timeout" if isinstance(exc, TimeoutError) else "connection_lost"] += 1
            raise
        self.stats.requests += 1
        self.stats.statuses[str(status)] += 1
        if close:
            self.close()
        if status not in expect:
            raise Unexpected(request, status, raw)
        return status, (json.loads(raw) if raw else None)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Client:
    shop: Shop
    shopper: Shopper
    http: Http
    rng: random.Random
    unpaid: list = field(default_factory=list)  # order ids
    waiting: list = field(default_factory=list)  # (sub_order_id, [order line ids]) paid, not shipped nor refunded

    @property
    def auth(self) -> dict:
        return self.shopper.auth

    # ---- the operations ----

    async def browse(self) -> None:
        await self.http.call("GET", f"{API}/products?limit=20")
        await self.http.call("GET", f"{API}/products/{self.rng.choice(self.shop.products)}")

    async def _line(self, sku: int) -> int:
        _, cart = await self.http.call("POST", f"{API}/cart/lines", {"sku_id": sku, "quantity": 1}, self.auth)
        return next(line["id"] for line in cart["lines"] if line["sku_id"] == sku)

    async def cart(self) -> None:
        await self._line(self.rng.choice(self.shop.skus))

    async def quote(self) -> None:
        line = await self._line(self.rng.choice(self.shop.skus))
        body = {"line_ids": [line], "address_id": self.shopper.address_id}
        await self.http.call("POST", f"{API}/checkout/quote", body, self.auth)

    async def order_pay(self) -> None:
        """Add, quote (held coupons are applied; a third of the orders redeem points), place, and pay 9 in 10."""
        line = await self._line(self.rng.choice(self.shop.skus))
        body = {"line_ids": [line], "address_id": self.shopper.address_id}
        if self.rng.random() < 0.33:
            body["points"] = 300
        _, quote = await self.http.call("POST", f"{API}/checkout/quote", body, self.auth)
        body["expected_payable"] = quote["totals"]["payable"]
        _, order = await self.http.call("POST", f"{API}/orders", body, self.auth, expect=(201,), key=True)
        if self.rng.random() < 0.1:
            self.unpaid.append(order["id"])
            return
        await self._pay(order)

    async def _pay(self, order: dict) -> None:
        _, paid = await self.http.call("POST", f"{API}/orders/{order['id']}/pay", None, self.auth, key=True)
        if paid["status"] != "succeeded":
            raise Unexpected(Request("POST", f"/orders/{order['id']}/pay"), 200, json.dumps(paid).encode())
        for sub in order["sub_orders"]:
            self.waiting.append((sub["id"], [line["id"] for line in sub["lines"]]))

    async def cancel(self) -> bool:
        if not self.unpaid:
            return False
        await self.http.call("POST", f"{API}/orders/{self.unpaid.pop(0)}/cancel", {}, self.auth)
        return True

    async def refund(self) -> bool:
        """One unit of a paid, unshipped sub-order: the shopper asks, the merchant approves (the gateway refunds)."""
        if not self.waiting:
            return False
        sub_id, lines = self.waiting.pop(self.rng.randrange(len(self.waiting)))
        body = {"reason": "soak", "lines": [{"order_line_id": self.rng.choice(lines), "quantity": 1}]}
        _, case = await self.http.call("POST", f"{API}/sub-orders/{sub_id}/after-sales", body, self.auth,
                                       expect=(201,))  # fmt: skip
        await self.http.call("POST", f"{API}/admin/after-sales/{case['id']}/approve", {"note": "soak"}, self.shop.admin)
        return True

    async def ship(self) -> bool:
        if not self.waiting:
            return False
        sub_id, _ = self.waiting.pop(0)
        body = {"carrier": "SF", "tracking_number": f"SF{uuid.uuid4().hex[:12]}"}
        await self.http.call("POST", f"{API}/admin/sub-orders/{sub_id}/ship", body, self.shop.admin)
        return True

    async def claim(self) -> None:
        path = f"{API}/coupons/{self.shop.coupon_template_id}/claim"
        await self.http.call("POST", path, None, self.auth, expect=(201, 409), key=True)

    async def flash(self) -> None:
        """A purchase (409 once sold out or at the limit); an admitted order is paid, or 1 in 5 cancelled later."""
        path = f"{API}/flash-sales/{self.shop.flash_sale_id}/items/{self.shop.flash_item_id}/purchase"
        status, order = await self.http.call("POST", path, {"address_id": self.shopper.address_id}, self.auth,
                                             expect=(201, 409), key=True)  # fmt: skip
        if status == 201 and self.rng.random() < 0.2:
            self.unpaid.append(order["id"])  # left unpaid, then cancelled: its unit goes back to the quota
        elif status == 201:
            await self._pay(order)

    async def live_poll(self) -> None:
        await self.http.call("GET", f"{API}/live/rooms/{self.shop.room_id}")

    async def pin(self) -> None:
        body = {"product_id": self.rng.choice(self.shop.room_products)}
        await self.http.call("POST", f"{API}/live/rooms/{self.shop.room_id}/pin", body, self.shop.host)

    async def link_open(self) -> None:
        body = {"token": self.rng.choice(self.shop.link_tokens), "room_id": self.shop.room_id}
        await self.http.call("POST", f"{API}/live/links/open", body, self.auth)

    async def bind_guide(self) -> None:
        await self.http.call("POST", f"{API}/guide/links/open", {"token": self.shop.guide_link}, self.auth)


async def _run_client(client: Client, stats: Stats, end: float) -> None:
    ops, weights = list(WEIGHTS), list(WEIGHTS.values())
    queue = ["bind_guide"] if client.shopper.user_id % 2 else []  # half the shoppers buy through the guide
    while time.perf_counter() < end:
        op = queue.pop() if queue else client.rng.choices(ops, weights)[0]
        started = time.perf_counter()
        try:
            done = await getattr(client, op)()
        except Unexpected as exc:
            stats.error(op, str(exc.status), str(exc))
            continue
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            stats.error(op, type(exc).__name__, repr(exc))
            await asyncio.sleep(0.05)
            continue
        if done is not False:  # False: nothing to do (no unpaid order to cancel, none to refund or ship)
            stats.latencies[op].append(time.perf_counter() - started)
    client.http.close()


def drive(shop: Shop, port: int, *, seconds: float, seed: int = 18, timeout: float = 30.0) -> tuple[Stats, float]:
    """Every shopper runs operations for `seconds`; returns the figures and the wall time taken."""
    stats = Stats()

    async def main():
        end = time.perf_counter() + seconds
        clients = [Client(shop, shopper, Http(port, stats, timeout), random.Random(seed * 1000 + i))
                   for i, shopper in enumerate(shop.shoppers)]  # fmt: skip
        await asyncio.gather(*(_run_client(c, stats, end) for c in clients))

    started = time.perf_counter()
    asyncio.run(main())
    return stats, time.perf_counter() - started
