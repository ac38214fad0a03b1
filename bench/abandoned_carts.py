"""Abandoned-cart sweep suite: the candidate query and one nudge pass at --carts carts (1,000,000 by
default), on PostgreSQL only (the sweep relies on the partial index ix_carts_abandonable).

Builds a throw-away database with the project's migrations and bulk-loads (COPY) one shopper per
cart (carts.user_id is unique) and their carts: last activity spread over 30 days, recent-heavy
(age = 30 days x U^2: about a third of the carts were touched in the last three days); three carts
in four empty, the rest holding 1-8 lines. Cart lines exist only for the carts a nudge could name
(those inside a stage's window); the candidate query reads `carts` alone. Then ANALYZE, and:

  stage N backlog   `nudges.abandoned_carts` for stage N's window, nothing nudged yet (the first
                    sweep after a deploy or an outage: the oldest 1000 are returned at once)
  nudge pass        one `workers.jobs.notifications.nudge_abandoned_carts()`: up to 1000 carts per
                    stage, one transaction each (claim, lines, outbox row, after-commit scheduling
                    of the dispatch job in Redis); nudges per second
  stage N steady    the same query when everything older than five minutes in the window is
                    nudged already (a sweep every five minutes): the anti-join walks the window

Each query is timed --repeats times after two warm-ups (p50/p99); the EXPLAIN (ANALYZE, BUFFERS)
plans are printed and must use ix_carts_abandonable. The project clock is frozen at the moment
the data was generated, so every repetition sees the same windows.

Touches 127.0.0.1 only: the throw-away database (dropped at the end, also on error or Ctrl-C)
and Redis (--redis-url), where the dispatch jobs the nudge pass schedules are deleted again.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import time
from datetime import UTC, datetime, timedelta

from bench import harness

NAME = "abandoned_carts"
DESCRIPTION = "abandoned-cart sweep: candidate query per stage window and one nudge pass at --carts carts"
SEED = 20261125
DB_SUITE = "carts"  # the throw-away database is bench_carts_<pid>
DAYS = 30
STEADY_LAG = timedelta(minutes=5)  # the cron interval of nudge_abandoned_carts
LINE_COUNTS = [(0, 0.75), (1, 0.13), (2, 0.06), (3, 0.03), (4, 0.015), (5, 0.01), (8, 0.005)]
INDEX = "ix_carts_abandonable"


# ---- the data -------------------------------------------------------------------------------


def _copy(conn, table: str, columns: tuple[str, ...], lines) -> None:
    """COPY text rows (already tab-separated, newline-terminated) in ~4 MB chunks."""
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buf = io.StringIO()
        for line in lines:
            buf.write(line)
            if buf.tell() > 4_000_000:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def seed(engine, n: int, now: datetime, windows) -> dict:
    """Users, carts and (for carts inside a stage window) their lines; returns what was loaded."""
    import sqlalchemy as sa

    from mall.catalog.models import Brand, Category, Product, Sku

    started = time.perf_counter()
    rng = random.Random(SEED)
    stamp = now.isoformat()
    counts, weights = zip(*LINE_COUNTS, strict=True)
    widest = max(until for _, _, until in windows)
    nudgeable: list[tuple[int, int]] = []  # (cart id, line count) inside some window

    def users():
        for i in range(1, n + 1):
            yield f"{i}\tshopper\tbench-{i}\t0\tactive\t1\t{stamp}\t{stamp}\n"

    def carts():
        for i in range(1, n + 1):
            age = timedelta(days=DAYS) * rng.random() ** 2
            lines = rng.choices(counts, weights)[0]
            if lines and age < widest:
                nudgeable.append((i, lines))
            at = (now - age).isoformat()
            yield f"{i}\t{i}\t{lines + rng.randint(1, 12)}\t{lines}\t{at}\t{at}\t{at}\n"

    with engine.begin() as conn:  # a small catalog for the lines to name
        conn.execute(sa.insert(Brand.__table__), [{"id": 1, "slug": "bench", "name": "Bench Brand", "status": "active",
                                                   "created_at": now, "updated_at": now}])  # fmt: skip
        conn.execute(sa.insert(Category.__table__), [{"id": 1, "parent_id": None, "name": "Bench", "position": 0,
                                                      "path": "/1/", "created_at": now, "updated_at": now}])  # fmt: skip
        conn.execute(sa.insert(Product.__table__), [
            {"id": p, "brand_id": 1, "category_id": 1, "title": f"Bench product {p}", "status": "active",
             "tier": "profit", "currency": "CNY", "price_min": 990 + p, "price_max": 990 + p,
             "published_at": now, "created_at": now, "updated_at": now} for p in range(1, 201)])  # fmt: skip
        conn.execute(sa.insert(Sku.__table__), [
            {"id": p, "product_id": p, "specs": {"size": "M"}, "spec_key": "size=M", "price": 990 + p,
             "list_price": 990 + p, "stock": 100, "status": "active", "created_at": now, "updated_at": now}
            for p in range(1, 201)])  # fmt: skip

    def cart_lines():
        line_id = 0
        for cart_id, lines in nudgeable:
            for sku in rng.sample(range(1, 201), lines):
                line_id += 1
                yield (f"{line_id}\t{cart_id}\t{sku}\t{rng.randint(1, 3)}\t{{\"type\": \"organic\"}}\t"
                       f"{stamp}\t{stamp}\n")  # fmt: skip

    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        user_cols = ("id", "role", "display_name", "member_level", "status", "token_version", "created_at",
                     "updated_at")  # fmt: skip
        _copy(conn, "users", user_cols, users())
        cart_cols = ("id", "user_id", "version", "line_count", "last_activity_at", "created_at", "updated_at")
        _copy(conn, "carts", cart_cols, carts())
        _copy(conn, "cart_lines", ("id", "cart_id", "sku_id", "quantity", "source", "created_at", "updated_at"),
              cart_lines())  # fmt: skip
        conn.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("users", "carts", "cart_lines", "brands", "categories", "products", "skus"):
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))"))  # fmt: skip
        conn.execute(sa.text("VACUUM ANALYZE"))
        with_lines = conn.scalar(sa.text("SELECT count(*) FROM carts WHERE line_count > 0"))
        lines = conn.scalar(sa.text("SELECT count(*) FROM cart_lines"))
        size = conn.scalar(sa.text(f"SELECT pg_size_pretty(pg_relation_size('{INDEX}'))"))
    return {"carts": n, "with_lines": with_lines, "lines": lines, "index_size": size,
            "seconds": time.perf_counter() - started}  # fmt: skip


# ---- measuring ------------------------------------------------------------------------------


class Captured:
    """The SQL (and parameters) of the statements run inside the block, as psycopg receives them."""

    def __init__(self, engine):
        self.engine, self.statements = engine, []

    def _hook(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append((statement, parameters))

    def __enter__(self):
        import sqlalchemy as sa

        sa.event.listen(self.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc):
        import sqlalchemy as sa

        sa.event.remove(self.engine, "before_cursor_execute", self._hook)


def time_query(sessions, stage: int, idle: timedelta, until: timedelta, repeats: int):
    """Latencies (s) of `abandoned_carts` for one window, each in its own short transaction."""
    from mall.notifications import nudges

    latencies, found = [], 0
    for i in range(repeats + 2):
        with sessions() as session:
            started = time.perf_counter()
            rows = nudges.abandoned_carts(session, idle=idle, until=until, stage=stage)
            elapsed = time.perf_counter() - started
            session.rollback()
        if i >= 2:  # two warm-ups
            latencies.append(elapsed)
        found = len(rows)
    return sorted(latencies), found


def explain(engine, sessions, stage: int, idle: timedelta, until: timedelta) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of exactly the statement `abandoned_carts` sends."""
    from mall.notifications import nudges

    with Captured(engine) as captured, sessions() as session:
        nudges.abandoned_carts(session, idle=idle, until=until, stage=stage)
        session.rollback()
    [(statement, parameters)] = [s for s in captured.statements if "FROM carts" in s[0]]
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        conn.rollback()
    return plan


def candidates(engine, stage: int, idle: timedelta, until: timedelta, now: datetime) -> tuple[int, int]:
    """(carts with lines in the window, of which not yet nudged at this stage for their version)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM cart_nudges n WHERE n.cart_id = c.id "
            "AND n.version = c.version AND n.stage = :stage)) FROM carts c WHERE c.line_count > 0 "
            "AND c.last_activity_at <= :hi AND c.last_activity_at > :lo"),
            {"stage": stage, "hi": now - idle, "lo": now - until}).one()  # fmt: skip
    return row[0], row[1]


def settle(engine, windows, now: datetime) -> int:
    """Steady state: every cart in a window that went idle more than STEADY_LAG past its threshold
    is nudged already (as a sweep every five minutes leaves it); the newest five minutes are not."""
    import sqlalchemy as sa

    made = 0
    with engine.begin() as conn:
        for stage, idle, until in windows:
            made += conn.execute(sa.text(
                "INSERT INTO cart_nudges (cart_id, version, stage, created_at) "
                "SELECT id, version, :stage, :now FROM carts WHERE line_count > 0 "
                "AND last_activity_at <= :hi AND last_activity_at > :lo ON CONFLICT DO NOTHING"),
                {"stage": stage, "now": now, "hi": now - idle - STEADY_LAG, "lo": now - until}).rowcount  # fmt: skip
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE cart_nudges"))
    return made


@contextlib.contextmanager
def nudge_latencies(jobs, nudges) -> list[float]:
    """Per-cart latencies of a nudge pass: each cart's transaction from opening to after its commit and
    the after-commit scheduling (the job's own `unit_of_work`; the candidate queries are left out)."""
    real_unit, real_nudge = jobs.unit_of_work, nudges.nudge
    latencies: list[float] = []
    current: dict = {}

    @contextlib.contextmanager
    def timed_unit():
        current.clear()
        started = time.perf_counter()
        with real_unit() as session:
            yield session
        if current.get("nudge"):
            latencies.append(time.perf_counter() - started)

    def marked_nudge(*args, **kwargs):
        current["nudge"] = True
        return real_nudge(*args, **kwargs)

    jobs.unit_of_work, nudges.nudge = timed_unit, marked_nudge
    try:
        yield latencies
    finally:
        jobs.unit_of_work, nudges.nudge = real_unit, real_nudge
        latencies.sort()


def result(name: str, description: str, latencies: list[float], seconds: float, ops: int, cpu0, cpu1):
    pct = harness.percentile
    cpu_client, cpu_db = cpu1.client - cpu0.client, cpu1.database - cpu0.database
    busy = sum(latencies) or seconds
    return harness.ScenarioResult(
        name=name, description=description, requests_per_s=ops / busy if busy else 0.0,
        p50_ms=pct(latencies, 50) * 1000, p90_ms=pct(latencies, 90) * 1000, p99_ms=pct(latencies, 99) * 1000,
        max_ms=(latencies[-1] if latencies else 0.0) * 1000, ok=ops, errors=0, statuses={}, duration_s=seconds,
        concurrency=1, cpu_client_pct=round(100 * cpu_client / seconds, 1) if seconds else 0.0,
        cpu_database_pct=round(100 * cpu_db / seconds, 1) if seconds else 0.0,
        cpu_ms_per_request=round(1000 * (cpu_client + cpu_db) / max(1, ops), 3),
    )  # fmt: skip


@contextlib.contextmanager
def scheduled_jobs_removed(redis_url: str, engine):
    """Delete, afterwards, the dispatch jobs the nudge pass scheduled in Redis (ids from the messages)."""
    try:
        yield
    finally:
        import sqlalchemy as sa
        from redis import Redis
        from rq import Queue

        from workers.queues import DEFAULT

        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, send_after FROM messages")).all()
        with contextlib.suppress(Exception), Redis.from_url(redis_url) as redis:
            registry = Queue(DEFAULT, connection=redis).scheduled_job_registry
            for message_id, send_after in rows:
                registry.remove(f"message-{message_id}-{int(send_after.timestamp())}", delete_job=True)


# ---- the suite ------------------------------------------------------------------------------


def run(backend: str, opts, log=print) -> dict:
    report = {"suite": NAME, "backend": backend, "server": "in-process (no HTTP): the sweep's own functions",
              "concurrency": 1, "results": [], "targets": []}  # fmt: skip
    if backend != "postgres":
        log(f"  [{backend}] skipped: this suite measures PostgreSQL's partial index plan")
        report["server"] = "skipped (PostgreSQL only)"
        return report
    harness.require_local(opts.redis_url)
    n = getattr(opts, "carts", 1_000_000)
    repeats = max(1, getattr(opts, "repeats", 50))
    with harness.throwaway_database(backend, DB_SUITE, pg_admin_url=opts.pg_admin_url) as database_url:
        started = time.perf_counter()
        harness.migrate(database_url, opts.redis_url)
        log(f"  [{backend}] schema by migrations in {time.perf_counter() - started:.1f}s")
        with harness.app_engine(database_url, opts.redis_url) as engine:
            report.update(_measure(engine, database_url, opts.redis_url, n, repeats, log))
    return report


def _measure(engine, database_url: str, redis_url: str, n: int, repeats: int, log) -> dict:
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import sessionmaker

    from mall import clock
    from mall.notifications import nudges
    from workers import runtime
    from workers.jobs import notifications as jobs

    database = make_url(database_url).database
    now = datetime.now(UTC).replace(microsecond=0)
    windows = nudges.stage_windows(runtime.settings().cart_nudge_hours)
    loaded = seed(engine, n, now, windows)
    log(f"  [postgres] loaded {loaded['carts']:,} shoppers and carts ({loaded['with_lines']:,} with lines), "
        f"{loaded['lines']:,} lines in {loaded['seconds']:.1f}s; {INDEX} {loaded['index_size']}")  # fmt: skip
    sessions = sessionmaker(engine)
    results, rows, plans = [], [], {}
    clock.freeze(now)
    try:

        def measure_windows(phase: str) -> None:
            for stage, idle, until in windows:
                in_window, open_ = candidates(engine, stage, idle, until, now)
                cpu0 = harness.CpuSample.take([], database)
                t0 = time.perf_counter()
                latencies, found = time_query(sessions, stage, idle, until, repeats)
                seconds = time.perf_counter() - t0
                cpu1 = harness.CpuSample.take([], database)
                name = f"stage{stage}-{phase}"
                span = f"idle {_span(idle)}..{_span(until)}"
                results.append(result(name, f"abandoned_carts(), {span}", latencies, seconds, len(latencies),
                                      cpu0, cpu1))  # fmt: skip
                rows.append((name, span, in_window, open_, found, latencies))
                plans[name] = explain(engine, sessions, stage, idle, until)

        measure_windows("backlog")
        with scheduled_jobs_removed(redis_url, engine), nudge_latencies(jobs, nudges) as per_cart:
            cpu0 = harness.CpuSample.take([], database)
            t0 = time.perf_counter()
            made = jobs.nudge_abandoned_carts()
            seconds = time.perf_counter() - t0
            cpu1 = harness.CpuSample.take([], database)
        pass_result = result("nudge-pass", "nudge_abandoned_carts(): claim, lines, outbox row, job per cart",
                             per_cart, seconds, made, cpu0, cpu1)  # fmt: skip
        pass_result.requests_per_s = made / seconds if seconds else 0.0  # the whole pass, candidate queries included
        results.append(pass_result)
        settled = settle(engine, windows, now)
        log(f"  [postgres] steady state: {settled:,} window carts marked nudged (all but the last 5 minutes)")
        measure_windows("steady")
    finally:
        clock.reset()

    log("")
    log(_table(rows))
    log(f"\n  nudge pass: {made:,} nudges in {seconds:.2f}s = {made / seconds:,.0f} nudges/s; per cart p50 "
        f"{pass_result.p50_ms:.2f} ms, p99 {pass_result.p99_ms:.2f} ms (one transaction per cart, Redis scheduling "
        f"included)")  # fmt: skip
    log(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work skews these)")
    unused = [name for name, plan in plans.items() if INDEX not in plan]
    for name, plan in plans.items():
        log(f"\n  EXPLAIN (ANALYZE, BUFFERS) {name}:\n" + "\n".join(f"    {line}" for line in plan.splitlines()))
    targets = [{"scenario": name, "met": name not in unused, "detail": f"plan uses {INDEX}"} for name in plans]
    return {"carts": n, "carts_with_lines": loaded["with_lines"], "seed_seconds": round(loaded["seconds"], 1),
            "nudges": made, "nudges_per_s": round(made / seconds, 1) if seconds else 0.0,
            "results": [harness.as_dict(r) for r in results], "targets": targets,
            "plans": plans}  # fmt: skip


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g}h"


def _table(rows) -> str:
    head = ("query", "window", "in window", "not nudged", "returned", "p50 ms", "p99 ms")
    body = [
        (name, span, f"{in_window:,}", f"{open_:,}", f"{found:,}", f"{harness.percentile(lat, 50) * 1000:.2f}",
         f"{harness.percentile(lat, 99) * 1000:.2f}")
        for name, span, in_window, open_, found, lat in rows
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]

    def line(cells):
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs)

    return "\n".join([line(head), "  " + "  ".join("-" * w for w in widths), *(line(r) for r in body)])
