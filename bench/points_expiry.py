"""Points expiry suite: the expiry sweep over --lots due lots (1,000,000 by default), on PostgreSQL only (the
sweep reads the partial index ix_points_lots_due).

Builds a throw-away database with the project's migrations and bulk-loads (COPY) one shopper per five lots, their
balance rows and their lots: all available, all due (expired a day before the frozen clock), 1-500 points each,
plus as many lots not due yet (they must stay untouched), then VACUUM ANALYZE. Then the sweep runs as the cron job
does (`workers.jobs.points.expire_points`: batches of `mall.members.expiry.BATCH` lots, one transaction each)
and is checked: every due lot empty with one `expire` entry, every balance lowered by exactly its lots, the
ledger audit clean. Target: 1,000,000 due lots in under 60 s.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from bench import harness
from bench.abandoned_carts import _copy

NAME = "points_expiry"
DESCRIPTION = "points expiry sweep: --lots due lots expired FIFO in bounded batches, entries and balances"
SEED = 20261203
DB_SUITE = "points"
LOTS_PER_MEMBER = 5
TARGET_SECONDS = 60.0


def seed(engine, n: int, now: datetime) -> dict:
    """Members, balances and 2n lots (n due, n not); returns what was loaded."""
    import sqlalchemy as sa

    started = time.perf_counter()
    rng = random.Random(SEED)
    members = max(1, n // LOTS_PER_MEMBER)
    stamp, due, later = now.isoformat(), (now - timedelta(days=1)).isoformat(), (now + timedelta(days=400)).isoformat()
    points = [rng.randint(1, 500) for _ in range(2 * n)]
    per_member = [0] * (members + 1)
    for i, p in enumerate(points):
        per_member[i % members + 1] += p

    def users():
        for i in range(1, members + 1):
            yield f"{i}\tshopper\tbench-{i}\t0\tactive\t1\t{stamp}\t{stamp}\n"

    def balances():
        for i in range(1, members + 1):
            yield f"{i}\t{per_member[i]}\t0\t0\t{stamp}\n"

    def lots():
        for i, p in enumerate(points):
            expires = due if i < n else later
            yield f"{i + 1}\t{i % members + 1}\tadjust\tavailable\t{p}\t{p}\t{stamp}\t{stamp}\t{expires}\tb-{i + 1}\n"

    def entries():
        for i, p in enumerate(points):
            yield f"{i + 1}\t{i % members + 1}\t{i + 1}\tadjust\t{p}\tb-{i + 1}\t{{}}\t{stamp}\n"

    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        _copy(conn, "users", ("id", "role", "display_name", "member_level", "status", "token_version", "created_at",
                              "updated_at"), users())  # fmt: skip
        _copy(conn, "points_balances", ("user_id", "available", "pending", "reserved", "updated_at"), balances())
        _copy(conn, "points_lots", ("id", "user_id", "source", "state", "amount", "remaining", "earned_at",
                                    "available_at", "expires_at", "key"), lots())  # fmt: skip
        _copy(conn, "points_entries", ("id", "user_id", "lot_id", "kind", "amount", "key", "reason", "created_at"),
              entries())  # fmt: skip
        conn.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("users", "points_lots", "points_entries"):
            conn.execute(
                sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
        conn.execute(sa.text("VACUUM ANALYZE"))
    return {"members": members, "lots": 2 * n, "due": n, "due_points": sum(points[:n]),
            "seconds": time.perf_counter() - started}  # fmt: skip


def run(backend: str, opts, log=print) -> dict:
    report = {"suite": NAME, "backend": backend, "server": "in-process (no HTTP): the cron job's own function",
              "concurrency": 1, "results": [], "targets": []}  # fmt: skip
    if backend != "postgres":
        log(f"  [{backend}] skipped: this suite measures PostgreSQL's partial index plan")
        report["server"] = "skipped (PostgreSQL only)"
        return report
    harness.require_local(opts.redis_url)
    n = getattr(opts, "lots", 1_000_000)
    with harness.throwaway_database(backend, DB_SUITE, pg_admin_url=opts.pg_admin_url) as database_url:
        harness.migrate(database_url, opts.redis_url)
        with harness.app_engine(database_url, opts.redis_url) as engine:
            report.update(_measure(engine, n, log))
    return report


def _measure(engine, n: int, log) -> dict:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from mall import clock
    from mall.members import expiry, ledger
    from workers.jobs.points import expire_points

    now = datetime.now(UTC).replace(microsecond=0)
    loaded = seed(engine, n, now)
    log(f"  [postgres] loaded {loaded['members']:,} members, {loaded['lots']:,} lots ({loaded['due']:,} due) "
        f"in {loaded['seconds']:.1f}s")  # fmt: skip
    clock.freeze(now)
    try:
        t0 = time.perf_counter()
        expired = expire_points(max_batches=10**6)
        seconds = time.perf_counter() - t0
    finally:
        clock.reset()
    with Session(engine) as session:
        left = session.scalar(sa.text("SELECT count(*) FROM points_lots WHERE expires_at <= :now AND remaining > 0"),
                              {"now": now})  # fmt: skip
        entries = session.scalar(sa.text("SELECT count(*) FROM points_entries WHERE kind = 'expire'"))
        gone = session.scalar(sa.text("SELECT -sum(amount) FROM points_entries WHERE kind = 'expire'"))
        untouched = session.scalar(sa.text("SELECT count(*) FROM points_lots WHERE expires_at > :now AND remaining = amount"),
                                   {"now": now})  # fmt: skip
        wrong = ledger.audit(session)
    ok = expired == n and left == 0 and entries == n and gone == loaded["due_points"] and untouched == n and not wrong
    met = ok and seconds < TARGET_SECONDS * n / 1_000_000
    detail = (f"{expired:,} lots expired in {seconds:.1f}s ({expired / seconds:,.0f} lots/s, batch {expiry.BATCH}); "
              f"checks {'pass' if ok else 'FAIL'} (left {left}, entries {entries}, audit {len(wrong)} off); "
              f"target {TARGET_SECONDS:.0f}s per 1,000,000")  # fmt: skip
    log(f"  [postgres] {detail}")
    return {
        "targets": [{"scenario": "expire", "met": met, "detail": detail}],
        "figures": {"lots": n, "seconds": seconds, "lots_per_s": expired / seconds, "batch": expiry.BATCH},
    }
