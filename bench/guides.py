"""Guides suite (issue 16): what guide distribution costs the paths it touches. PostgreSQL only.

Seeds a throw-away database built by the project's migrations, through the domain services where the
checkout suite does (bench/checkout.py's seeder: staff, six brands, a product of ten SKUs with ample
stock, shoppers with an address and a bearer token), plus a guide of the product's brand, active, with a
storefront share link. Then, against one gunicorn (MALL_ENV=production, PAYMENT_GATEWAY=offline, Redis a
spare database of the run's own: BENCH_GUIDES_REDIS_URL, default db 4, empty at the start, emptied at the
end):

  livez               GET /livez at --concurrency clients: the stack's ceiling, for scale
  checkout@1          the checkout suite's whole-checkout loop (add a SKU, quote, place, pay offline), one
                      client, by a shopper no guide has bound
  checkout+guide@1    the same loop by a shopper who opened the guide's link first (POST
                      /guide/links/open, untimed): placement snapshots the binding on every line
                      (order_lines.guide_id / guide_binding_id, checked before timing).
                      Target: >= 0.85 x checkout@1 of the same run. The two alternate, --rounds times
                      (the order swapped each round), so drift on a noisy machine hits both alike.

Each scenario runs --warmup then --duration seconds, after waiting (up to --quiet-wait) for the machine
to be quiet.
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
import urllib.error
from dataclasses import dataclass

from bench import checkout, harness
from bench.flash_sale import spare_redis

NAME = "guides"
DESCRIPTION = "checkout with every line credited to a bound guide vs without (same run)"

CHECKOUT_RATIO = 0.85
BRAND = 0  # the checkout product's brand (index in checkout.BRANDS): the guide's
REDIS_URL = os.environ.get("BENCH_GUIDES_REDIS_URL", "redis://127.0.0.1:6379/4")
API = checkout.API


@dataclass
class Mall:
    brand_id: int
    guide_id: int
    link_token: str
    skus: list[int]
    plain: checkout.Shopper
    guided: checkout.Shopper
    seconds: float = 0.0


def seed(database_url: str, redis_url: str) -> Mall:
    from api.extensions import db
    from mall import events
    from mall.guides import services as guides
    from mall.identity import services as identity
    from mall.identity.roles import Actor, Role

    started = time.perf_counter()
    with harness.app_engine(database_url, redis_url):
        s = db.session
        seeder = checkout._Seeder(s, harness.SECRET_KEY)
        seeder.staff()
        brand_id, admin = seeder.brands[BRAND], seeder.admins[BRAND]
        _, skus = seeder.product(BRAND, skus=10, price=5900)
        plain, guided = seeder.shopper("checkout-plain"), seeder.shopper("checkout-guided")
        user = identity.create_staff(s, actor=admin, role=Role.GUIDE, name="Bench guide", email="guide@bench.invalid",
                                     password=secrets.token_hex(16), brand_id=brand_id)  # fmt: skip
        guide = guides.invite(s, actor=admin, brand_id=brand_id, user_id=user.id)
        guides.move(s, actor=admin, guide_id=guide.id, action="activate")
        link = guides.create_link(s, actor=Actor(user.id, Role.GUIDE, brand_id), target="storefront")
        s.commit()
        events.discard(s)  # nothing for the (absent) workers
        mall = Mall(brand_id, guide.id, guides.token(link, secret=harness.SECRET_KEY), skus, plain, guided)
    mall.seconds = time.perf_counter() - started
    return mall


def bind(base_url: str, mall: Mall) -> dict:
    """The guided shopper opens the guide's storefront link over HTTP: bound under the brand's rule."""
    status, opened = checkout._call(base_url, "POST", f"{API}/guide/links/open", {"token": mall.link_token},
                                    mall.guided.auth)  # fmt: skip
    assert status == 200 and opened["binding"]["kind"] == "bound", (status, opened)
    return opened["binding"]


def line_guides(database_url: str, redis_url: str, order_ids: list[int]) -> dict[int, list]:
    """order id -> its lines' (guide_id, guide_binding_id), read from the database."""
    import sqlalchemy as sa

    from mall.orders.models import OrderLine

    with harness.app_engine(database_url, redis_url) as engine, engine.connect() as conn:
        rows = conn.execute(sa.select(OrderLine.order_id, OrderLine.guide_id, OrderLine.guide_binding_id)
                            .where(OrderLine.order_id.in_(order_ids))).all()  # fmt: skip
    found: dict[int, list] = {}
    for order_id, guide_id, binding_id in rows:
        found.setdefault(order_id, []).append((guide_id, binding_id))
    return found


def checkout_rounds(server, mall: Mall, opts, backend: str, log) -> list[tuple[harness.ScenarioResult, ...]]:
    """--rounds pairs (plain, guided), the order swapped each round."""
    pairs = []
    for n in range(max(1, getattr(opts, "rounds", 3))):
        plain = checkout.checkout_flow(f"checkout@1#{n + 1}", mall.plain, mall.skus, ", no guide")
        guided = checkout.checkout_flow(
            f"checkout+guide@1#{n + 1}", mall.guided, mall.skus, ", shopper bound to a guide"
        )
        first, second = (plain, guided) if n % 2 == 0 else (guided, plain)
        done = {f.name: checkout.measure(f, 1, server, opts, backend, log) for f in (first, second)}
        pairs.append((done[plain.name], done[guided.name]))
    return pairs


def _spread(values: list[float]) -> str:
    return f"min {min(values):.2f}, median {statistics.median(values):.2f}, max {max(values):.2f}"


def checkout_target(pairs) -> dict:
    plain = sum(p.requests_per_s for p, _ in pairs) / len(pairs)
    guided = sum(g.requests_per_s for _, g in pairs) / len(pairs)
    ratios = [g.requests_per_s / p.requests_per_s if p.requests_per_s else 0.0 for p, g in pairs]
    errors = sum(p.errors + g.errors for p, g in pairs)
    ratio = guided / plain if plain else 0.0
    for (_, g), r in zip(pairs, ratios, strict=True):
        g.extra["ratio_to_plain"] = round(r, 3)
    # CPU (gunicorn + PostgreSQL) per checkout hardly depends on what else the machine runs: the cost ratio
    cpu_plain = statistics.median(p.cpu_ms_per_request for p, _ in pairs)
    cpu_guided = statistics.median(g.cpu_ms_per_request for _, g in pairs)
    detail = (f"{guided:,.1f} checkouts/s with a guide = {ratio:.2f} x {plain:,.1f} without (mean of {len(pairs)} "
              f"alternating rounds; per round {_spread(ratios)}; target >= {CHECKOUT_RATIO}); CPU per checkout "
              f"{cpu_guided:.1f} vs {cpu_plain:.1f} ms (median), a cost ratio of "
              f"{cpu_plain / cpu_guided if cpu_guided else 0:.2f}")  # fmt: skip
    if errors:
        detail += f"; {errors} errors"
    return {"scenario": "checkout+guide", "met": ratio >= CHECKOUT_RATIO and not errors, "detail": detail}


def run(backend: str, opts, log=print) -> dict:
    config = harness.ServerConfig(workers=opts.workers, worker_class=opts.worker_class, threads=opts.threads)
    report = {"suite": NAME, "backend": backend, "server": config.describe(), "concurrency": opts.concurrency,
              "results": [], "targets": []}  # fmt: skip
    if backend != "postgres":
        log(f"  [{backend}] skipped: the guides suite's targets are set for PostgreSQL")
        return report
    results, targets = [], []
    with (
        spare_redis(REDIS_URL) as redis_url,
        harness.throwaway_database(backend, NAME, pg_admin_url=opts.pg_admin_url) as database_url,
    ):
        harness.migrate(database_url, redis_url)
        mall = seed(database_url, redis_url)
        log(
            f"  [{backend}] seeded a brand's guide, its storefront link and two checkout shoppers in {mall.seconds:.1f}s"
        )
        server = harness.Server(config, database_url=database_url, redis_url=redis_url)
        server.env.update(PAYMENT_GATEWAY="offline", MALL_ENV="production", SECRET_KEY=harness.SECRET_KEY)
        with server:
            try:
                binding = bind(server.base_url, mall)
                orders = [checkout.checkout_once(server.base_url, shopper, mall.skus[0])["id"]
                          for shopper in (mall.plain, mall.guided)]  # fmt: skip
            except (AssertionError, urllib.error.URLError):
                log(f"  [{backend}] preflight failed; gunicorn's log ends with:\n{server.log_tail()}")
                raise
            lines = line_guides(database_url, redis_url, orders)
            assert lines[orders[0]] == [(None, None)], lines
            assert lines[orders[1]] == [(mall.guide_id, binding["binding_id"])], (lines, binding)
            log(f"  [{backend}] preflight: guided shopper bound ({binding['reason']['rule']}), its order's line "
                f"credited to guide {mall.guide_id}; the plain shopper's to nobody")  # fmt: skip
            results.append(checkout.measure(checkout.livez(), opts.concurrency, server, opts, backend, log))
            pairs = checkout_rounds(server, mall, opts, backend, log)
            results += [r for pair in pairs for r in pair]
            targets.append(checkout_target(pairs))
    report["results"] = [harness.as_dict(r) for r in results]
    report["targets"] = targets
    return report
