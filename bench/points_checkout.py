"""Points at checkout (ADR 0029): the quote with points and placement with points against the same without, on
one gunicorn in one run (the comparison is the target, so both sides see the same machine).

Seeds a throw-away database with bench/checkout.py's seeder (staff, six brands with shipping policies, products
with ample stock), then:
  - two shoppers with the same 20-line cart over 5 brands; one holds 1,000,000 points in 10 lots;
  - two sets of --concurrency placement clients over SKUs no other client touches (bench/checkout.py's prepared
    full carts); every shopper of the points set holds POINTS_PER_SHOPPER points in LOTS lots of different
    expiries (so a placement walks several lots, oldest first).
Scenarios (each --warmup then --duration seconds):
  quote20@1          POST /checkout/quote, 20 lines, a member without points (the step reads no table)
  quote20+points@1   the same with `points` = the most usable (the member's balance comes with the shopper row)
  place@N            POST /orders, 2 lines of 2 brands, no points
  place+points@N     the same paying POINTS_PER_ORDER points each (a reservation: lock, lots, entries, holds)
Targets: quote with points p99 < 30 ms; place+points at least 0.85x place's orders/s.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from bench import checkout, flows, harness

NAME = "points_checkout"
DESCRIPTION = "the checkout quote with points (p99) and placement with points vs without, same run"
API = checkout.API
LOTS = 5
POINTS_PER_ORDER = 1000  # 10.00 yuan of an order of about 48.00 (the cap is half)
POINTS_PER_SHOPPER = POINTS_PER_ORDER * checkout.CART_LINES // checkout.LINES_PER_ORDER
QUOTE_POINTS = 1_000_000
MAX_P99_MS = 30.0
MIN_RATIO = 0.85


def _grant(session, user_id: int, points: int, lots: int) -> None:
    """`points` in `lots` lots a day apart in expiry, through the ledger (as operators' credits would)."""
    from mall import clock
    from mall.members import ledger

    now = clock.now()
    for n in range(lots):
        ledger.grant(session, user_id=user_id, amount=points // lots, kind="adjust", key=f"bench:{user_id}:{n}",
                     now=now, expires_at=now + timedelta(days=60 + n), reason={"rule": "bench"})  # fmt: skip


def seed(database_url: str, redis_url: str, *, placers: int, orders_capacity: int) -> dict:
    from api.extensions import db
    from mall import events

    started = time.perf_counter()
    with harness.app_engine(database_url, redis_url):
        session = db.session
        seeder = checkout._Seeder(session, harness.SECRET_KEY)
        seeder.staff()

        def commit():
            session.commit()
            events.discard(session)

        skus = []
        for brand in range(5):
            for k in range(4):
                skus += seeder.product(brand, skus=1, price=3900 + 2600 * ((brand * 4 + k) % 11))[1]
        quantities = [1 + (i % 3 == 0) for i in range(checkout.QUOTE_LINES)]
        plain, member = seeder.shopper("quote-plain"), seeder.shopper("quote-points")
        for shopper in (plain, member):
            seeder.add_lines(shopper, skus, quantities)
        _grant(session, member.user_id, QUOTE_POINTS, 10)
        commit()
        without, lines, n_without = checkout.prepare_placers(seeder, commit, placers=placers,
                                                             orders_capacity=orders_capacity)  # fmt: skip
        with_points, more, n_with = checkout.prepare_placers(seeder, commit, placers=placers, name="points",
                                                             orders_capacity=orders_capacity)  # fmt: skip
        for placer in with_points:
            for user_id in sorted({shopper.user_id for shopper, _ in placer.pairs}):
                _grant(session, user_id, POINTS_PER_SHOPPER * 2, LOTS)  # twice: room for re-adds
            commit()
        checkout._analyze(session)
    counts = {"shoppers": 2 + n_without + n_with, "prepared_orders": (lines + more) // checkout.LINES_PER_ORDER}
    return {"plain": plain, "member": member, "without": without, "with_points": with_points, "counts": counts,
            "seconds": time.perf_counter() - started}  # fmt: skip


def preflight(base_url: str, shop: dict) -> dict:
    member, plain = shop["member"], shop["plain"]
    status, shown = checkout._call(
        base_url, "POST", f"{API}/checkout/quote", {"line_ids": member.line_ids}, member.auth
    )
    assert status == 200 and shown["points"]["max_points"] > 0, (status, shown)
    most = shown["points"]["max_points"]
    status, used = checkout._call(base_url, "POST", f"{API}/checkout/quote",
                                  {"line_ids": member.line_ids, "points": most}, member.auth)  # fmt: skip
    assert status == 200 and used["points"]["applied_points"] == most, (status, used)
    status, none = checkout._call(base_url, "POST", f"{API}/checkout/quote", {"line_ids": plain.line_ids}, plain.auth)
    assert status == 200 and none["points"]["max_points"] == 0, (status, none)
    return {"max_points": most, "max_value": shown["points"]["max_value"], "payable": shown["totals"]["payable"],
            "payable_with_points": used["totals"]["payable"]}  # fmt: skip


def _quote(shopper, points: int):
    def script(index, rng):
        body = {
            "line_ids": shopper.line_ids,
            "address_id": shopper.address_id,
            **({"points": points} if points else {}),
        }
        while True:
            yield flows.Request("POST", f"{API}/checkout/quote", body, shopper.auth)
            yield flows.DONE

    return script


def run(backend: str, opts, log=print) -> dict:
    rounds = max(1, opts.rounds)  # each pair alternates, the order swapped every round (drift hits both alike)
    capacity = int(checkout.PLACE_CAPACITY * (opts.warmup + opts.duration) * rounds)
    config = harness.ServerConfig(workers=opts.workers, worker_class=opts.worker_class, threads=opts.threads)
    n, results = opts.concurrency, []
    with (
        checkout.spare_redis(checkout.REDIS_URL) as redis_url,
        harness.throwaway_database(backend, NAME, pg_admin_url=opts.pg_admin_url) as database_url,
    ):
        harness.migrate(database_url, redis_url)
        shop = seed(database_url, redis_url, placers=n, orders_capacity=capacity)
        log(f"  [{backend}] seeded {shop['counts']} in {shop['seconds']:.1f}s")
        server = harness.Server(config, database_url=database_url, redis_url=redis_url)
        server.env.update(PAYMENT_GATEWAY="offline", MALL_ENV="production", SECRET_KEY=harness.SECRET_KEY)
        with server:
            checked = preflight(server.base_url, shop)
            log(f"  [{backend}] preflight: {checked}")
            quotes = [
                (
                    flows.Flow(
                        "quote20@1",
                        "POST /checkout/quote, 20 lines, no points held",
                        _quote(shop["plain"], 0),
                        unit="quote",
                    ),
                    1,
                ),
                (
                    flows.Flow(
                        "quote20+points@1",
                        "the same, paying the most points usable",
                        _quote(shop["member"], checked["max_points"]),
                        unit="quote",
                    ),
                    1,
                ),
            ]
            places = [
                (flows.Flow(f"place@{n}", "POST /orders, 2 lines of 2 brands, no points",
                            checkout.place_script(shop["without"]), unit="order"), n),
                (flows.Flow(f"place+points@{n}", f"the same, paying {POINTS_PER_ORDER} points",
                            checkout.place_script(shop["with_points"], {"points": POINTS_PER_ORDER}), unit="order"), n),
            ]  # fmt: skip
            for r in range(rounds):
                for pair in (quotes, places):
                    for scenario, clients in pair if r % 2 == 0 else pair[::-1]:
                        if checkout._wanted(scenario.name, opts.scenarios):
                            results.append(checkout.measure(scenario, clients, server, opts, backend, log))
    by_name: dict[str, list] = {}
    for r in results:
        by_name.setdefault(r.name.split("@")[0], []).append(r)
    return {"suite": NAME, "backend": backend, "seeded": shop["counts"], "preflight": checked,
            "server": config.describe(), "concurrency": n, "results": [harness.as_dict(r) for r in results],
            "targets": _targets(by_name, backend)}  # fmt: skip


def _targets(by_name: dict, backend: str) -> list[dict]:
    """Per target the median over the rounds, with every round's figure."""
    found, note = [], "" if backend == "postgres" else ", targets are set for PostgreSQL"
    if quotes := by_name.get("quote20+points"):
        p99s = [q.p99_ms for q in quotes]
        p99, errors = statistics.median(p99s), sum(q.errors for q in quotes)
        detail = (f"p99 {p99:.1f} ms, median of {len(p99s)} rounds ({', '.join(f'{x:.1f}' for x in p99s)}; target < "
                  f"{MAX_P99_MS:.0f}), {errors} errors{note}")  # fmt: skip
        found.append({"scenario": quotes[0].name, "met": errors == 0 and p99 < MAX_P99_MS, "detail": detail})
    plain, points = by_name.get("place"), by_name.get("place+points")
    if plain and points:
        ratios = [
            b.requests_per_s / a.requests_per_s if a.requests_per_s else 0.0 for a, b in zip(plain, points, strict=True)
        ]
        cpu = [a.cpu_ms_per_request / b.cpu_ms_per_request if b.cpu_ms_per_request else 0.0  # plain / with points
               for a, b in zip(plain, points, strict=True)]  # fmt: skip
        ratio, errors = statistics.median(ratios), sum(r.errors for r in plain + points)
        found.append({"scenario": points[0].name, "met": ratio >= MIN_RATIO and errors == 0,
                      "detail": f"{ratio:.2f}x placements/s with points vs without, median of {len(ratios)} rounds "
                                f"({', '.join(f'{x:.2f}' for x in ratios)}; target >= {MIN_RATIO}x); CPU cost ratio "
                                f"{statistics.median(cpu):.2f}{note}"})  # fmt: skip
    return found
