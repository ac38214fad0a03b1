"""`make soak` / `python -m soak`: a bounded mixed workload against the whole stack, then the invariant audit.

gunicorn (production mode, the offline payment gateway), RQ workers (--rq-workers, one with the scheduler) and `rq cron
workers/cron.py` run on PostgreSQL and Redis as `make run` starts them; WeChat is a local fake
(tests/fakes/wechat.py) that notes every message it is sent. One client per shopper (--clients) runs
soak/workload.py's operations for --seconds (SOAK_SECONDS, default 300): browse, cart, quote, checkout and pay
(with held coupons and points), cancel, refund, ship, coupon claim, flash purchase, live room polling, pinning
and link opening. Then the load stops, the workers drain their queues and mall/invariants.py checks every invariant
(`flask mall audit` runs the same checks), plus two only the fake can see: no message arrived twice, and as many
arrived as the database says were sent.

It prints the requests, the responses by status, p50/p99 per operation and each invariant, and exits 1 on any
violated invariant, any operation that failed (a status it does not expect: a 5xx, a 429, a 404; a transport
failure), an operation that never completed, or queues that did not drain.

Database: SOAK_DATABASE_URL (an empty database on this machine; it is migrated, seeded and kept), else a
throw-away database SOAK_DATABASE_NAME (default soak_<pid>) created through SOAK_PG_ADMIN_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the end. Redis: SOAK_REDIS_URL (default
redis://127.0.0.1:6379/14), a database that must be empty and is emptied at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.flash_sale import spare_redis  # noqa: E402
from bench.paid_message import Jobs  # noqa: E402
from soak import seed as seeding  # noqa: E402
from soak import workload  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=float(env("SOAK_SECONDS") or 300), help="load time (default 300)")
    p.add_argument("--clients", type=int, default=int(env("SOAK_CLIENTS") or 12), help="shoppers at once (default 12)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    p.add_argument("--rq-workers", type=int, default=2, help="RQ workers (default 2; one runs the scheduler)")
    p.add_argument("--database-url", default=env("SOAK_DATABASE_URL"))
    p.add_argument("--database-name", default=env("SOAK_DATABASE_NAME") or f"soak_{os.getpid()}")
    p.add_argument("--pg-admin-url", default=env("SOAK_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--redis-url", default=env("SOAK_REDIS_URL", "redis://127.0.0.1:6379/14"))
    p.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to wait for the queues to empty")
    return p.parse_args(argv)


def _abort(signum, _frame):
    raise SystemExit(f"soak: stopped by {signal.Signals(signum).name}")  # unwinds: processes stopped, DB dropped


@contextlib.contextmanager
def _database(opts):
    if opts.database_url:
        harness.require_local(opts.database_url)
        yield opts.database_url
        return
    with harness.throwaway_database("postgres", "soak", pg_admin_url=opts.pg_admin_url,
                                    name=opts.database_name) as url:  # fmt: skip
        yield url


def main(argv=None) -> int:
    from tests.fakes.wechat import FakeWeChat

    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _abort)
    say = lambda line: print(line, flush=True)  # noqa: E731
    fake = FakeWeChat({seeding.WECHAT_APP: seeding.WECHAT_SECRET}).start()
    try:
        with _database(opts) as database_url, spare_redis(opts.redis_url) as redis_url:
            harness.migrate(database_url, redis_url)
            started = time.perf_counter()
            shop = seeding.seed(database_url, redis_url, shoppers=opts.clients)
            say(f"soak: seeded {len(shop.shoppers)} shoppers, {len(shop.stock_baseline)} SKUs in "
                f"{time.perf_counter() - started:.1f}s")  # fmt: skip
            server = harness.Server(harness.ServerConfig(workers=opts.workers, threads=opts.threads),
                                    database_url=database_url, redis_url=redis_url)  # fmt: skip
            server.env.update(PAYMENT_GATEWAY="offline", NOTIFY_TRANSPORT="wechat", WECHAT_API_BASE=fake.base_url,
                              WECHAT_APPS=f"{seeding.WECHAT_APP}:{seeding.WECHAT_SECRET}",
                              WECHAT_TEMPLATE_IDS=f"order.paid:{seeding.PAID_TEMPLATE}")  # fmt: skip
            jobs = Jobs(server.env, redis_url, "workers.worker.Worker")
            worker = [arg for arg in jobs.commands[0] if arg != "--with-scheduler"]
            jobs.commands += [worker] * (opts.rq_workers - 1)
            with server, jobs:
                say(f"soak: {opts.clients} clients for {opts.seconds:.0f}s against {server.config.describe()}, "
                    f"{opts.rq_workers} RQ workers and rq cron")  # fmt: skip
                stats, wall = workload.drive(shop, server.port, seconds=opts.seconds)
                waited = time.perf_counter()
                left = drain(database_url, redis_url, opts.drain_timeout)
                drained = not left
                say(
                    f"soak: load stopped after {wall:.1f}s; the queues "
                    + (f"drained in {time.perf_counter() - waited:.1f}s" if drained else f"did NOT drain: {left}")
                )
                checks = audit(database_url, redis_url, shop, fake.delivered)
                failed = report(stats, wall, checks, drained)
                if failed:
                    say("\n-- gunicorn log (tail) --\n" + server.log_tail(20) + "\n-- rq log (tail) --\n"
                        + jobs.log_tail(20))  # fmt: skip
    finally:
        fake.stop()
    return 1 if failed else 0


def drain(database_url: str, redis_url: str, timeout: float) -> dict:
    """Wait until no job is queued or running and no due message is unsent; {} then, else what is left."""
    import redis
    import sqlalchemy as sa
    from rq import Queue
    from rq.registry import StartedJobRegistry

    connection = redis.Redis.from_url(redis_url)
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    queues = [Queue(name, connection=connection) for name in ("high", "default", "low")]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            left = {q.name: q.count + StartedJobRegistry(queue=q).count for q in queues}
            with engine.connect() as conn:
                left["due messages"] = conn.scalar(sa.text(
                    "SELECT COUNT(*) FROM messages WHERE status IN ('pending', 'sending') AND send_after <= now()"))  # fmt: skip
            left = {k: v for k, v in left.items() if v}
            if not left:
                return {}
            time.sleep(0.5)
        return left
    finally:
        engine.dispose()
        connection.close()


def audit(database_url: str, redis_url: str, shop: seeding.Shop, delivered: list[dict]) -> list:
    import redis
    import sqlalchemy as sa

    from api.extensions import db
    from mall import invariants
    from mall.promotions.flash_sale.admission import Gate

    gate = Gate(redis.Redis.from_url(redis_url))
    with harness.app_engine(database_url, redis_url):
        checks = invariants.run(db.session, gate=gate, stock_baseline=shop.stock_baseline)
        sent = db.session.scalar(sa.text("SELECT COUNT(*) FROM messages WHERE status = 'sent' AND channel = 'wechat'"))
        db.session.rollback()
    gate.client.close()
    checks += deliveries(delivered, sent)
    return checks


def deliveries(delivered: list[dict], sent: int) -> list:
    """What the fake WeChat received: no message twice (same recipient, template, page and data), and as many
    messages as the database marked sent."""
    from mall.invariants import Check

    seen = Counter((d.get("touser"), d.get("template_id"), d.get("page"), json.dumps(d.get("data"), sort_keys=True))
                   for d in delivered)  # fmt: skip
    twice = sorted(str(key[2] or key[3])[:80] for key, n in seen.items() if n > 1)
    return [
        Check("wechat_once", "no message arrived at WeChat twice", twice, f"{len(delivered)} messages arrived"),
        Check("wechat_matches_sent", "messages arrived = messages the database marked sent",
              [] if len(delivered) == sent else [f"arrived {len(delivered)}, sent {sent}"], f"{sent} sent"),
    ]  # fmt: skip


def report(stats: workload.Stats, wall: float, checks: list, drained: bool) -> bool:
    """Print the figures; True if anything failed."""
    ms = 1000.0
    print(f"\nrequests: {stats.requests:,} in {wall:.1f}s ({stats.requests / wall:,.0f}/s)")
    print("responses by status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.statuses.items())))
    print(f"\n{'operation':<11} {'done':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors")
    for op in workload.WEIGHTS | {"bind_guide": 0}:
        lat = sorted(stats.latencies.get(op, []))
        errors = ", ".join(f"{k} x{v}" for k, v in sorted(stats.errors.get(op, {}).items())) or "-"
        print(f"{op:<11} {len(lat):>7,} {harness.percentile(lat, 50) * ms:>8.1f} "
              f"{harness.percentile(lat, 99) * ms:>8.1f} {(lat[-1] if lat else 0) * ms:>8.1f}  {errors}")  # fmt: skip
    for sample in stats.samples:
        print(f"  e.g. {sample}")
    print("\ninvariants:")
    for check in checks:
        verdict = "ok" if check.ok else f"VIOLATED: {check.violations[:20]}"
        print(f"  {check.name:<22} {verdict:<4}  {check.figure}  - {check.description}")
    server_errors = sum(n for k, n in stats.statuses.items() if not k.isdigit() or k.startswith("5"))
    errors = sum(sum(kinds.values()) for kinds in stats.errors.values())
    never = [op for op in workload.WEIGHTS if not stats.latencies.get(op)]
    failed = not drained or errors or never or not all(c.ok for c in checks)
    if never:
        print(f"\noperations that never completed: {', '.join(never)}")
    print(f"\nsoak: {'FAILED' if failed else 'clean'} ({errors} failed operations, {server_errors} of them 5xx or "
          f"transport failures; {sum(not c.ok for c in checks)} invariants violated)")  # fmt: skip
    return bool(failed)


if __name__ == "__main__":
    sys.exit(main())
