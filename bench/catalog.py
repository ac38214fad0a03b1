"""Catalog suite: shopper listing and detail throughput at N products (100,000 by default).

Seeds a throw-away database built by the project's migrations with a realistic catalog
(12 brands, one suspended; a three-level category tree; mixed tiers and statuses; about
two SKUs a product, some out of stock; publication dates spread over two years), then
measures, against one gunicorn:

  livez       GET /livez: the same server's trivial endpoint, the ceiling of the stack
  list        GET /api/v1/products?limit=20: the first page (prices, availability, brand)
  list-mixed  brand / category / price-range filters, newest / price / sales sorts, and
              cursors followed 0-4 pages deep
  detail      GET /api/v1/products/<random visible id>

The server: gunicorn gthread, 3 workers x 3 threads (the CLI default, as gunicorn.conf.py runs on
2 cores). Measured on the 2-core machine with the same 32 keep-alive clients:
- sync workers close the connection after every response, so every request pays a new TCP
  connection on both sides; /livez reached 600-1,000 req/s against 1,800-3,000 for gthread,
  and the load generator itself needed 3-5 times the CPU.
- gthread keeps connections alive. On a quiet machine (2026-11-25, PostgreSQL) 3 x 3 served list
  1,632 req/s (p99 52.5 ms) and detail 2,161 against 1,410 (61.9 ms) and 1,988 for 2 x 4; an
  earlier comparison on a busy machine had favoured 2 x 4. Threads let a process run Python while
  another request waits on PostgreSQL; more processes than cores + 1 only added context switches.
- Whatever the configuration, gunicorn's own share (HTTP parsing, two sends a response, the
  poller round trip of a kept-alive connection) is about as large as Flask's: the livez row
  is that floor.
"""

from __future__ import annotations

import json
import math
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import harness

NAME = "catalog"
DESCRIPTION = "product list/detail throughput and latency at --products products"
SEED = 20261124

# On PostgreSQL, gunicorn, 32 concurrent clients (the acceptance figures).
TARGETS = [
    harness.Target("list", min_rps=1000, max_p99_ms=100),
    harness.Target("detail", min_rps=1500),
]

BRANDS = [
    ("lumiere", "Lumière Beauty", "Beauty"),
    ("peak", "Peak Outdoor", "Outdoor"),
    ("chashe", "Chashe 茶舍", "Food"),
    ("nordhaus", "Nordhaus Home", "Home"),
    ("kite", "Kite & Co", "Fashion"),
    ("voltic", "Voltic", "Digital"),
    ("bamboo", "Bamboo Kids 竹子", "Fashion"),
    ("aurum", "Aurum Jewellery", "Fashion"),
    ("cedar", "Cedar Kitchen", "Home"),
    ("summit", "Summit Trail", "Outdoor"),
    ("mochi", "Mochi Snacks 麻薯", "Food"),
    ("pixel", "Pixel Lab", "Digital"),  # suspended: its products must never be listed
]
SUSPENDED_SLUGS = {"pixel"}
ROOTS = {
    "Beauty": ["Skincare", "Makeup", "Fragrance", "Hair", "Body"],
    "Outdoor": ["Jackets", "Shoes", "Tents", "Backpacks", "Climbing"],
    "Food": ["Tea", "Snacks", "Coffee", "Grains", "Gifts"],
    "Home": ["Kitchen", "Bedding", "Storage", "Lighting", "Decor"],
    "Fashion": ["Women", "Men", "Kids", "Bags", "Jewellery"],
    "Digital": ["Phones", "Audio", "Wearables", "Cameras", "Accessories"],
}
LEAVES = ["Classic", "New in", "Premium", "Essentials"]
NOUNS = {
    "Beauty": ["Serum", "Cream", "Lipstick", "Cushion", "Toner", "Mask", "Cleanser"],
    "Outdoor": ["Shell Jacket", "Down Vest", "Trail Shoe", "Hiker", "Tent", "Pack", "Harness"],
    "Food": ["Longjing", "Pu'er", "Oolong", "Almond Crisp", "Drip Coffee", "Rice", "Gift Box"],
    "Home": ["Wok", "Duvet", "Storage Box", "Lamp", "Vase", "Knife Set", "Pillow"],
    "Fashion": ["Dress", "Shirt", "Hoodie", "Tote", "Necklace", "Sneaker", "Coat"],
    "Digital": ["Earbuds", "Charger", "Watch", "Camera", "Speaker", "Cable", "Power Bank"],
}
ADJECTIVES = ["Ultralight", "Classic", "Hydrating", "Everyday", "Limited", "Organic", "Pro", "Mini", "Signature"]
SPECS = {
    "Beauty": [{"volume": v} for v in ("15ml", "30ml", "50ml")],
    "Outdoor": [{"colour": c, "size": s} for c in ("black", "olive", "sand") for s in ("S", "M", "L", "XL")],
    "Food": [{"weight": w} for w in ("100g", "250g", "500g")],
    "Home": [{"colour": c} for c in ("white", "grey", "oak")],
    "Fashion": [{"colour": c, "size": s} for c in ("black", "ivory", "navy") for s in ("S", "M", "L")],
    "Digital": [{"colour": c, "storage": s} for c in ("black", "silver") for s in ("64GB", "128GB")],
}
TIERS = [("traffic", 0.2), ("hero", 0.1), ("profit", 0.6), ("identity", 0.1)]
WORDS = [
    *("soft", "light", "fresh", "gentle", "durable", "bright", "quiet", "warm", "crisp", "smooth", "pure", "bold"),
    *("calm", "rich", "clean", "daily", "travel", "gift", "season", "city", "mountain", "garden", "studio", "dawn"),
]


# ---- the data -------------------------------------------------------------------------------


@dataclass
class Catalog:
    """What the scenarios need to know about the seeded data."""

    products: int = 0
    skus: int = 0
    active_brand_ids: list[int] = field(default_factory=list)
    category_ids: list[int] = field(default_factory=list)
    visible_ids: list[int] = field(default_factory=list)  # detail answers 200: not draft, brand active
    seconds: float = 0.0


def _brand_rows(now):
    return [
        {
            "id": i,
            "slug": slug,
            "name": name,
            "logo_url": f"https://img.bench.mall/{slug}/logo.png",
            "story": f"{name} sells in the mall since 2026.",
            "status": "suspended" if slug in SUSPENDED_SLUGS else "active",
            "created_at": now,
            "updated_at": now,
        }
        for i, (slug, name, _root) in enumerate(BRANDS, start=1)
    ]


def _category_rows(now):
    """Six roots, five children each, four leaves under every child: 156 categories."""
    rows, leaves = [], {}
    next_id = 1
    for position, (root, children) in enumerate(ROOTS.items()):
        root_id, next_id = next_id, next_id + 1
        rows.append(dict(id=root_id, parent_id=None, name=root, position=position, path=f"/{root_id}/"))
        for child_pos, child in enumerate(children):
            child_id, next_id = next_id, next_id + 1
            child_path = f"/{root_id}/{child_id}/"
            rows.append(dict(id=child_id, parent_id=root_id, name=child, position=child_pos, path=child_path))
            for leaf_pos, leaf in enumerate(LEAVES):
                leaf_id, next_id = next_id, next_id + 1
                rows.append(dict(id=leaf_id, parent_id=child_id, name=f"{leaf} {child.lower()}", position=leaf_pos,
                                 path=f"{child_path}{leaf_id}/"))  # fmt: skip
                leaves.setdefault(root, []).append(leaf_id)
    for row in rows:
        row.update(created_at=now, updated_at=now)
    return rows, leaves


def _products_and_skus(n: int, now: datetime, leaves: dict[str, list[int]], rng: random.Random):
    """Yield (product row, [sku rows]) for n products; ids are 1..n and 1..m."""
    from mall.catalog.rules import spec_key

    tiers, weights = zip(*TIERS, strict=True)
    sku_id = 0
    for pid in range(1, n + 1):
        brand_id = rng.randrange(1, len(BRANDS) + 1)
        slug, brand_name, root = BRANDS[brand_id - 1]
        noun = rng.choice(NOUNS[root])
        roll = rng.random()
        status = "active" if roll < 0.9 else "draft" if roll < 0.95 else "archived"
        tier = rng.choices(tiers, weights)[0]
        base = int(math.exp(rng.uniform(math.log(990), math.log(199900)))) // 10 * 10 + 9
        specs = rng.sample(SPECS[root], k=min(len(SPECS[root]), rng.choice((1, 2, 2, 2, 3))))
        all_out = rng.random() < 0.08
        skus = []
        for i, spec in enumerate(specs):
            sku_id += 1
            price = base + i * (base // 8) // 10 * 10
            skus.append({
                "id": sku_id, "product_id": pid, "specs": spec, "spec_key": spec_key(spec), "price": price,
                "list_price": price + rng.choice((0, 0, price // 5, price // 3)) // 10 * 10,
                "stock": 0 if all_out or rng.random() < 0.15 else rng.randint(1, 500),
                "weight_grams": rng.randint(50, 3000), "barcode": f"69{pid:08d}{i:02d}",
                "status": "archived" if i > 0 and rng.random() < 0.05 else "active",
                "created_at": now, "updated_at": now,
            })  # fmt: skip
        active_prices = [s["price"] for s in skus if s["status"] == "active"]
        created = now - timedelta(days=rng.uniform(0, 730))
        words = " ".join(rng.choices(WORDS, k=rng.randint(40, 90)))
        product = {
            "id": pid, "brand_id": brand_id, "category_id": rng.choice(leaves[root]),
            "title": f"{brand_name} {rng.choice(ADJECTIVES)} {noun} {rng.choice('ABCDEFGHJKLMNPRSTVX')}-{pid}",
            "subtitle": f"{rng.choice(ADJECTIVES).lower()} {noun.lower()}, {rng.choice(WORDS)} edition",
            "description": f"The {noun.lower()} our shoppers ask for: {words}.",
            "selling_points": rng.sample(["Genuine", "Fast shipping", "7-day returns", "Gift wrap", "Member price",
                                          "Limited stock"], k=rng.randint(2, 4)),
            "images": [f"https://img.bench.mall/{slug}/{pid}/{k}.jpg" for k in range(rng.randint(3, 6))],
            "status": status, "tier": tier,
            "min_member_level": rng.randint(1, 5) if tier == "identity" else None,
            "currency": "CNY", "price_min": min(active_prices), "price_max": max(active_prices),
            "sales_count": min(10**6, int(rng.paretovariate(1.1) * 3) - 3),
            "published_at": None if status == "draft" else created + timedelta(hours=rng.uniform(0, 48)),
            "created_at": created, "updated_at": created,
        }  # fmt: skip
        yield product, skus


PRODUCT_COLUMNS = ("id", "brand_id", "category_id", "title", "subtitle", "description", "selling_points", "images",
                   "status", "tier", "min_member_level", "currency", "price_min", "price_max", "sales_count",
                   "published_at", "created_at", "updated_at")  # fmt: skip
SKU_COLUMNS = ("id", "product_id", "specs", "spec_key", "price", "list_price", "stock", "weight_grams", "barcode",
               "status", "created_at", "updated_at")  # fmt: skip
JSON_COLUMNS = {"selling_points", "images", "specs"}


def seed(database_url: str, redis_url: str, n: int) -> Catalog:
    """Bulk-load the catalog: COPY on PostgreSQL, Core executemany on SQLite; then ANALYZE."""
    import sqlalchemy as sa

    from mall.catalog.models import Brand, Category, Product, Sku

    started = time.perf_counter()
    rng = random.Random(SEED)
    now = datetime.now(UTC).replace(microsecond=0)
    brands = _brand_rows(now)
    categories, leaves = _category_rows(now)
    catalog = Catalog(
        active_brand_ids=[b["id"] for b in brands if b["status"] == "active"],
        category_ids=[c["id"] for c in categories],
    )
    active_brands = set(catalog.active_brand_ids)

    def rows():
        for product, skus in _products_and_skus(n, now, leaves, rng):
            catalog.products += 1
            catalog.skus += len(skus)
            if product["status"] != "draft" and product["brand_id"] in active_brands:
                catalog.visible_ids.append(product["id"])
            yield product, skus

    with harness.app_engine(database_url, redis_url) as engine:
        with engine.begin() as conn:
            conn.execute(sa.insert(Brand.__table__), brands)
            conn.execute(sa.insert(Category.__table__), categories)
        if engine.dialect.name == "postgresql":
            _copy_postgres(engine, rows())
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("brands", "categories", "products", "skus"):
                    conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                         f"(SELECT max(id) FROM {table}))"))  # fmt: skip
                conn.execute(sa.text("VACUUM ANALYZE"))
        else:
            _insert_sqlite(engine, rows(), Product.__table__, Sku.__table__)
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    catalog.seconds = time.perf_counter() - started
    return catalog


def _copy_postgres(engine, rows) -> None:
    def as_tuple(row, columns):
        return tuple(json.dumps(row[c], ensure_ascii=False) if c in JSON_COLUMNS else row[c] for c in columns)

    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        sku_buffer = []
        with conn.cursor() as cur:
            with cur.copy(f"COPY products ({', '.join(PRODUCT_COLUMNS)}) FROM STDIN") as copy:
                for product, skus in rows:
                    copy.write_row(as_tuple(product, PRODUCT_COLUMNS))
                    sku_buffer.extend(as_tuple(s, SKU_COLUMNS) for s in skus)
            with cur.copy(f"COPY skus ({', '.join(SKU_COLUMNS)}) FROM STDIN") as copy:
                for sku in sku_buffer:
                    copy.write_row(sku)
        conn.commit()
    finally:
        raw.close()


def _insert_sqlite(engine, rows, products, skus, batch: int = 5000) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        product_batch, sku_batch = [], []
        for product, product_skus in rows:
            product_batch.append(product)
            sku_batch.extend(product_skus)
            if len(product_batch) >= batch:
                conn.execute(sa.insert(products), product_batch)
                product_batch.clear()
        if product_batch:
            conn.execute(sa.insert(products), product_batch)
        for start in range(0, len(sku_batch), batch):
            conn.execute(sa.insert(skus), sku_batch[start : start + batch])


# ---- the scenarios --------------------------------------------------------------------------

LIST = "/api/v1/products"


class MixedListing:
    """A shopper browsing: a filter and sort at random, then 0-4 further pages by cursor."""

    def __init__(self, catalog: Catalog, rng: random.Random):
        self.catalog, self.rng = catalog, rng
        self.query: dict = {}
        self.pages_left = 0
        self.cursor: str | None = None

    def _new_query(self) -> dict:
        rng, c = self.rng, self.catalog
        low = rng.choice((0, 1000, 5000, 10000, 30000))
        pick = rng.randrange(9)
        query = [
            {},
            {"sort": "sales"},
            {"sort": "price_asc"},
            {"brand_id": rng.choice(c.active_brand_ids)},
            {"brand_id": rng.choice(c.active_brand_ids), "sort": "price_asc"},
            {"category_id": rng.choice(c.category_ids)},
            {"category_id": rng.choice(c.category_ids), "sort": "sales"},
            {"price_min": low, "price_max": low * 3 + 5000, "sort": "price_asc"},
            {"brand_id": rng.choice(c.active_brand_ids), "sort": "sales"},
        ][pick]
        return {**query, "limit": 20}

    def next(self) -> str:
        if self.cursor and self.pages_left > 0:
            self.pages_left -= 1
            query = {**self.query, "cursor": self.cursor}
        else:
            self.query = self._new_query()
            self.pages_left = self.rng.choice((0, 0, 1, 2, 4))
            query = self.query
        self.cursor = None
        return f"{LIST}?{urllib.parse.urlencode(query)}"

    def seen(self, status: int, body: bytes) -> None:
        # {"items": [...], "next_cursor": "..."}: the cursor is the last field; no need to parse it all.
        at = body.rfind(b'"next_cursor":"')
        self.cursor = body[at + 15 : body.index(b'"', at + 15)].decode() if status == 200 and at >= 0 else None


def scenarios(catalog: Catalog) -> list[harness.Scenario]:
    visible = catalog.visible_ids
    return [
        harness.Scenario("livez", "GET /livez", lambda rng: harness.RandomPaths(lambda r: "/livez", rng)),
        harness.Scenario("list", f"GET {LIST}?limit=20",
                         lambda rng: harness.RandomPaths(lambda r: f"{LIST}?limit=20", rng)),
        harness.Scenario("list-mixed", "filters, sorts and cursors", lambda rng: MixedListing(catalog, rng)),
        harness.Scenario("detail", f"GET {LIST}/<id>",
                         lambda rng: harness.RandomPaths(lambda r: f"{LIST}/{r.choice(visible)}", rng)),
    ]  # fmt: skip


def preflight(base_url: str, catalog: Catalog) -> None:
    """The responses have the promised shape before anything is timed."""
    status, page = harness.get_json(f"{base_url}{LIST}?limit=20")
    assert status == 200 and len(page["items"]) == 20 and page["next_cursor"], page
    for item in page["items"]:
        assert {"min", "max", "currency"} <= set(item["price"]) and isinstance(item["in_stock"], bool), item
        assert item["brand"]["id"] in catalog.active_brand_ids, item
    status, deeper = harness.get_json(f"{base_url}{LIST}?limit=20&sort=price_asc&cursor=" + _cursor(base_url))
    assert status == 200 and deeper["items"], deeper
    status, detail = harness.get_json(f"{base_url}{LIST}/{catalog.visible_ids[0]}")
    assert status == 200 and detail["skus"] and "available" in detail, detail


def _cursor(base_url: str) -> str:
    _, page = harness.get_json(f"{base_url}{LIST}?limit=20&sort=price_asc")
    return urllib.parse.quote(page["next_cursor"])


# ---- the suite ------------------------------------------------------------------------------


def run(backend: str, opts, log=print) -> dict:
    with harness.throwaway_database(backend, NAME, pg_admin_url=opts.pg_admin_url) as database_url:
        started = time.perf_counter()
        harness.migrate(database_url, opts.redis_url)
        migrated = time.perf_counter() - started
        catalog = seed(database_url, opts.redis_url, opts.products)
        log(f"  [{backend}] schema by migrations in {migrated:.1f}s; seeded {catalog.products:,} products, "
            f"{catalog.skus:,} SKUs in {catalog.seconds:.1f}s")  # fmt: skip
        config = harness.ServerConfig(workers=opts.workers, worker_class=opts.worker_class, threads=opts.threads)
        results = []
        with harness.Server(config, database_url=database_url, redis_url=opts.redis_url) as server:
            preflight(server.base_url, catalog)
            for scenario in scenarios(catalog):
                if opts.scenarios and scenario.name not in opts.scenarios:
                    continue
                busy_before = harness.wait_for_quiet(getattr(opts, "quiet_wait", 0), log=log)
                result = harness.measure(scenario, server, concurrency=opts.concurrency, warmup=opts.warmup,
                                         duration=opts.duration)  # fmt: skip
                result.extra["machine_busy_before_pct"] = round(busy_before, 1)
                log(f"  [{backend}] {result.name:<11} {result.requests_per_s:>7,.0f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}")  # fmt: skip
                results.append(result)
    checks = []
    if backend == "postgres":
        by_name = {r.name: r for r in results}
        for target in TARGETS:
            if target.scenario in by_name:
                met, detail = target.check(by_name[target.scenario])
                checks.append({"scenario": target.scenario, "met": met, "detail": detail})
    return {
        "suite": NAME,
        "backend": backend,
        "products": catalog.products,
        "skus": catalog.skus,
        "seed_seconds": round(catalog.seconds, 1),
        "server": config.describe(),
        "concurrency": opts.concurrency,
        "results": [harness.as_dict(r) for r in results],
        "targets": checks,
    }
