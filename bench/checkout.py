"""Checkout suite: whole checkouts, order placement under load, and quotes of big carts with coupons.

Seeds a throw-away database built by the project's migrations, through the domain services (the
way staff and shoppers would create it): a platform admin and one brand admin per brand, six
brands with shipping policies, a small category tree, products whose SKUs hold ample stock,
shoppers with an address and prepared carts, coupon templates and held coupons. Production hides
/auth/dev, so the shoppers' bearer tokens are minted with `mall.identity.tokens.issue` and the
run's SECRET_KEY before gunicorn starts. Then, against one gunicorn (MALL_ENV=production,
PAYMENT_GATEWAY=offline, REDIS_URL on the bench's Redis database):

  livez                 GET /livez at --concurrency clients: the stack's ceiling, for scale
  checkout@1            one client running whole checkouts in a loop: add a SKU to the cart, quote
                        the line, place the order (Idempotency-Key, expected_payable), pay it with
                        the offline gateway. Figures are per checkout (four requests).
  place@N               POST /api/v1/orders at --concurrency clients, each ordering 2 lines of 2
                        brands over SKUs no other client touches, with a fresh Idempotency-Key
                        each time. Lines are prepared in advance (full 100-line carts, several
                        shoppers a client), enough for PLACE_CAPACITY orders/s over warm-up plus
                        measurement, so only the placement is timed; a client that runs out
                        re-adds two lines with untimed requests (counted in `extra.readds`).
  quote20@1             POST /api/v1/checkout/quote for a 20-line cart over 5 brands (shipping
                        policies, no coupons held), one client: the latency a shopper sees.
  quote20+coupons@1     the same with 10 held coupons of mixed kinds (fixed, threshold, percent,
                        free shipping; mall, brand, category and product scopes; one exclusion;
                        one below its threshold) across 5 brand slots and the platform slot, and
                        no coupon_ids: the best-combination search (144 combinations) runs.

Each scenario runs --warmup then --duration seconds, after waiting (up to --quiet-wait) for the
machine to be idle. Redis is a spare database of the run's own (BENCH_CHECKOUT_REDIS_URL, default
db 12; it must be empty) that gets the RQ jobs placements schedule and the token cache, and is
emptied at the end.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from bench import flows, harness

NAME = "checkout"
DESCRIPTION = "whole checkouts, order placement, 20-line quotes with and without 10 held coupons"

API = "/api/v1"
LINES_PER_ORDER = 2  # placement: one line of each of two brands
CART_LINES = 100  # mall.cart.services.MAX_LINES: a prepared cart is full
PLACE_CAPACITY = 1000  # orders/s the prepared lines cover over warm-up + measurement
QUOTE_LINES = 20
QUOTE_CLIENTS = 1  # the quote targets are latencies: one shopper's quote on an otherwise idle server
STOCK = 10_000_000
TOKEN_TTL = 4 * 3600
# Placements schedule RQ jobs and tokens are checked through a Redis cache: a database of the run's own.
REDIS_URL = os.environ.get("BENCH_CHECKOUT_REDIS_URL", "redis://127.0.0.1:6379/12")


@dataclass(frozen=True)
class Goal:
    scenario: str
    unit: str
    min_rate: float | None = None
    max_p99_ms: float | None = None

    def check(self, r: harness.ScenarioResult, backend: str) -> dict:
        parts, met = [], r.errors == 0 and r.ok > 0
        if self.min_rate is not None:
            met &= r.requests_per_s >= self.min_rate
            parts.append(f"{r.requests_per_s:,.1f} {self.unit}/s (target >= {self.min_rate:,.0f})")
        if self.max_p99_ms is not None:
            met &= r.p99_ms < self.max_p99_ms
            parts.append(f"p99 {r.p99_ms:.1f} ms (target < {self.max_p99_ms:.0f})")
        if r.errors:
            parts.append(f"{r.errors} errors")
        if backend != "postgres":
            parts.append("targets are set for PostgreSQL")
        return {"scenario": r.name, "met": bool(met), "detail": ", ".join(parts)}


GOALS = [
    Goal("checkout", "checkouts", min_rate=30),
    Goal("place", "orders", min_rate=250, max_p99_ms=250),
    Goal("quote20", "quotes", max_p99_ms=30),
    Goal("quote20+coupons", "quotes", max_p99_ms=30),
]


# ---- the data -------------------------------------------------------------------------------


@dataclass
class Shopper:
    user_id: int
    token: str
    address_id: int
    line_ids: list[int] = field(default_factory=list)

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Placer:
    """One placement client: its shoppers' prepared line pairs, used up in order."""

    pairs: list[tuple[Shopper, list[int]]]
    owner: Shopper  # re-adds `skus` to this shopper's cart (untimed) once the pairs run out
    skus: list[int]
    readds: int = 0


@dataclass
class Shop:
    checkout: Shopper
    checkout_skus: list[int]
    placers: list[Placer]
    quoters: list[Shopper]
    coupon_quoters: list[Shopper]
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0


BRANDS = [  # slug, name, (fee, free_above) or None
    ("lumiere", "Lumière Beauty", (1000, 29900)),
    ("peak", "Peak Outdoor", (1200, None)),
    ("chashe", "Chashe 茶舍", (800, 9900)),
    ("nordhaus", "Nordhaus Home", None),
    ("kite", "Kite & Co", (1000, 49900)),
    ("mochi", "Mochi Snacks", (600, 19900)),
]
CATEGORIES = {"Beauty": ["Skincare", "Makeup"], "Outdoor": ["Jackets", "Shoes"], "Food": ["Tea", "Snacks"]}


class _Seeder:
    def __init__(self, session, secret: str):
        self.session, self.secret = session, secret
        self.n_products = self.n_skus = 0

    def staff(self):
        from mall.catalog import taxonomy
        from mall.checkout.services import set_shipping_policy
        from mall.identity import services as identity
        from mall.identity.roles import Actor, Role

        s, password = self.session, secrets.token_hex(16)
        admin = identity.bootstrap_platform_admin(s, email="platform@bench.invalid", name="Bench", password=password)
        self.platform = Actor(admin.id, Role.PLATFORM_ADMIN)
        self.leaves = []
        for root, children in CATEGORIES.items():
            parent = taxonomy.create_category(s, actor=self.platform, name=root)
            self.leaves += [taxonomy.create_category(s, actor=self.platform, name=c, parent_id=parent.id).id
                            for c in children]  # fmt: skip
        self.roots = sorted({int(path.strip("/").split("/")[0]) for path in self._paths()})
        self.brands, self.admins = [], []
        for slug, name, shipping in BRANDS:
            brand = taxonomy.create_brand(s, actor=self.platform, slug=slug, name=name)
            user = identity.create_staff(s, actor=self.platform, role=Role.BRAND_ADMIN, name=f"{name} admin",
                                         email=f"admin@{slug}.bench.invalid", password=password, brand_id=brand.id)  # fmt: skip
            actor = Actor(user.id, Role.BRAND_ADMIN, brand.id)
            if shipping:
                set_shipping_policy(s, actor=actor, brand_id=brand.id, fee=shipping[0], free_above=shipping[1])
            self.brands.append(brand.id)
            self.admins.append(actor)

    def _paths(self):
        import sqlalchemy as sa

        from mall.catalog.models import Category

        return self.session.scalars(sa.select(Category.path).where(Category.id.in_(self.leaves))).all()

    def product(self, brand: int, *, skus: int, price: int, category: int | None = None) -> tuple[int, list[int]]:
        """A published product of brand index `brand` with `skus` SKUs; returns (product id, SKU ids)."""
        from mall.catalog import services as catalog

        self.n_products += 1
        n, actor = self.n_products, self.admins[brand]
        product = catalog.create_product(
            self.session, actor=actor, brand_id=self.brands[brand], currency="CNY",
            category_id=category or self.leaves[n % len(self.leaves)], title=f"{BRANDS[brand][1]} item {n}",
            subtitle="bench", images=[f"https://img.bench.invalid/{n}/0.jpg"], tier="profit",
            skus=[{"specs": {"size": f"S{i}"}, "price": price + 100 * i, "list_price": price + 100 * i + 1000,
                   "stock": STOCK, "weight_grams": 300} for i in range(skus)],
        )  # fmt: skip
        catalog.set_product_status(self.session, actor=actor, product_id=product.id, status="active")
        self.n_skus += skus
        return product.id, [sku.id for sku in product.skus]

    def shopper(self, name: str) -> Shopper:
        from mall.identity import services as identity
        from mall.identity import tokens
        from mall.identity.roles import Role

        user = identity.dev_login(self.session, role=Role.SHOPPER, name=name, brand_id=None)
        address = identity.save_address(self.session, user_id=user.id, recipient="Li Lei", phone="13800000000",
                                        province="Zhejiang", city="Hangzhou", district="Xihu",
                                        detail="1 West Lake Road", postal_code="310000", is_default=True)  # fmt: skip
        token, _ = tokens.issue(user, secret=self.secret, ttl_seconds=TOKEN_TTL)
        return Shopper(user.id, token, address.id)

    def add_lines(self, shopper: Shopper, sku_ids: list[int], quantities=None) -> list[int]:
        """Through the cart service: lines as the HTTP route makes them."""
        from mall.attribution import ORGANIC
        from mall.cart import services as cart

        ids = [cart.add_line(self.session, user_id=shopper.user_id, sku_id=sku, quantity=q, source=ORGANIC)
               for sku, q in zip(sku_ids, quantities or [1] * len(sku_ids), strict=True)]  # fmt: skip
        shopper.line_ids += ids
        return ids

    def fill_cart(self, shopper: Shopper, sku_ids: list[int]) -> list[int]:
        """A full cart in three statements (the placement scenario prepares tens of thousands of lines)."""
        import sqlalchemy as sa

        from mall import clock
        from mall.cart import services as cart
        from mall.cart.models import Cart, CartLine

        the_cart, now = cart.cart_for(self.session, shopper.user_id), clock.now()
        rows = [{"cart_id": the_cart.id, "sku_id": sku, "quantity": 1, "source": {"type": "organic"},
                 "created_at": now, "updated_at": now} for sku in sku_ids]  # fmt: skip
        self.session.execute(sa.insert(CartLine.__table__), rows)
        self.session.execute(sa.update(Cart).where(Cart.id == the_cart.id)
                             .values(line_count=len(rows), version=Cart.version + 1, last_activity_at=now))  # fmt: skip
        by_sku = dict(
            self.session.execute(sa.select(CartLine.sku_id, CartLine.id).filter_by(cart_id=the_cart.id)).all()
        )
        ids = [by_sku[sku] for sku in sku_ids]
        shopper.line_ids += ids
        return ids

    def coupons(self, holders: list[Shopper], quote_products: dict[int, list[int]]) -> int:
        """Ten templates over the platform slot and five brand slots; each holder gets one of each."""
        from mall.promotions.coupons import services as coupons

        b = self.admins
        specs = [  # (actor or None for platform, fields)
            (None, dict(name="满500减50", value_type="threshold", threshold=50000, amount=5000)),
            (None, dict(name="全场9折 最高减80", value_type="percent", percent_bp=1000, cap=8000)),
            (None, dict(name="全场包邮", value_type="free_shipping")),
            (b[0], dict(name="立减20", value_type="fixed", amount=2000)),
            (b[0], dict(name="满300减40", value_type="threshold", threshold=30000, amount=4000)),
            (b[1], dict(name="品类85折", value_type="percent", percent_bp=1500, cap=6000, scope_type="categories",
                        scope_ids=self.roots[:2])),
            (b[1], dict(name="店铺包邮", value_type="free_shipping")),
            (b[2], dict(name="指定商品满200减30", value_type="threshold", threshold=20000, amount=3000,
                        scope_type="products", scope_ids=quote_products[2][:2])),
            (b[3], dict(name="立减15 (特价除外)", value_type="fixed", amount=1500,
                        excluded_product_ids=quote_products[3][:1])),
            (b[4], dict(name="满2000减100", value_type="threshold", threshold=200000, amount=10000)),  # out of reach
        ]  # fmt: skip
        held = 0
        for actor, fields in specs:
            template = coupons.create_template(
                self.session, actor=actor or self.platform, brand_id=actor.brand_id if actor else None,
                currency="CNY", valid_days=30, **fields,
            )  # fmt: skip
            for shopper in holders:
                held += (
                    coupons.issue(self.session, template=template, user_id=shopper.user_id, source="claim") is not None
                )
        return held


def seed(database_url: str, redis_url: str, *, placers: int, orders_capacity: int) -> Shop:
    from api.extensions import db
    from mall import events

    started = time.perf_counter()
    with harness.app_engine(database_url, redis_url):
        session = db.session
        seeder = _Seeder(session, harness.SECRET_KEY)
        seeder.staff()

        def commit():
            session.commit()
            events.discard(session)  # nothing for the (absent) workers: seeding schedules no jobs

        commit()
        # Whole checkouts: one shopper, ten SKUs of one product, each checkout orders one.
        _, checkout_skus = seeder.product(0, skus=10, price=5900)
        checkout = seeder.shopper("checkout-loop")
        # Quotes: 20 lines, 4 per brand over brands 0-4, prices 39-299 CNY, quantities 1-2.
        quote_products: dict[int, list[int]] = {}
        quote_skus = []
        for brand in range(5):
            for k in range(4):
                product_id, skus = seeder.product(brand, skus=1, price=3900 + 2600 * ((brand * 4 + k) % 11))
                quote_products.setdefault(brand, []).append(product_id)
                quote_skus += skus
        quantities = [1 + (i % 3 == 0) for i in range(QUOTE_LINES)]
        quoters, coupon_quoters = [], []
        for i in range(QUOTE_CLIENTS):
            quoters.append(seeder.shopper(f"quote-{i}"))
            seeder.add_lines(quoters[-1], quote_skus, quantities)
            coupon_quoters.append(seeder.shopper(f"quote-coupons-{i}"))
            seeder.add_lines(coupon_quoters[-1], quote_skus, quantities)
        commit()
        held = seeder.coupons(coupon_quoters, quote_products)
        commit()
        placing, lines, placer_shoppers = prepare_placers(seeder, commit, placers=placers,
                                                          orders_capacity=orders_capacity)  # fmt: skip
        _analyze(session)
    shop = Shop(checkout, checkout_skus, placing, quoters, coupon_quoters)
    shop.counts = {"brands": len(BRANDS), "products": seeder.n_products, "skus": seeder.n_skus,
                   "shoppers": 1 + 2 * QUOTE_CLIENTS + placer_shoppers, "prepared_lines": lines,
                   "prepared_orders": lines // LINES_PER_ORDER, "held_coupons": held}  # fmt: skip
    shop.seconds = time.perf_counter() - started
    return shop


def prepare_placers(seeder: _Seeder, commit, *, placers: int, orders_capacity: int,
                    name: str = "placer") -> tuple[list[Placer], int, int]:  # fmt: skip
    """Per client, 50 SKUs of each of two brands that no other client (nor another call) orders, and enough
    shoppers with full carts over those SKUs to cover `orders_capacity` orders: (placers, lines, shoppers)."""
    per_cart = CART_LINES // LINES_PER_ORDER
    shoppers_each = max(1, math.ceil(orders_capacity / placers / per_cart))
    placing, lines = [], 0
    for c in range(placers):
        brand_a, brand_b = c % len(BRANDS), (c + 1) % len(BRANDS)
        skus_a = [sku for _ in range(5) for sku in seeder.product(brand_a, skus=10, price=1900 + 100 * c)[1]]
        skus_b = [sku for _ in range(5) for sku in seeder.product(brand_b, skus=10, price=2900 + 100 * c)[1]]
        ordered = [sku for pair in zip(skus_a, skus_b, strict=True) for sku in pair]
        pairs = []
        for n in range(shoppers_each):
            shopper = seeder.shopper(f"{name}-{c}-{n}")
            ids = seeder.fill_cart(shopper, ordered)
            pairs += [(shopper, ids[i : i + LINES_PER_ORDER]) for i in range(0, len(ids), LINES_PER_ORDER)]
            lines += len(ids)
        placing.append(Placer(pairs[::-1], pairs[0][0], ordered[:LINES_PER_ORDER]))
        commit()
    return placing, lines, placers * shoppers_each


def _analyze(session) -> None:
    import sqlalchemy as sa

    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        with session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        session.execute(sa.text("ANALYZE"))
        session.commit()


# ---- the scenarios --------------------------------------------------------------------------


def _key() -> dict:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _line_of(cart: dict, sku_id: int) -> int:
    return next(line["id"] for line in cart["lines"] if line["sku_id"] == sku_id)


def checkout_script(s: Shopper, skus: list[int]):
    """One shopper's whole checkouts in a loop, each of a random SKU of `skus` (bench/guides.py runs it too)."""

    def script(index, rng):
        while True:
            sku = rng.choice(skus)
            cart = yield flows.Request("POST", f"{API}/cart/lines", {"sku_id": sku, "quantity": 1}, s.auth)
            line = _line_of(cart.json(), sku)
            quote = yield flows.Request("POST", f"{API}/checkout/quote", {"line_ids": [line], "address_id": s.address_id},
                                        s.auth)  # fmt: skip
            payable = quote.json()["totals"]["payable"]
            body = {"line_ids": [line], "address_id": s.address_id, "expected_payable": payable}
            order = yield flows.Request("POST", f"{API}/orders", body, {**s.auth, **_key()}, expect=(201,))
            order_id = order.json()["id"]
            paid = yield flows.Request("POST", f"{API}/orders/{order_id}/pay", None, {**s.auth, **_key()})
            assert paid.json()["status"] == "succeeded", paid.body
            yield flows.DONE

    return script


def place_script(placers: list[Placer], extra: dict | None = None):
    """Each client places its prepared line pairs (`extra`: more of the body, e.g. points to pay with)."""

    def script(index, rng):
        placer = placers[index]
        while placer.pairs:
            shopper, line_ids = placer.pairs.pop()  # used up even if the request fails: never ordered twice
            body = {"line_ids": line_ids, "address_id": shopper.address_id, **(extra or {})}
            yield flows.Request("POST", f"{API}/orders", body, {**shopper.auth, **_key()}, expect=(201,))
            yield flows.DONE
        owner = placer.owner  # out of prepared lines: re-add two (untimed), then place them (timed)
        while True:
            line_ids = []
            for sku in placer.skus:
                cart = yield flows.Request("POST", f"{API}/cart/lines", {"sku_id": sku}, owner.auth, timed=False)
                line_ids.append(_line_of(cart.json(), sku))
            placer.readds += 1
            body = {"line_ids": line_ids, "address_id": owner.address_id, **(extra or {})}
            yield flows.Request("POST", f"{API}/orders", body, {**owner.auth, **_key()}, expect=(201,))
            yield flows.DONE

    return script


def quote_script(shoppers: list[Shopper]):
    def script(index, rng):
        s = shoppers[index % len(shoppers)]
        body = {"line_ids": s.line_ids, "address_id": s.address_id}
        while True:
            yield flows.Request("POST", f"{API}/checkout/quote", body, s.auth)
            yield flows.DONE

    return script


def livez(name: str = "livez") -> harness.Scenario:
    return harness.Scenario(name, "GET /livez", lambda rng: harness.RandomPaths(lambda r: "/livez", rng))


def checkout_flow(name: str, shopper: Shopper, skus: list[int], note: str = "") -> flows.Flow:
    """The whole-checkout loop of one shopper as a scenario (one client)."""
    return flows.Flow(name, f"add to cart, quote, place, pay offline; per checkout{note}", checkout_script(shopper, skus),
                      unit="checkout")  # fmt: skip


def scenarios(shop: Shop, concurrency: int) -> list[tuple[object, int]]:
    """(scenario, clients): harness.Scenario for GETs, flows.Flow for scripted clients."""
    return [
        (livez(), concurrency),
        (checkout_flow("checkout@1", shop.checkout, shop.checkout_skus), 1),
        (flows.Flow(f"place@{concurrency}", "POST /orders, 2 lines of 2 brands, distinct SKUs per client",
                    place_script(shop.placers), unit="order"), concurrency),
        (flows.Flow(f"quote20@{QUOTE_CLIENTS}", "POST /checkout/quote, 20 lines, 5 brands, no coupons",
                    quote_script(shop.quoters), unit="quote"), QUOTE_CLIENTS),
        (flows.Flow(f"quote20+coupons@{QUOTE_CLIENTS}", "the same, 10 held coupons, best combination searched",
                    quote_script(shop.coupon_quoters), unit="quote"), QUOTE_CLIENTS),
    ]  # fmt: skip


# ---- checks before timing -------------------------------------------------------------------


def _call(base_url: str, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base_url}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def checkout_once(base_url: str, s: Shopper, sku: int) -> dict:
    """One whole checkout of `sku` by `s`, untimed, each answer checked; returns the order placed (and paid)."""
    status, cart = _call(base_url, "POST", f"{API}/cart/lines", {"sku_id": sku}, s.auth)
    assert status == 200, (status, cart)
    line = _line_of(cart, sku)
    status, quote = _call(base_url, "POST", f"{API}/checkout/quote", {"line_ids": [line]}, s.auth)
    assert status == 200 and not quote["problems"], (status, quote)
    body = {"line_ids": [line], "address_id": s.address_id, "expected_payable": quote["totals"]["payable"]}
    status, order = _call(base_url, "POST", f"{API}/orders", body, {**s.auth, **_key()})
    assert status == 201 and order["payable_total"] == quote["totals"]["payable"], (status, order)
    status, paid = _call(base_url, "POST", f"{API}/orders/{order['id']}/pay", None, {**s.auth, **_key()})
    assert status == 200 and paid["status"] == "succeeded", (status, paid)
    return order


def preflight(base_url: str, shop: Shop) -> dict:
    """The flows work and the data is what the scenarios promise, before anything is timed."""
    order = checkout_once(base_url, shop.checkout, shop.checkout_skus[0])

    q = shop.quoters[0]
    status, plain = _call(base_url, "POST", f"{API}/checkout/quote", {"line_ids": q.line_ids, "address_id": q.address_id},
                          q.auth)  # fmt: skip
    assert status == 200 and len(plain["lines"]) == QUOTE_LINES and not plain["problems"], (status, plain)
    assert len(plain["brands"]) == 5 and not plain["coupons"], plain
    c = shop.coupon_quoters[0]
    status, best = _call(base_url, "POST", f"{API}/checkout/quote", {"line_ids": c.line_ids, "address_id": c.address_id},
                         c.auth)  # fmt: skip
    assert status == 200 and len(best["lines"]) == QUOTE_LINES, (status, best)
    usable = [x for x in best["coupons"] if x["usable"]]
    assert len(best["coupons"]) == 10 and len(usable) == 9 and len(best["applied_coupon_ids"]) >= 3, best
    return {"checkout_payable": order["payable_total"], "quote_payable": plain["totals"]["payable"],
            "coupon_quote_payable": best["totals"]["payable"], "coupons_applied": best["applied_coupon_ids"],
            "coupon_discount": best["totals"]["discounts"]}  # fmt: skip


# ---- the bench's Redis database --------------------------------------------------------------


@contextlib.contextmanager
def spare_redis(url: str):
    """The run's own Redis database: local, empty when the run starts, emptied when it ends (even on
    error). Not --redis-url's database, which other suites share: job ids (order-timeout-<order id>) and
    the token cache (auth:user:<user id>) are keyed by ids that every throw-away database reuses, so two
    runs on one Redis database would read each other's entries."""
    import redis
    from redis.connection import parse_url

    host = parse_url(url).get("host", "")
    if host not in harness.LOCAL_HOSTS:
        raise SystemExit(f"bench: refusing to use Redis on {host!r}; only 127.0.0.1 is allowed")
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        if client.dbsize():
            raise SystemExit(f"bench: {url} is not empty; the checkout suite needs a spare Redis database "
                             "(set BENCH_CHECKOUT_REDIS_URL to another one, or empty this one)")  # fmt: skip
        try:
            yield url
        finally:
            client.flushdb()
    finally:
        client.close()


# ---- the suite ------------------------------------------------------------------------------


def _wanted(name: str, wanted: list[str] | None) -> bool:
    return not wanted or name in wanted or name.split("@")[0] in wanted


def measure(scenario, clients: int, server: harness.Server, opts, backend: str, log=print) -> harness.ScenarioResult:
    """One scenario (a harness.Scenario of GETs or a flows.Flow) at `clients`, once the machine is quiet; logged."""
    busy_before = harness.wait_for_quiet(getattr(opts, "quiet_wait", 0), log=log)
    if isinstance(scenario, flows.Flow):
        result = flows.measure(scenario, server, concurrency=clients, warmup=opts.warmup, duration=opts.duration)
    else:
        result = harness.measure(scenario, server, concurrency=clients, warmup=opts.warmup, duration=opts.duration)
        result.extra["unit"] = "request"
    result.extra["machine_busy_before_pct"] = round(busy_before, 1)
    unit = result.extra["unit"]
    log(f"  [{backend}] {result.name:<18} {result.requests_per_s:>8,.1f} {unit}s/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}")  # fmt: skip
    for sample in result.extra.get("error_samples", []):
        log(f"      {sample}")
    return result


def run(backend: str, opts, log=print) -> dict:
    placers = opts.concurrency
    capacity = int(PLACE_CAPACITY * (opts.warmup + opts.duration))
    config = harness.ServerConfig(workers=opts.workers, worker_class=opts.worker_class, threads=opts.threads)
    results, checks = [], []
    with (
        spare_redis(REDIS_URL) as redis_url,
        harness.throwaway_database(backend, NAME, pg_admin_url=opts.pg_admin_url) as database_url,
    ):
        started = time.perf_counter()
        harness.migrate(database_url, redis_url)
        migrated = time.perf_counter() - started
        shop = seed(database_url, redis_url, placers=placers, orders_capacity=capacity)
        counts = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in shop.counts.items())
        log(f"  [{backend}] schema by migrations in {migrated:.1f}s; seeded {counts} in {shop.seconds:.1f}s")
        server = harness.Server(config, database_url=database_url, redis_url=redis_url)
        server.env.update(PAYMENT_GATEWAY="offline", MALL_ENV="production", SECRET_KEY=harness.SECRET_KEY)
        with server:
            try:
                checked = preflight(server.base_url, shop)
            except AssertionError:
                log(f"  [{backend}] preflight failed; gunicorn's log ends with:\n{server.log_tail()}")
                raise
            log(f"  [{backend}] preflight: a whole checkout, quotes of 20 lines; best coupons "
                f"{checked['coupons_applied']} take {checked['coupon_discount']} off")  # fmt: skip
            for scenario, clients in scenarios(shop, opts.concurrency):
                if _wanted(scenario.name, opts.scenarios):
                    results.append(measure(scenario, clients, server, opts, backend, log))
        readds = sum(p.readds for p in shop.placers)
        for r in results:
            if r.name.startswith("place@"):
                r.extra["readds"] = readds
                if readds:
                    log(f"  [{backend}] placement ran out of prepared lines: {readds} untimed re-adds")
    by_name = {r.name.split("@")[0]: r for r in results}
    checks = [goal.check(by_name[goal.scenario], backend) for goal in GOALS if goal.scenario in by_name]
    return {
        "suite": NAME,
        "backend": backend,
        "seeded": shop.counts,
        "seed_seconds": round(shop.seconds, 1),
        "preflight": checked,
        "server": config.describe(),
        "concurrency": opts.concurrency,
        "results": [harness.as_dict(r) for r in results],
        "targets": checks,
    }
