"""Members suite: the nightly RFM run (scores per brand and across the platform, groups, lifecycle stages, the
cross-brand matrix) over --members members and --orders paid orders, on PostgreSQL only (ADR 0028).

Builds a throw-away database with the project's migrations and seeds it set-based with generate_series: ten
brands, --members shoppers, --orders paid orders over two years (recent-heavy: age = 730 days x U^2) of 10.00 to
210.00, one sub-order each in the member's usual brand (seven in ten) or another (cross-brand buyers), one in ten
partly refunded and one in fifty wholly. Then VACUUM ANALYZE and three nightly runs a day apart (tags left out:
the target is RFM, groups and lifecycle): the first has no previous run, the second joins the first (movements),
the third also prunes the first in batches. Target: a run in under 60 s at 1,000,000 members / 5,000,000 orders.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime, timedelta

from bench import harness

NAME = "members"
DESCRIPTION = "nightly RFM, groups, lifecycle and cross-brand matrix over --members members and --orders orders"
DB_SUITE = "members"
BRANDS = 10
TARGET_SECONDS = 60.0

SEED_SQL = [
    "SELECT setseed(0.2026)",
    """INSERT INTO brands (id, slug, name, logo_url, story, status, created_at, updated_at)
       SELECT b, 'bench-' || b, 'Bench ' || b, '', '', 'active', :now, :now FROM generate_series(1, :brands) b""",
    """INSERT INTO users (id, role, display_name, member_level, status, token_version, created_at, updated_at)
       SELECT g, 'shopper', 'm' || g, g % 5, 'active', 1, :now, :now FROM generate_series(1, :members) g""",
    """INSERT INTO orders (id, user_id, status, currency, items_total, discount_total, shipping_total, payable_total,
           paid_total, refunded_total, address, discounts, expires_at, paid_at, created_at, updated_at)
       SELECT g, u, 'completed', 'CNY', amount, 0, 0, amount, amount,
           CASE WHEN g % 50 = 0 THEN amount WHEN g % 10 = 0 THEN amount / 3 ELSE 0 END,
           '{}', '[]', at, at, at, at
       FROM (SELECT g, 1 + floor(random() * :members)::int AS u, 1000 + floor(random() * 20000)::int AS amount,
                    :now - make_interval(secs => 730 * 86400 * random() ^ 2) AS at
             FROM generate_series(1, :orders) g) o""",
    """INSERT INTO sub_orders (id, order_id, brand_id, status, items_total, discount_total, shipping_fee,
           payable_total, refunded_total, open_after_sales, created_at, updated_at)
       SELECT id, id, CASE WHEN random() < 0.7 THEN 1 + user_id % :brands ELSE 1 + floor(random() * :brands)::int END,
           'completed', items_total, 0, 0, payable_total, refunded_total, 0, created_at, created_at FROM orders""",
]


def seed(engine, members: int, orders: int, now: datetime) -> float:
    import sqlalchemy as sa

    started = time.perf_counter()
    params = {"now": now, "members": members, "orders": orders, "brands": BRANDS}
    with engine.begin() as conn:
        for sql in SEED_SQL:
            conn.execute(sa.text(sql), params)
        for table in ("brands", "users", "orders", "sub_orders"):
            conn.execute(
                sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def unit_of_work_on(engine):
    from sqlalchemy.orm import Session

    @contextlib.contextmanager
    def unit_of_work():
        with Session(engine) as session:
            yield session
            session.commit()

    return unit_of_work


def _result(name: str, description: str, seconds: float, members: int, extra: dict) -> harness.ScenarioResult:
    ms = seconds * 1000
    return harness.ScenarioResult(name=name, description=description, requests_per_s=members / seconds if seconds else 0,
                                  p50_ms=ms, p90_ms=ms, p99_ms=ms, max_ms=ms, ok=members, errors=0, statuses={},
                                  duration_s=seconds, concurrency=1, extra=extra)  # fmt: skip


def run(backend: str, opts, log=print) -> dict:
    report = {"suite": NAME, "backend": backend, "server": "in-process (no HTTP): the nightly job's own functions",
              "concurrency": 1, "results": [], "targets": []}  # fmt: skip
    if backend != "postgres":
        log(f"  [{backend}] skipped: the target is PostgreSQL's")
        report["server"] = "skipped (PostgreSQL only)"
        return report
    members, orders = opts.members, opts.orders
    keep = getattr(opts, "keep_database", None)
    database = harness.kept_database(keep, pg_admin_url=opts.pg_admin_url) if keep else None
    with database or harness.throwaway_database(backend, DB_SUITE, pg_admin_url=opts.pg_admin_url) as database_url:
        harness.migrate(database_url, opts.redis_url)
        with harness.app_engine(database_url, opts.redis_url) as engine:
            report.update(_measure(engine, members, orders, log, engine.url.database))
    return report


def _seeded(engine, members: int, orders: int, log) -> datetime:
    """Seed the database, or reuse a kept one seeded at this size: its runs are removed (the first run of the
    three has no previous one) and its seed time read back. Returns the seed time."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        counts = conn.execute(sa.text("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders)")).one()
        if tuple(counts) == (members, orders):
            conn.execute(sa.text("TRUNCATE member_rfm_scores, member_brand_pairs, member_rfm_runs"))
            now = conn.scalar(sa.text("SELECT max(created_at) FROM users"))
            log(f"  [postgres] reusing the seed of {engine.url.database} ({members:,} members, {orders:,} orders)")
            return now
        if any(counts):
            raise SystemExit(f"bench: {engine.url.database} holds {counts[0]:,} users and {counts[1]:,} orders, "
                             "not the seed asked for: drop it or name another database")  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    seconds = seed(engine, members, orders, now)
    log(f"  [postgres] seeded {members:,} members, {orders:,} orders in {seconds:.1f}s")
    return now


def _measure(engine, members: int, orders: int, log, database: str) -> dict:
    from mall import clock
    from mall.members import nightly

    now = _seeded(engine, members, orders, log)
    results, targets = [], []
    try:
        for day, label in enumerate(("first run", "second run (movements)", "third run (+ pruning)")):
            clock.freeze(now + timedelta(days=day))
            with harness.DatabaseCpuMeter(database) as cpu:
                started = time.perf_counter()
                figures = nightly.run(unit_of_work_on(engine), with_tags=False)
                elapsed = time.perf_counter() - started
            figures["database_cpu_s"] = round(cpu.seconds, 2)
            figures["load_average"] = os.getloadavg()[0]
            scored = sum(figures["members"].values())
            log(f"  [postgres] {label}: {elapsed:.1f}s, PostgreSQL CPU {figures['database_cpu_s']:.1f}s, load "
                f"{figures['load_average']:.1f} ({scored:,} score rows, pruned {figures['pruned']:,})")  # fmt: skip
            results.append(_result(label, f"nightly RFM over {members:,} members / {orders:,} orders", elapsed,
                                   figures["members"]["platform"], figures))  # fmt: skip
    finally:
        clock.reset()
    worst = max(r.duration_s for r in results)
    scale = (1_000_000 / members + 5_000_000 / orders) / 2
    at_size = members >= 1_000_000 and orders >= 5_000_000  # smaller runs cannot meet the target, only hint at it
    targets.append({"scenario": "nightly run", "met": at_size and worst < TARGET_SECONDS,
                    "detail": f"slowest run {worst:.1f}s at {members:,}/{orders:,} (target < {TARGET_SECONDS:.0f}s at "
                              f"1,000,000/5,000,000; about {worst * scale:.0f}s there if linear)"})  # fmt: skip
    return {"results": [r.__dict__ for r in results], "targets": targets, "members": members, "orders": orders}
