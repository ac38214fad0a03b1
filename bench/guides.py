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

import cProfile
import io
import os
import pstats
import secrets
import statistics
import time
import urllib.error
from dataclasses import dataclass

from bench import checkout, harness
from bench.flash_sale import spare_redis
from bench.live import _paths

NAME = "guides"
DESCRIPTION = "checkout with every line credited to a bound guide vs without (same run)"

CHECKOUT_RATIO = 0.85
SETTLE_RATE = 5_000  # entries/s
RATE_BP = 500  # the brand's card: 5% of what a line paid
SUMMARY_P99_MS = 50.0
SUMMARY_SPAN_DAYS = 90  # the summary guide's entries (one per paid guided line) spread over this many days
SUMMARY_CLIENTS = 1  # the target is a latency: one guide opening the workbench on an otherwise idle server
SETTLE_GUIDES = 1_000  # the settled entries belong to this many guides (each batch bumps many balance rows)
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
    guide_token: str = ""
    template_order: int = 0  # a guided, paid order of the preflight: what the settlement's seed copies
    settle_guides: int = 0  # the first of SETTLE_GUIDES guides the settlement's entries belong to (0: not made yet)


def seed(database_url: str, redis_url: str) -> Mall:
    from api.extensions import db
    from mall import events
    from mall.guides import rates
    from mall.guides import services as guides
    from mall.identity import services as identity
    from mall.identity import tokens
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
        rates.create(s, actor=admin, brand_id=brand_id, scope="brand", basis_points=RATE_BP)  # guided lines earn
        s.commit()
        events.discard(s)  # nothing for the (absent) workers
        mall = Mall(brand_id, guide.id, guides.token(link, secret=harness.SECRET_KEY), skus, plain, guided)
        mall.guide_token = tokens.issue(user, secret=harness.SECRET_KEY, ttl_seconds=checkout.TOKEN_TTL)[0]
    mall.seconds = time.perf_counter() - started
    return mall


def bind(base_url: str, mall: Mall) -> dict:
    """The guided shopper opens the guide's storefront link over HTTP: bound under the brand's rule."""
    status, opened = checkout._call(base_url, "POST", f"{API}/guide/links/open", {"token": mall.link_token},
                                    mall.guided.auth)  # fmt: skip
    assert status == 200 and opened["binding"]["kind"] == "bound", (status, opened)
    return opened["binding"]


def line_guides(database_url: str, redis_url: str, order_ids: list[int]) -> dict[int, list]:
    """order id -> its lines' (guide_id, guide_binding_id, their entries' (kind, state, amount)), from the database."""
    import sqlalchemy as sa

    from mall.guides.ledger_models import CommissionEntry as Entry
    from mall.orders.models import OrderLine

    with harness.app_engine(database_url, redis_url) as engine, engine.connect() as conn:
        rows = conn.execute(sa.select(OrderLine.order_id, OrderLine.guide_id, OrderLine.guide_binding_id, OrderLine.id)
                            .where(OrderLine.order_id.in_(order_ids))).all()  # fmt: skip
        entries = conn.execute(sa.select(Entry.order_line_id, Entry.kind, Entry.state, Entry.amount)
                               .where(Entry.order_id.in_(order_ids))).all()  # fmt: skip
    found: dict[int, list] = {}
    for order_id, guide_id, binding_id, line_id in rows:
        earned = [tuple(e[1:]) for e in entries if e[0] == line_id]
        found.setdefault(order_id, []).append((guide_id, binding_id, earned))
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


# ---- settlement: N due sub-orders' pending entries become available -------------------------------------------


def _clone(conn, table: str, template_id: int, count: int, values: dict[str, str]) -> int:
    """`count` copies of row `template_id` of `table` in one INSERT ... SELECT over generate_series(1, count) g:
    ids :base + g (base: the table's max id, returned), column c set to the SQL expression values[c] (of g, :base,
    :now) or the template's value; the id sequence is moved past them."""
    import sqlalchemy as sa

    columns = [row[0] for row in conn.execute(sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_name = :t AND table_schema = current_schema() "
        "ORDER BY ordinal_position"), {"t": table})]  # fmt: skip
    base = conn.scalar(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))
    chosen = {"id": ":base + g", **values}
    conn.execute(sa.text(
        f"INSERT INTO {table} ({', '.join(_quoted(c) for c in columns)}) "
        f"SELECT {', '.join(chosen.get(c, 't.' + _quoted(c)) for c in columns)} "
        f"FROM {table} t CROSS JOIN generate_series(1, :count) g WHERE t.id = :template"
    ), {"base": base, "count": count, "template": template_id, "now": _now()})  # fmt: skip
    conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :last)"), {"last": base + count})
    return base


def _quoted(column: str) -> str:
    return '"' + column + '"'


def _now():
    from mall import clock

    return clock.now()


def settle_rounds(opts) -> int:
    return 0 if getattr(opts, "entries", 0) <= 0 else max(1, getattr(opts, "rounds", 3))


def seed_due(conn, mall: Mall, entries: int, per_sub: int, label: str) -> dict:
    """`entries` pending earn entries over entries / per_sub sub-orders (of as many orders) whose after-sale
    window closed yesterday with no case open, for SETTLE_GUIDES guides; their cached balances added. Copies of
    the preflight's guided order, sub-order and earn entry, made set-based (no ORM, no per-row round trip)."""
    import sqlalchemy as sa

    started = time.perf_counter()
    template = conn.execute(sa.text(
        "SELECT o.id, s.id, e.id, g.user_id FROM orders o JOIN sub_orders s ON s.order_id = o.id "
        "JOIN guide_commission_entries e ON e.sub_order_id = s.id AND e.kind = 'earn' "
        "JOIN guides g ON g.id = e.guide_id WHERE o.id = :o"), {"o": mall.template_order}).one()  # fmt: skip
    order_id, sub_id, entry_id, user_id = template
    if not mall.settle_guides:
        users = _clone(
            conn,
            "users",
            user_id,
            SETTLE_GUIDES,
            {"email": "'bench-guide-' || g || '@bench.invalid'", "display_name": "'Bench guide ' || g"},
        )
        guide_id = conn.scalar(sa.text("SELECT id FROM guides WHERE user_id = :u"), {"u": user_id})
        mall.settle_guides = 1 + _clone(conn, "guides", guide_id, SETTLE_GUIDES,
                                        {"user_id": f"{users} + g", "name": "'Bench guide ' || g"})  # fmt: skip
    subs = -(-entries // per_sub)
    orders = _clone(conn, "orders", order_id, subs, {"number": "NULL", "status": "'completed'"})
    # after_sale_deadline: closed yesterday, a millisecond apart (the sweep takes the oldest first)
    subs_base = _clone(conn, "sub_orders", sub_id, subs, {
        "order_id": f"{orders} + g", "status": "'completed'", "completed_at": ":now - interval '8 days'",
        "after_sale_deadline": ":now - interval '1 day' - (:count - g) * interval '1 millisecond'",
        "open_after_sales": "0", "settled_at": "NULL"})  # fmt: skip
    sub_of = f"(((g - 1) / {per_sub}) + 1)"
    first_entry = 1 + _clone(conn, "guide_commission_entries", entry_id, entries, {
        "sub_order_id": f"{subs_base} + {sub_of}", "order_id": f"{orders} + {sub_of}",
        "order_line_id": "NULL", "guide_id": f"{mall.settle_guides} + ({sub_of} % {SETTLE_GUIDES})",
        "amount": "100 + g % 900", "state": "'pending'", "idempotency_key": f"'bench-{label}:' || g",
        "created_at": ":now - interval '9 days'", "state_changed_at": ":now - interval '9 days'"})  # fmt: skip
    _add_balances(conn, first_entry)
    return {"entries": entries, "sub_orders": subs, "first_entry": first_entry, "first_sub_order": subs_base + 1,
            "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip


def _add_balances(conn, first_entry: int) -> None:
    """Add the entries from `first_entry` on to their guides' cached balances (as ledger.post would have)."""
    import sqlalchemy as sa

    sums = ", ".join(f"SUM(CASE WHEN state = '{state}' THEN amount ELSE 0 END)" for state in ("pending", "available",
                                                                                              "on_hold"))  # fmt: skip
    conn.execute(sa.text(
        "INSERT INTO guide_balances AS b (guide_id, currency, pending, available, on_hold, updated_at) "
        f"SELECT guide_id, currency, {sums}, :now FROM guide_commission_entries WHERE id >= :first "
        "GROUP BY guide_id, currency ON CONFLICT (guide_id, currency) DO UPDATE "
        "SET pending = b.pending + excluded.pending, available = b.available + excluded.available, "
        "on_hold = b.on_hold + excluded.on_hold, updated_at = excluded.updated_at"),
        {"first": first_entry, "now": _now()})  # fmt: skip


# ---- a guide's workbench summary over a long history ------------------------------------------------------------


def seed_history(conn, mall: Mall, entries: int, span_days: int = SUMMARY_SPAN_DAYS) -> dict:
    """The bench guide's history: `entries` paid orders of one guided line each (copies of the preflight's guided
    order, sub-order and line), placed and paid evenly over `span_days` up to now (ids grow with time), each
    line's earn entry (older than 15 days available, else pending; every 50th on hold), its order's signal row
    (what the workbench counts today's paid orders by), and two link visits per order. Set-based; the guide's
    cached balance gets the sums."""
    import sqlalchemy as sa

    started = time.perf_counter()
    order_id, sub_id, line_id, entry_id = conn.execute(sa.text(
        "SELECT o.id, s.id, l.id, e.id FROM orders o JOIN sub_orders s ON s.order_id = o.id "
        "JOIN order_lines l ON l.sub_order_id = s.id JOIN guide_commission_entries e ON e.order_line_id = l.id "
        "WHERE o.id = :o"), {"o": mall.template_order}).one()  # fmt: skip
    visit_id = conn.scalar(sa.text("SELECT MIN(id) FROM guide_visits WHERE guide_id = :g"), {"g": mall.guide_id})
    at = f":now - (:count - g) * (interval '{int(span_days)} days' / :count)"
    orders = _clone(conn, "orders", order_id, entries, {
        "number": "NULL", "created_at": f"{at} - interval '1 minute'", "updated_at": at, "paid_at": at,
        "expires_at": f"{at} + interval '14 minutes'"})  # fmt: skip
    subs = _clone(conn, "sub_orders", sub_id, entries, {"order_id": f"{orders} + g", "created_at": at,
                                                        "updated_at": at})  # fmt: skip
    lines = _clone(conn, "order_lines", line_id, entries, {"order_id": f"{orders} + g", "sub_order_id": f"{subs} + g"})
    first_entry = 1 + _clone(conn, "guide_commission_entries", entry_id, entries, {
        "order_id": f"{orders} + g", "sub_order_id": f"{subs} + g", "order_line_id": f"{lines} + g",
        "amount": "100 + g % 900", "idempotency_key": "'bench-history:' || g", "created_at": at,
        "state_changed_at": at, "state": f"CASE WHEN g % 50 = 0 THEN 'on_hold' WHEN {at} < :now - interval '15 days' "
                                          "THEN 'available' ELSE 'pending' END"})  # fmt: skip
    signal_id = conn.scalar(sa.text("SELECT id FROM guide_order_signals WHERE order_id = :o"), {"o": order_id})
    _clone(conn, "guide_order_signals", signal_id, entries, {"order_id": f"{orders} + g", "paid_at": at})
    visits = f":now - (:count - g) * (interval '{int(span_days)} days' / :count)"
    _clone(conn, "guide_visits", visit_id, 2 * entries, {"visited_at": visits})
    _add_balances(conn, first_entry)
    return {"entries": entries, "orders": entries, "visits": 2 * entries, "span_days": span_days,
            "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip


def summary_history(database_url: str, redis_url: str, mall: Mall, opts, backend: str, log) -> dict:
    with harness.app_engine(database_url, redis_url) as engine:
        with engine.begin() as conn:
            seeded = seed_history(conn, mall, opts.summary_entries, getattr(opts, "summary_days", SUMMARY_SPAN_DAYS))
        _vacuum(
            engine,
            ("orders", "sub_orders", "order_lines", "guide_commission_entries", "guide_visits", "guide_order_signals"),
        )
    log(f"  [{backend}] summary: guide {mall.guide_id} given {seeded['entries']:,} entries of as many paid orders and "
        f"{seeded['visits']:,} visits over {seeded['span_days']} days in {seeded['seconds']}s, set-based")  # fmt: skip
    return seeded


def summary_scenarios(mall: Mall, concurrency: int) -> list[tuple[harness.Scenario, int]]:
    auth = f"Authorization: Bearer {mall.guide_token}\r\n"
    path = f"{API}/guide/summary?days=30"
    return [(_paths(f"summary@{n}", "GET /guide/summary?days=30, the guide's 100k-entry history", path, auth), n)
            for n in (SUMMARY_CLIENTS, concurrency)]  # fmt: skip


def summary_target(results: list[harness.ScenarioResult], livez: harness.ScenarioResult) -> dict:
    one = [r for r in results if r.name == f"summary@{SUMMARY_CLIENTS}"]
    p99s = [r.p99_ms for r in one]
    worst = max(p99s)
    loaded = [r for r in results if r not in one]
    errors = sum(r.errors for r in results)
    detail = (
        f"p99 {statistics.median(p99s):.1f} ms at {SUMMARY_CLIENTS} client (median of {len(one)} rounds: "
        f"{_spread(p99s)}; p50 {statistics.median(r.p50_ms for r in one):.1f} ms; target < {SUMMARY_P99_MS:.0f})"
    )
    if loaded:
        rate = statistics.median(r.requests_per_s for r in loaded)
        detail += (f"; at {loaded[0].concurrency} clients {rate:,.0f} req/s = {rate / livez.requests_per_s:.2f} x livez "
                   f"{livez.requests_per_s:,.0f}, p99 {statistics.median(r.p99_ms for r in loaded):.1f} ms")  # fmt: skip
    if errors:
        detail += f"; {errors} errors"
    met = statistics.median(p99s) < SUMMARY_P99_MS and not errors
    return {"scenario": "summary", "met": met, "detail": detail + f" (worst round {worst:.1f} ms)"}


def _vacuum(engine, tables: tuple[str, ...]) -> None:
    import sqlalchemy as sa

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def settle_round(database_url: str, redis_url: str, mall: Mall, opts, n: int, log) -> dict:
    """Seed opts.entries due entries, then run the settlement sweep (workers.jobs.orders.settle_sub_orders: the
    cron's job, bounded batches of settlement.BATCH sub-orders, each its own transaction, the ledger's hook moving
    the batch's pending entries to available) until nothing is due; entries/s over the sweep's wall time."""
    import sqlalchemy as sa

    from mall.guides import ledger
    from mall.orders import settlement
    from workers.jobs.orders import settle_sub_orders

    per_sub = max(1, getattr(opts, "entries_per_sub_order", 2))
    with harness.app_engine(database_url, redis_url) as engine:
        with engine.begin() as conn:
            seeded = seed_due(conn, mall, opts.entries, per_sub, f"r{n + 1}")
        _vacuum(engine, ("users", "guides", "orders", "sub_orders", "guide_commission_entries", "guide_balances"))
        log(f"  [postgres] settle#{n + 1}: seeded {seeded['entries']:,} pending entries of {seeded['sub_orders']:,} "
            f"due sub-orders ({SETTLE_GUIDES:,} guides) in {seeded['seconds']}s, set-based")  # fmt: skip
        busy = harness.wait_for_quiet(getattr(opts, "quiet_wait", 0), log=log)
        database = engine.url.database
        cpu0 = harness.CpuSample.take([], database)
        profile = cProfile.Profile() if getattr(opts, "profile", False) else None
        started = time.perf_counter()
        swept = 0
        if profile:
            profile.enable()
        limit = getattr(opts, "settle_limit", 0.0)
        # one cron run's worth a call (50 batches of settlement.BATCH) until nothing is due, or --settle-limit is up
        while (batch := settle_sub_orders()) > 0:
            swept += batch
            if limit and time.perf_counter() - started > limit:
                break
        seconds = time.perf_counter() - started
        if profile:
            profile.disable()
            _log_profile(profile, log)
        cpu1 = harness.CpuSample.take([], database)
        with engine.connect() as conn:
            states = dict(conn.execute(sa.text(
                "SELECT state, COUNT(*) FROM guide_commission_entries WHERE id >= :first GROUP BY state"),
                {"first": seeded["first_entry"]}).all())  # fmt: skip
            unsettled = conn.scalar(sa.text("SELECT COUNT(*) FROM sub_orders WHERE id >= :first AND settled_at IS NULL"),
                                    {"first": seeded["first_sub_order"]})  # fmt: skip
    with harness.app_engine(database_url, redis_url):
        from api.extensions import db

        drift = ledger.audit(db.session)
    moved = states.get("available", 0)
    result = {**seeded, "round": n + 1, "swept_sub_orders": swept, "unsettled": unsettled, "available": moved,
              "states": states, "audit_mismatches": len(drift), "sweep_seconds": round(seconds, 2),
              "entries_per_s": round(moved / seconds, 1) if seconds else 0.0,
              "sub_orders_per_s": round(swept / seconds, 1) if seconds else 0.0, "batch": settlement.BATCH,
              "cpu_bench_pct": round(100 * (cpu1.client - cpu0.client) / seconds, 1),
              "cpu_database_pct": round(100 * (cpu1.database - cpu0.database) / seconds, 1),
              "cpu_other_pct": round(max(0.0, 100 * ((cpu1.machine - cpu0.machine) - (cpu1.client - cpu0.client)
                                                     - (cpu1.database - cpu0.database)) / seconds), 1),
              "machine_busy_before_pct": round(busy, 1)}  # fmt: skip
    # CPU the sweep used (this process + its PostgreSQL backends): entries per CPU second hardly depend on how busy
    # the machine is, and bound what the sweep does on a machine of its own (the two overlap on 2 cores)
    cpu = (cpu1.client - cpu0.client) + (cpu1.database - cpu0.database)
    result["cpu_s"] = round(cpu, 1)
    result["entries_per_cpu_s"] = round(moved / cpu, 1) if cpu else 0.0
    log(f"  [postgres] settle#{n + 1}: {swept:,} sub-orders settled, {moved:,} entries available in {seconds:.1f}s = "
        f"{result['entries_per_s']:,.0f} entries/s ({result['sub_orders_per_s']:,.0f} sub-orders/s); CPU bench "
        f"{result['cpu_bench_pct']}% / db {result['cpu_database_pct']}% / other {result['cpu_other_pct']}%; "
        f"{result['entries_per_cpu_s']:,.0f} entries per CPU second; audit mismatches {len(drift)}")  # fmt: skip
    return result


def _log_profile(profile, log, top: int = 25) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"/(mall|api)/", top)  # the project's own functions, by inclusive time
    log(out.getvalue())


def profile_summary(database_url: str, redis_url: str, mall: Mall, log, requests: int = 100) -> None:
    """`requests` summaries answered in this process (the app's test client, the same database), under cProfile."""
    from api import create_app

    app = create_app(harness.app_settings(database_url, redis_url))
    headers = {"Authorization": f"Bearer {mall.guide_token}"}
    with app.test_client() as client:
        assert client.get(f"{API}/guide/summary?days=30", headers=headers).status_code == 200
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for _ in range(requests):
            client.get(f"{API}/guide/summary?days=30", headers=headers)
        profile.disable()
        log(f"  summary in-process: {1000 * (time.perf_counter() - started) / requests:.1f} ms per request (profiled)")
    _log_profile(profile, log)


def settle_target(rounds: list[dict]) -> dict:
    rates_ = [r["entries_per_s"] for r in rounds]
    sound = all(r["available"] == r["swept_sub_orders"] * r["entries"] // r["sub_orders"] and not r["audit_mismatches"]
                for r in rounds)  # fmt: skip
    best = statistics.median(rates_)
    detail = (
        f"{rounds[0]['entries']:,} entries of {rounds[0]['sub_orders']:,} due sub-orders settled at "
        f"{best:,.0f} entries/s (median of {len(rounds)} rounds: {_spread(rates_)}; target >= {SETTLE_RATE:,})"
    )
    per_cpu = [r["entries_per_cpu_s"] for r in rounds]
    detail += f"; {statistics.median(per_cpu):,.0f} entries per CPU second (sweep + PostgreSQL)"
    partial = [r for r in rounds if r["unsettled"]]
    if partial:
        detail += (f"; stopped by --settle-limit in {len(partial)} round(s): {partial[0]['available']:,} of "
                   f"{partial[0]['entries']:,} entries settled in {partial[0]['sweep_seconds']} s")  # fmt: skip
    if not sound:
        detail += "; NOT every settled sub-order's entries available / balances audited"
    return {"scenario": "settle", "met": best >= SETTLE_RATE and sound, "detail": detail}


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
        log(f"  [{backend}] seeded a guide, its link and two checkout shoppers in {mall.seconds:.1f}s")
        # a long start timeout: on this 2-core machine other work can starve gunicorn's boot
        server = harness.Server(config, database_url=database_url, redis_url=redis_url, start_timeout=240)
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
            assert lines[orders[0]] == [(None, None, [])], lines
            ((guide_id, binding_id, earned),) = lines[orders[1]]
            assert (guide_id, binding_id) == (mall.guide_id, binding["binding_id"]), (lines, binding)
            assert len(earned) == 1 and earned[0][:2] == ("earn", "pending") and earned[0][2] > 0, earned
            log(f"  [{backend}] preflight: guided shopper bound ({binding['reason']['rule']}), its order's line "
                f"credited to guide {mall.guide_id} and earning {earned[0][2]} pending; the plain shopper's to "
                "nobody")  # fmt: skip
            mall.template_order = orders[1]
            results.append(checkout.measure(checkout.livez(), opts.concurrency, server, opts, backend, log))
            livez = results[0]
            if checkout._wanted("checkout", opts.scenarios):
                pairs = checkout_rounds(server, mall, opts, backend, log)
                results += [r for pair in pairs for r in pair]
                targets.append(checkout_target(pairs))
            if checkout._wanted("summary", opts.scenarios) and opts.summary_entries > 0:
                report["summary_history"] = summary_history(database_url, redis_url, mall, opts, backend, log)
                # the 1-client rounds first: a loaded round leaves gunicorn a backlog the next round would wait behind
                one, loaded = summary_scenarios(mall, opts.concurrency)
                summary = [checkout.measure(*one, server, opts, backend, log) for _ in range(max(1, opts.rounds))]
                summary.append(checkout.measure(*loaded, server, opts, backend, log))
                results += summary
                targets.append(summary_target(summary, livez))
                if getattr(opts, "profile", False):
                    profile_summary(database_url, redis_url, mall, log)
        rounds = settle_rounds(opts) if checkout._wanted("settle", opts.scenarios) else 0
        settled = [settle_round(database_url, redis_url, mall, opts, n, log) for n in range(rounds)]
        if settled:
            report["settlement"] = settled
            targets.append(settle_target(settled))
    report["results"] = [harness.as_dict(r) for r in results]
    report["targets"] = targets
    return report
