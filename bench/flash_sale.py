"""Flash-sale suite: a purchase storm on one flash item, checked against the database afterwards.

Seeds a throw-away PostgreSQL database built by the project's migrations, through the domain
services: a platform admin, a brand, a product whose SKU holds ample stock, SHOPPERS shoppers with
one address each, and a flash sale that is live by the real clock (it started a minute ago) with a
storm item (QUOTA units at the flash price, PER_SHOPPER_LIMIT per shopper) and a small preflight
item. Production hides /auth/dev, so bearer tokens are minted with `mall.identity.tokens.issue` and
the run's SECRET_KEY before gunicorn starts. Then, against one gunicorn (MALL_ENV=production,
REDIS_URL on a spare Redis database of its own, BENCH_FLASH_REDIS_URL, empty at the start and
emptied at the end):

  livez     GET /livez at STORM_CONCURRENCY clients for --warmup + --duration seconds: the same
            server's trivial endpoint, measured in the same run, the yardstick of the target
  purchase  the storm: SHOPPERS x ATTEMPTS_EACH purchase attempts, shuffled, each with a fresh
            Idempotency-Key, sent by STORM_CONCURRENCY keep-alive clients until all are answered;
            most are refusals (sold_out, limit_reached) once the quota is gone. req/s is all the
            attempts over the storm's wall time; p50/p99 cover every attempt. The log also splits
            the storm: how long the QUOTA units took to go (each admission writes an order while it
            holds the SKU and item rows, so admissions queue) and the refusals/s after that.

Each measurement first waits up to --quiet-wait seconds for the machine to be idle (other work takes
CPU from the server under test); the table's last column says how busy it was anyway. The server is
the CLI's (--workers, --threads); the storm always uses STORM_CONCURRENCY clients. PostgreSQL only:
on SQLite the suite says so and measures nothing.

Afterwards the database is the judge, not the HTTP statuses: admitted orders (flash_orders, orders
with a line of the SKU, flash_items.sold, the SKU's stock), oversold units and per-shopper limit
violations are counted from the tables, and `services.reconcile` checks that the Redis counters
agree with the database. Target (PostgreSQL): admitted == QUOTA, nothing oversold, no limit
violation, no unexpected status, counters agree, purchase req/s >= TARGET_RATIO x livez req/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from bench import harness

NAME = "flash_sale"
DESCRIPTION = "purchase storm on one flash item: admissions checked in the database, req/s vs /livez"

SHOPPERS = 2_000
ATTEMPTS_EACH = 10
QUOTA = 500
PER_SHOPPER_LIMIT = 1
STORM_CONCURRENCY = 64
TARGET_RATIO = 0.4
PREFLIGHT_QUOTA = 5
STOCK = 100_000
TOKEN_TTL = 4 * 3600
SEED = 20261212
REDIS_URL = os.environ.get("BENCH_FLASH_REDIS_URL", "redis://127.0.0.1:6379/11")
API = "/api/v1"


@dataclass
class Shopper:
    user_id: int
    token: str
    address_id: int


@dataclass
class Sale:
    sale_id: int
    item_id: int
    sku_id: int
    preflight_item_id: int
    shoppers: list[Shopper]
    preflight: list[Shopper]
    seconds: float = 0.0

    def purchase_path(self, item_id: int | None = None) -> str:
        return f"{API}/flash-sales/{self.sale_id}/items/{item_id or self.item_id}/purchase"


# ---- seeding ---------------------------------------------------------------------------------


def seed(database_url: str, redis_url: str) -> Sale:
    """Everything through the services, in the throw-away database, before gunicorn starts."""
    import redis

    from api.extensions import db
    from mall import clock, events
    from mall.catalog import services as catalog
    from mall.catalog import taxonomy
    from mall.identity import services as identity
    from mall.identity import tokens
    from mall.identity.roles import Actor, Role
    from mall.promotions.flash_sale import services as flash
    from mall.promotions.flash_sale.admission import Gate

    started = time.perf_counter()
    with harness.app_engine(database_url, redis_url):
        s = db.session

        def commit():
            s.commit()
            events.discard(s)  # nothing for the (absent) workers

        admin = identity.bootstrap_platform_admin(s, email="platform@bench.invalid", name="Bench",
                                                  password=secrets.token_hex(16))  # fmt: skip
        platform = Actor(admin.id, Role.PLATFORM_ADMIN)
        brand = taxonomy.create_brand(s, actor=platform, slug="miaosha", name="Miaosha 秒杀")
        manager = identity.create_staff(s, actor=platform, role=Role.BRAND_ADMIN, name="Flash admin",
                                        email="admin@miaosha.bench.invalid", password=secrets.token_hex(16),
                                        brand_id=brand.id)  # fmt: skip
        merchant = Actor(manager.id, Role.BRAND_ADMIN, brand.id)
        category = taxonomy.create_category(s, actor=platform, name="Tea")
        product = catalog.create_product(
            s, actor=merchant, brand_id=brand.id, currency="CNY", category_id=category.id, title="Longjing 明前龙井 250g",
            subtitle="bench", images=["https://img.bench.invalid/longjing.jpg"], tier="profit",
            skus=[{"specs": {"size": size}, "price": 19900, "list_price": 25900, "stock": STOCK,
                   "weight_grams": 300} for size in ("250g", "100g")],
        )  # fmt: skip
        catalog.set_product_status(s, actor=merchant, product_id=product.id, status="active")
        sku, preflight_sku = (x.id for x in product.skus)
        commit()

        def shopper(name: str) -> Shopper:
            user = identity.dev_login(s, role=Role.SHOPPER, name=name, brand_id=None)
            address = identity.save_address(s, user_id=user.id, recipient="Li Lei", phone="13800000000",
                                            province="Zhejiang", city="Hangzhou", district="Xihu",
                                            detail="1 West Lake Road", postal_code="310000", is_default=True)  # fmt: skip
            token, _ = tokens.issue(user, secret=harness.SECRET_KEY, ttl_seconds=TOKEN_TTL)
            return Shopper(user.id, token, address.id)

        shoppers = []
        for i in range(SHOPPERS):
            shoppers.append(shopper(f"storm-{i}"))
            if i % 250 == 249:
                commit()
        preflight = [shopper(f"preflight-{i}") for i in range(2)]
        commit()

        now = clock.now()
        gate = Gate(redis.Redis.from_url(redis_url))
        sale = flash.schedule(
            s, actor=merchant, brand_id=brand.id, name="Double 12 秒杀", starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=2), payment_minutes=15,
            items=[{"sku_id": sku, "flash_price": 9900, "quota": QUOTA, "per_shopper_limit": PER_SHOPPER_LIMIT},
                   {"sku_id": preflight_sku, "flash_price": 3900, "quota": PREFLIGHT_QUOTA, "per_shopper_limit": 1}],
        )  # fmt: skip
        item, preflight_item = sale.items
        result = Sale(sale.id, item.id, sku, preflight_item.id, shoppers, preflight)
        commit()
        for it in (item, preflight_item):  # the counters ready before the first buyer, as schedule() arranges
            gate.load(item_id=it.id, remaining=it.quota, buyers={}, only_if_missing=True)
        gate.client.close()
        with s.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    result.seconds = time.perf_counter() - started
    return result


# ---- HTTP helpers (preflight) ------------------------------------------------------------------


def _call(base_url: str, method: str, path: str, body=None, headers=None) -> tuple[int, dict, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base_url}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), dict(err.headers)


def preflight(base_url: str, sale: Sale) -> None:
    """The purchase endpoint behaves as promised before anything is timed (on the preflight item)."""
    a, b = sale.preflight
    path = sale.purchase_path(sale.preflight_item_id)

    def buy(who: Shopper, key: str | None, address: int | None = None, token: str | None = None):
        headers = {"Authorization": f"Bearer {token or who.token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return _call(base_url, "POST", path, {"address_id": address or who.address_id}, headers)

    key = uuid.uuid4().hex
    status, first, _ = buy(a, key)
    assert status == 201 and first["status"] == "pending_payment", (status, first)
    assert first["sub_orders"][0]["lines"][0]["unit_price"] == 3900, first
    status, again, headers = buy(a, key)
    assert status == 201 and again == first and headers.get("Idempotent-Replayed") == "true", (status, again)
    status, other, _ = buy(a, key, address=b.address_id)
    assert status == 422 and other["code"] == "idempotency.key_reused", (status, other)
    status, limit, _ = buy(a, uuid.uuid4().hex)
    assert status == 409 and limit["code"] == "flash_sale.limit_reached", (status, limit)
    status, missing, _ = buy(b, None)
    assert status == 400 and missing["code"] == "idempotency.key_missing", (status, missing)
    status, foreign, _ = buy(b, uuid.uuid4().hex, address=a.address_id)
    assert status == 404 and foreign["code"] == "address.not_found", (status, foreign)
    status, bad, _ = buy(b, uuid.uuid4().hex, token=b.token[:-4] + "AAAA")
    assert status == 401, (status, bad)
    status, sale_view, _ = _call(base_url, "GET", f"{API}/flash-sales/{sale.sale_id}")
    assert status == 200 and sale_view["phase"] == "live", sale_view
    remaining = {i["id"]: i["remaining"] for i in sale_view["items"]}
    assert remaining == {sale.item_id: QUOTA, sale.preflight_item_id: PREFLIGHT_QUOTA - 1}, remaining


# ---- the storm: a fixed number of POSTs over keep-alive connections ------------------------------


class _Storm:
    def __init__(self, port: int, attempts: list[tuple[Shopper, str]], request_timeout: float):
        self.port, self.request_timeout = port, request_timeout
        self.pending = iter(attempts)
        self.total = len(attempts)
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.answered = 0
        self.last_admitted, self.before_last_admitted = 0.0, 0  # when the last unit went, answers by then
        self.connections: set[_Post] = set()
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        self.head = (
            f" HTTP/1.1\r\nHost: {harness.HOST}:{port}\r\nUser-Agent: mall-bench\r\nAccept: application/json\r\n"
        )

    def request(self, attempt: tuple[Shopper, str]) -> bytes:
        shopper, path = attempt
        body = b'{"address_id": %d}' % shopper.address_id
        return (f"POST {path}{self.head}Authorization: Bearer {shopper.token}\r\n"
                f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip

    def next(self):
        return next(self.pending, None)

    def record(self, started: float, status: int, body: bytes) -> None:
        now = time.perf_counter()
        self.latencies.append(now - started)
        if status == 201:
            self.last_admitted, self.before_last_admitted = now, self.answered + 1
        self.statuses[str(status)] += 1
        if status == 409:
            at = body.find(b'"code":"')
            self.codes[body[at + 8 : body.index(b'"', at + 8)].decode() if at >= 0 else "?"] += 1
        self._answered()

    def fail(self, kind: str) -> None:
        self.failures[kind] += 1
        self._answered()

    def _answered(self) -> None:
        self.answered += 1
        if self.answered >= self.total and not self.done.done():
            self.done.set_result(None)

    def open(self, first, delay: float = 0.0) -> None:
        self.loop.create_task(self._connect(first, delay))

    async def _connect(self, first, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        try:
            await self.loop.create_connection(lambda: _Post(self, first), harness.HOST, self.port)
        except OSError:
            self.fail("connect_error")  # the attempt is lost (counted), the client carries on
            nxt = self.next()
            if nxt is not None:
                self.open(nxt, delay=0.05)

    async def watchdog(self) -> None:
        while not self.done.done():
            await asyncio.sleep(0.25)
            now = time.perf_counter()
            for conn in list(self.connections):
                if conn.busy and now - conn.started > self.request_timeout:
                    conn.timed_out = True
                    conn.transport.abort()


class _Post(asyncio.Protocol):
    """One keep-alive client: sends the next attempt as soon as the previous response is complete."""

    def __init__(self, storm: _Storm, first):
        self.storm, self.attempt = storm, first
        self.transport = None
        self.buf = bytearray()
        self.busy = self.timed_out = False
        self.started = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.storm.connections.add(self)
        self._send()

    def _send(self) -> None:
        self.buf.clear()
        self.busy, self.started = True, time.perf_counter()
        self.transport.write(self.storm.request(self.attempt))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:  # every answer of this app has a Content-Length
            self.transport.abort()
            return
        eol = head.find(b"\r\n", at + 2)
        total = end + 4 + int(head[at + 17 : eol if eol > 0 else len(head)])
        if len(buf) < total:
            return
        self.busy = False
        self.storm.record(self.started, int(head[9:12]), bytes(buf[end + 4 : total]))
        self.attempt = self.storm.next()
        if self.attempt is None:
            self.transport.close()
        elif b"\r\nconnection: close" in head:
            self.transport.close()
            self.storm.open(self.attempt)
            self.attempt = None
        else:
            self._send()

    def connection_lost(self, exc) -> None:
        self.storm.connections.discard(self)
        if self.busy:  # the attempt in flight got no answer: counted as a failure, then carry on
            self.busy = False
            self.storm.fail("timeout" if self.timed_out else "connection_lost")
            self.attempt = self.storm.next()
        if self.attempt is not None:
            self.storm.open(self.attempt, delay=0.01)


def storm(server: harness.Server, attempts: list[tuple[Shopper, str]], *, concurrency: int,
          request_timeout: float = 30.0, time_limit: float = 600.0) -> harness.ScenarioResult:  # fmt: skip
    pids = server.pids()
    holder: dict = {}

    async def main():
        run = _Storm(server.port, attempts, request_timeout)
        holder["cpu0"] = harness.CpuSample.take(pids, server.database)
        holder["started"] = started = time.perf_counter()
        for _ in range(concurrency):
            first = run.next()
            if first is not None:
                run.open(first)
        watchdog = asyncio.ensure_future(run.watchdog())
        try:
            await asyncio.wait_for(run.done, timeout=time_limit)
        finally:
            holder["elapsed"] = time.perf_counter() - started
            holder["cpu1"] = harness.CpuSample.take(pids, server.database)
            watchdog.cancel()
            for conn in list(run.connections):
                conn.transport.abort()
            await asyncio.sleep(0.05)
        holder["run"] = run

    asyncio.run(main())
    run, elapsed, c0, c1 = holder["run"], holder["elapsed"], holder["cpu0"], holder["cpu1"]
    lat = sorted(run.latencies)
    expected = run.statuses["201"] + run.statuses["409"]
    errors = len(lat) - expected + sum(run.failures.values())

    def pct(seconds: float) -> float:
        return round(100 * seconds / elapsed, 1)

    server_s, db_s = c1.server - c0.server, c1.database - c0.database
    return harness.ScenarioResult(
        name="purchase", description=f"POST {API}/flash-sales/<id>/items/<id>/purchase",
        requests_per_s=len(lat) / elapsed, p50_ms=harness.percentile(lat, 50) * 1000,
        p90_ms=harness.percentile(lat, 90) * 1000, p99_ms=harness.percentile(lat, 99) * 1000,
        max_ms=(lat[-1] if lat else 0.0) * 1000, ok=expected, errors=errors,
        statuses={**run.statuses, **run.failures}, duration_s=elapsed, concurrency=concurrency,
        cpu_client_pct=pct(c1.client - c0.client), cpu_server_pct=pct(server_s), cpu_database_pct=pct(db_s),
        cpu_other_pct=max(0.0, pct((c1.machine - c0.machine) - (c1.client - c0.client) - server_s - db_s)),
        cpu_machine_pct=pct(c1.machine - c0.machine),
        cpu_ms_per_request=round(1000 * (server_s + db_s) / max(1, len(lat)), 3),
        extra={"attempts": len(attempts), "refusals": dict(run.codes), **_phases(run, holder["started"], elapsed)},
    )  # fmt: skip


def _phases(run: _Storm, started: float, elapsed: float) -> dict:
    """The storm in two phases: until the last unit is admitted (orders written), and the refusals after."""
    selling = max(0.0, run.last_admitted - started) if run.last_admitted else 0.0
    after = len(run.latencies) - run.before_last_admitted
    return {"selling_s": round(selling, 2), "selling_answers": run.before_last_admitted,
            "after_sold_out_rps": round(after / (elapsed - selling), 1) if elapsed > selling else 0.0}  # fmt: skip


def attempts_for(sale: Sale) -> list[tuple[Shopper, str]]:
    """Every shopper's ATTEMPTS_EACH attempts, shuffled together (a fresh Idempotency-Key each when sent)."""
    path = sale.purchase_path()
    attempts = [(shopper, path) for shopper in sale.shoppers for _ in range(ATTEMPTS_EACH)]
    random.Random(SEED).shuffle(attempts)
    return attempts


# ---- the verdict: the database, then Redis against it --------------------------------------------


@dataclass
class Verdict:
    admitted: int = 0  # active flash orders of the storm item
    orders: int = 0  # orders with a line of the storm SKU
    units: int = 0  # units those orders hold
    sold: int = 0  # flash_items.sold
    stock_taken: int = 0  # the SKU's stock drawn down
    oversold: int = 0
    limit_violations: int = 0  # shoppers holding more than PER_SHOPPER_LIMIT units
    reconcile: dict = field(default_factory=dict)

    @property
    def sound(self) -> bool:
        return (self.admitted == self.orders == self.units == self.sold == self.stock_taken == QUOTA
                and self.oversold == 0 and self.limit_violations == 0 and self.reconcile.get("agree") is True)  # fmt: skip


def verdict(database_url: str, redis_url: str, sale: Sale) -> Verdict:
    import redis
    import sqlalchemy as sa

    from api.extensions import db
    from mall.catalog.models import Sku
    from mall.orders.models import Order, OrderLine
    from mall.promotions.flash_sale import services as flash
    from mall.promotions.flash_sale.admission import Gate
    from mall.promotions.flash_sale.models import FlashItem, FlashOrder

    v = Verdict()
    with harness.app_engine(database_url, redis_url):
        s = db.session
        flash_orders = s.execute(
            sa.select(FlashOrder.user_id, sa.func.sum(FlashOrder.quantity))
            .where(FlashOrder.item_id == sale.item_id, FlashOrder.status == "active").group_by(FlashOrder.user_id)
        ).all()  # fmt: skip
        per_order_user = s.execute(
            sa.select(Order.user_id, sa.func.count(sa.distinct(Order.id)), sa.func.sum(OrderLine.quantity))
            .join(OrderLine, OrderLine.order_id == Order.id).where(OrderLine.sku_id == sale.sku_id)
            .group_by(Order.user_id)
        ).all()  # fmt: skip
        v.admitted = sum(int(q) for _, q in flash_orders)
        v.orders = sum(n for _, n, _ in per_order_user)
        v.units = sum(int(q) for _, _, q in per_order_user)
        v.sold = s.get(FlashItem, sale.item_id).sold
        v.stock_taken = STOCK - s.get(Sku, sale.sku_id).stock
        v.oversold = max(0, max(v.admitted, v.units, v.sold, v.stock_taken) - QUOTA)
        held = Counter({u: int(q) for u, q in flash_orders})
        for u, _, q in per_order_user:
            held[u] = max(held[u], int(q))
        v.limit_violations = sum(1 for q in held.values() if q > PER_SHOPPER_LIMIT)
        client = redis.Redis.from_url(redis_url)
        try:
            v.reconcile = flash.reconcile(s, Gate(client), item_id=sale.item_id)
        finally:
            client.close()
    return v


# ---- a Redis database of our own ---------------------------------------------------------------


@contextlib.contextmanager
def spare_redis(url: str):
    """The run's Redis database: local, empty when we start, emptied when we finish (even on error)."""
    import redis

    host = redis.connection.parse_url(url).get("host", "")
    if host not in harness.LOCAL_HOSTS:
        raise SystemExit(f"bench: refusing to use Redis on {host!r}; only 127.0.0.1 is allowed")
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        if client.dbsize():
            raise SystemExit(f"bench: {url} is not empty; the flash_sale suite needs a spare Redis database "
                             "(set BENCH_FLASH_REDIS_URL to another one)")  # fmt: skip
        try:
            yield url
        finally:
            client.flushdb()
    finally:
        client.close()


# ---- the suite -----------------------------------------------------------------------------------


def run(backend: str, opts, log=print) -> dict:
    config = harness.ServerConfig(workers=opts.workers, worker_class=opts.worker_class, threads=opts.threads)
    report = {"suite": NAME, "backend": backend, "server": config.describe(), "concurrency": STORM_CONCURRENCY,
              "results": [], "targets": []}  # fmt: skip
    if backend != "postgres":
        log(f"  [{backend}] skipped: the flash sale suite runs on PostgreSQL only")
        return report
    with harness.throwaway_database(backend, NAME, pg_admin_url=opts.pg_admin_url) as database_url, \
            spare_redis(REDIS_URL) as redis_url:  # fmt: skip
        started = time.perf_counter()
        harness.migrate(database_url, redis_url)
        migrated = time.perf_counter() - started
        sale = seed(database_url, redis_url)
        log(f"  [{backend}] schema by migrations in {migrated:.1f}s; seeded {len(sale.shoppers):,} shoppers with "
            f"addresses and tokens, flash sale {sale.sale_id} (item {sale.item_id}: {QUOTA} units, "
            f"{PER_SHOPPER_LIMIT} per shopper) in {sale.seconds:.1f}s")  # fmt: skip
        attempts = attempts_for(sale)
        with harness.Server(config, database_url=database_url, redis_url=redis_url) as server:
            preflight(server.base_url, sale)
            quiet = getattr(opts, "quiet_wait", 0)
            busy_before_livez = harness.wait_for_quiet(quiet, log=log)
            livez = harness.measure(
                harness.Scenario("livez", "GET /livez", lambda rng: harness.RandomPaths(lambda r: "/livez", rng)),
                server, concurrency=STORM_CONCURRENCY, warmup=opts.warmup, duration=opts.duration,
            )  # fmt: skip
            log(f"  [{backend}] livez     {livez.requests_per_s:>7,.0f} req/s  p50 {livez.p50_ms:6.2f} ms  "
                f"p99 {livez.p99_ms:6.2f} ms  errors {livez.errors}")  # fmt: skip
            livez.extra["machine_busy_before_pct"] = round(busy_before_livez, 1)
            busy_before_storm = harness.wait_for_quiet(quiet, log=log)
            purchase = storm(server, attempts, concurrency=STORM_CONCURRENCY)
            purchase.extra["machine_busy_before_pct"] = round(busy_before_storm, 1)
            log(f"  [{backend}] purchase  {purchase.requests_per_s:>7,.0f} req/s  p50 {purchase.p50_ms:6.2f} ms  "
                f"p99 {purchase.p99_ms:6.2f} ms  errors {purchase.errors}  ({len(attempts):,} attempts in "
                f"{purchase.duration_s:.1f}s; statuses {dict(sorted(purchase.statuses.items()))}; "
                f"refusals {purchase.extra['refusals']})")  # fmt: skip
            log(f"  [{backend}]           the {QUOTA} units went in {purchase.extra['selling_s']:.1f}s "
                f"({purchase.extra['selling_answers']:,} answers); after that "
                f"{purchase.extra['after_sold_out_rps']:,.0f} refusals/s")  # fmt: skip
        v = verdict(database_url, redis_url, sale)
    ratio = purchase.requests_per_s / livez.requests_per_s if livez.requests_per_s else 0.0
    purchase.extra.update(verdict=vars(v), ratio_to_livez=round(ratio, 3))
    admitted_http = purchase.statuses.get("201", 0)
    for line in (
        f"admitted orders      {v.admitted}  (must be {QUOTA}; orders {v.orders}, units {v.units}, "
        f"flash_items.sold {v.sold}, stock taken {v.stock_taken}, HTTP 201s {admitted_http})",
        f"oversold units       {v.oversold}  (must be 0)",
        f"limit violations     {v.limit_violations}  (must be 0; limit {PER_SHOPPER_LIMIT} per shopper)",
        f"redis vs database    {'agree' if v.reconcile.get('agree') else 'DISAGREE'}  ({v.reconcile})",
        f"purchase             {purchase.requests_per_s:,.0f} req/s, p50 {purchase.p50_ms:.2f} ms, "
        f"p99 {purchase.p99_ms:.2f} ms, errors {purchase.errors}",
        f"livez                {livez.requests_per_s:,.0f} req/s (same server, same run)",
        f"ratio                {ratio:.3f}  (target >= {TARGET_RATIO})",
    ):
        log(f"  [{backend}] {line}")
    met = v.sound and admitted_http == QUOTA and purchase.errors == 0 and livez.errors == 0 and ratio >= TARGET_RATIO
    detail = (f"{len(attempts):,} attempts by {SHOPPERS:,} shoppers for {QUOTA} units at {STORM_CONCURRENCY} "
              f"clients: admitted {v.admitted}, oversold {v.oversold}, limit violations {v.limit_violations}, "
              f"counters {'agree' if v.reconcile.get('agree') else 'disagree'}; {purchase.requests_per_s:,.0f} "
              f"purchase req/s = {ratio:.2f} x livez {livez.requests_per_s:,.0f} req/s (target >= {TARGET_RATIO})"
              + (f"; {purchase.errors} errors" if purchase.errors else ""))  # fmt: skip
    report.update(results=[harness.as_dict(livez), harness.as_dict(purchase)],
                  targets=[{"scenario": "purchase", "met": bool(met), "detail": detail}],
                  shoppers=SHOPPERS, attempts=len(attempts), quota=QUOTA)  # fmt: skip
    return report
