"""Live suite: the viewer's poll of a room and the room event streams, each beside /livez of the same server.

Seeds a throw-away PostgreSQL database built by the project's migrations, through the domain services: a
brand, its admin, a host with a bearer token, LINEUP products and a room that is live with the first product
pinned. Then one gunicorn API (the CLI's --workers/--threads, MALL_ENV=production) and one stream process
(`python -m api.live.stream`), both on a spare Redis database (BENCH_LIVE_REDIS_URL, empty at the start and
emptied at the end), and at --concurrency clients (default 32):

  livez         GET /livez: the yardstick, measured in the same run
  room_304      GET /api/v1/live/rooms/{id} with the room's ETag as If-None-Match (what a polling viewer
                sends while nothing changed): target >= 0.9 x livez
  room_200      the same without If-None-Match (a viewer's first poll, or after a change): >= 0.5 x livez
  link_open@32  POST /api/v1/live/links/open: each client a shopper of its own (bearer token minted like the
                checkout suite's) opening the cart link of a random lineup product; a shopper's repeated opens
                of a product merge into its cart line, as a viewer tapping twice does (quantity capped by the
                cart): >= 0.3 x livez
  livez_sse     GET /livez again while STREAMS SSE streams of the room are held open on the one stream
                process (by a helper process, so the load generator is not slowed by them): >= 0.8 x livez
  pin_fanout    PINS pins posted by the host over HTTP, PIN_GAP_S apart, while the streams stay open: for
                each pin and stream, the time from sending the POST to the stream receiving its `pin` event
                (so it includes the pin's transaction and the cache refresh). Target: every stream gets every
                pin, p95 < 300 ms.

The stream process's own CPU and memory (RSS) with the streams open are logged too: docs/operations.md plans
capacity from them. PostgreSQL only (on SQLite the suite says so and measures nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench import flows, harness
from bench.flash_sale import spare_redis

NAME = "live"
DESCRIPTION = "viewer poll (304 / 200), 1,000 SSE streams and a pin's fan-out, each vs /livez of the same server"

LINEUP = 20
STREAMS = 1_000
PINS = 20
PIN_GAP_S = 0.5
TARGETS = {"room_304": 0.9, "room_200": 0.5, "link_open": 0.3, "livez_sse": 0.8}
FANOUT_P95_MS = 300.0
TOKEN_TTL = 4 * 3600
REDIS_URL = os.environ.get("BENCH_LIVE_REDIS_URL", "redis://127.0.0.1:6379/12")
API = "/api/v1"


@dataclass
class Room:
    room_id: int
    products: list[int]
    host_token: str
    link_tokens: list[str]  # one cart link per lineup product
    shopper_tokens: list[str]  # --concurrency shoppers' bearer tokens


def seed(database_url: str, redis_url: str, shoppers: int) -> Room:
    from api.extensions import db
    from mall import clock, events
    from mall.catalog import services as catalog
    from mall.catalog import taxonomy
    from mall.identity import services as identity
    from mall.identity import tokens
    from mall.identity.roles import Actor, Role
    from mall.live import links, pinning, rooms

    with harness.app_engine(database_url, redis_url):
        s = db.session

        def commit():
            s.commit()
            events.discard(s)  # nothing for the (absent) workers

        admin = identity.bootstrap_platform_admin(s, email="platform@bench.invalid", name="Bench",
                                                  password=secrets.token_hex(16))  # fmt: skip
        platform = Actor(admin.id, Role.PLATFORM_ADMIN)
        brand = taxonomy.create_brand(s, actor=platform, slug="zhibo", name="Zhibo 直播")
        category = taxonomy.create_category(s, actor=platform, name="Tea")
        merchant = Actor(platform.user_id, Role.PLATFORM_ADMIN)
        products = []
        for n in range(LINEUP):
            product = catalog.create_product(
                s, actor=merchant, brand_id=brand.id, currency="CNY", category_id=category.id,
                title=f"Live tea {n} 直播茶", subtitle="bench", images=[f"https://img.bench.invalid/{n}.jpg"],
                tier="profit", skus=[{"specs": {"size": "250g"}, "price": 19900 + n, "list_price": 25900,
                                      "stock": 100_000, "weight_grams": 300}],
            )  # fmt: skip
            catalog.set_product_status(s, actor=merchant, product_id=product.id, status="active")
            products.append(product.id)
        host = identity.dev_login(s, role=Role.HOST, name="Bench host", brand_id=None)
        now = clock.now()
        room = rooms.create_room(s, actor=platform, brand_id=brand.id, title="Bench show 直播间", host_user_id=host.id,
                                 scheduled_start=now, scheduled_end=now + timedelta(hours=4),
                                 lineup=[{"product_id": p, "live_price": 9900} for p in products])  # fmt: skip
        commit()
        pinning.start(s, actor=platform, room_id=room.id)
        pinning.pin(s, actor=platform, room_id=room.id, product_id=products[0])
        commit()
        made = [links.create_link(s, actor=platform, room_id=room.id, product_id=p) for p in products]
        viewers = [identity.dev_login(s, role=Role.SHOPPER, name=f"Viewer {n}", brand_id=None) for n in range(shoppers)]
        commit()
        token, _ = tokens.issue(host, secret=harness.SECRET_KEY, ttl_seconds=TOKEN_TTL)
        return Room(room.id, products, token, [links.token(link, secret=harness.SECRET_KEY) for link in made],
                    [tokens.issue(v, secret=harness.SECRET_KEY, ttl_seconds=TOKEN_TTL)[0] for v in viewers])  # fmt: skip


class StreamProcess:
    """`python -m api.live.stream` on a free port, in its own process group."""

    def __init__(self, redis_url: str):
        self.port = harness.free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.live.stream", "--host", harness.HOST, "--port", str(self.port),
             "--redis-url", redis_url], cwd=harness.ROOT, start_new_session=True,
            preexec_fn=harness._die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{harness.HOST}:{self.port}/livez", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("the stream process did not answer /livez") from None
                time.sleep(0.1)

    def cpu_s(self) -> float:
        return harness._proc_cpu(self.proc.pid)

    def rss_mb(self) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


# ---- the helper that holds the streams (a process of its own: `python -m bench.live hold ...`) -----------


class _Viewer(asyncio.Protocol):
    def __init__(self, holder: _Holder):
        self.holder, self.buffer, self.hello = holder, b"", False

    def connection_made(self, transport) -> None:
        transport.write(f"GET {API}/live/rooms/{self.holder.room_id}/events HTTP/1.1\r\nHost: bench\r\n"
                        f"Accept: text/event-stream\r\n\r\n".encode())  # fmt: skip

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        *blocks, self.buffer = self.buffer.split(b"\n\n")
        for block in blocks:
            if b"event: hello" in block and not self.hello:
                self.hello = True
                self.holder.connected += 1
            elif b"event: pin" in block:
                data_line = block[block.index(b"data: ") + 6 :].split(b"\n", 1)[0]
                self.holder.received.append((json.loads(data_line)["payload"]["segment_id"], now))

    def connection_lost(self, exc) -> None:
        self.holder.lost += 1


class _Holder:
    def __init__(self, port: int, room_id: int, streams: int):
        self.port, self.room_id, self.streams = port, room_id, streams
        self.connected = self.lost = 0
        self.received: list[tuple[int, float]] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        threading.Thread(target=lambda: (sys.stdin.readline(), loop.call_soon_threadsafe(done.set)),
                         daemon=True).start()  # fmt: skip
        for start in range(0, self.streams, 100):  # in batches: the listener's backlog is not flooded
            await asyncio.gather(*(loop.create_connection(lambda: _Viewer(self), harness.HOST, self.port)
                                   for _ in range(start, min(self.streams, start + 100))))  # fmt: skip
        deadline = time.monotonic() + 30
        while self.connected < self.streams and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        print(json.dumps({"ready": self.connected}), flush=True)
        await done.wait()
        print(json.dumps({"connected": self.connected, "lost": self.lost, "received": self.received}), flush=True)


def hold(argv: list[str]) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port, room_id, streams = (int(a) for a in argv)
    asyncio.run(_Holder(port, room_id, streams).run())


class Streams:
    """STREAMS streams held open by the helper process until `report()`."""

    def __init__(self, port: int, room_id: int, streams: int):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.live", "hold", str(port), str(room_id),
                                      str(streams)], cwd=harness.ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, preexec_fn=harness._die_with_parent)  # fmt: skip
        self.ready = json.loads(self.proc.stdout.readline())["ready"]

    def report(self) -> dict:
        self.proc.stdin.write("report\n")
        self.proc.stdin.flush()
        found = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=30)
        return found

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


# ---- the suite -----------------------------------------------------------------------------------


def _paths(name: str, description: str, path: str, headers: str = "") -> harness.Scenario:
    def client(rng):
        paths = harness.RandomPaths(lambda r: path, rng)
        paths.headers = headers
        return paths

    return harness.Scenario(name, description, client)


def _link_open(room: Room, clients: int) -> flows.Flow:
    def script(index, rng):
        auth = {"Authorization": f"Bearer {room.shopper_tokens[index % len(room.shopper_tokens)]}"}
        while True:
            body = {"token": rng.choice(room.link_tokens), "room_id": room.room_id}
            yield flows.Request("POST", f"{API}/live/links/open", body, auth)
            yield flows.DONE

    return flows.Flow(f"link_open@{clients}", "POST /live/links/open: a shopper per client, a random lineup link",
                      script, unit="open")  # fmt: skip


def _pin(base_url: str, room: Room, product_id: int) -> dict:
    request = urllib.request.Request(f"{base_url}{API}/live/rooms/{room.room_id}/pin", method="POST",
                                     data=json.dumps({"product_id": product_id}).encode(),
                                     headers={"Authorization": f"Bearer {room.host_token}",
                                              "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def fanout(server: harness.Server, stream: StreamProcess, room: Room, log) -> harness.ScenarioResult:
    """STREAMS streams open; PINS pins; each pin's arrival on each stream, from the moment its POST was sent."""
    idle_rss = stream.rss_mb()
    streams = Streams(stream.port, room.room_id, STREAMS)
    try:
        log(f"  streams open: {streams.ready:,} of {STREAMS:,}; stream process RSS {stream.rss_mb():.0f} MB "
            f"({idle_rss:.0f} MB before)")  # fmt: skip
        result = {"ready": streams.ready, "rss_mb": round(stream.rss_mb(), 1), "rss_idle_mb": round(idle_rss, 1)}
        yield result  # the caller measures /livez with the streams open here
        cpu0, sent, answered = stream.cpu_s(), {}, {}
        started = time.perf_counter()
        for n in range(PINS):
            t0 = time.time()
            segment = _pin(server.base_url, room, room.products[1 + n % (len(room.products) - 1)])
            sent[segment["id"]], answered[segment["id"]] = t0, time.time()
            time.sleep(PIN_GAP_S)
        wall = time.perf_counter() - started
        cpu1 = stream.cpu_s()
        found = streams.report()
    finally:
        streams.close()
    latencies = sorted(at - sent[seg] for seg, at in found["received"] if seg in sent)
    after_answer = sorted(at - answered[seg] for seg, at in found["received"] if seg in sent)
    requests = sorted(answered[seg] - sent[seg] for seg in sent)
    expected = PINS * streams.ready
    missed = expected - len(latencies)
    ms = 1000.0
    result.update(
        received=len(latencies), expected=expected, missed=missed, lost=found["lost"],
        stream_cpu_pct=round(100 * (cpu1 - cpu0) / wall, 1),
        stream_cpu_ms_per_pin=round(1000 * (cpu1 - cpu0) / PINS, 2),
        p50_ms=round(harness.percentile(latencies, 50) * ms, 1), p95_ms=round(harness.percentile(latencies, 95) * ms, 1),
        p99_ms=round(harness.percentile(latencies, 99) * ms, 1), max_ms=round((latencies[-1] if latencies else 0) * ms, 1),
        # the split: the pin's own POST (transaction, cache render, publish) and what the streams took after its
        # answer (negative: the event arrived before the answer did)
        pin_request_p50_ms=round(harness.percentile(requests, 50) * ms, 1),
        pin_request_max_ms=round((requests[-1] if requests else 0) * ms, 1),
        after_answer_p50_ms=round(harness.percentile(after_answer, 50) * ms, 1),
        after_answer_p95_ms=round(harness.percentile(after_answer, 95) * ms, 1),
    )  # fmt: skip


def run(backend: str, opts, log=print) -> dict:
    config = harness.ServerConfig(workers=opts.workers, worker_class=opts.worker_class, threads=opts.threads)
    report = {"suite": NAME, "backend": backend, "server": config.describe() + " + 1 stream process",
              "concurrency": opts.concurrency, "results": [], "targets": []}  # fmt: skip
    if backend != "postgres":
        log(f"  [{backend}] skipped: the live suite runs on PostgreSQL only")
        return report
    quiet = getattr(opts, "quiet_wait", 0)
    with harness.throwaway_database(backend, NAME, pg_admin_url=opts.pg_admin_url) as database_url, \
            spare_redis(REDIS_URL) as redis_url:  # fmt: skip
        harness.migrate(database_url, redis_url)
        room = seed(database_url, redis_url, opts.concurrency)
        log(f"  [{backend}] room {room.room_id}: live, {LINEUP} items in its lineup, the first pinned")
        with harness.Server(config, database_url=database_url, redis_url=redis_url) as server:
            view = f"{API}/live/rooms/{room.room_id}"
            with urllib.request.urlopen(server.base_url + view, timeout=10) as resp:
                etag = resp.headers["ETag"]

            def measure(scenario: harness.Scenario | flows.Flow) -> harness.ScenarioResult:
                busy = harness.wait_for_quiet(quiet, log=log)
                how = flows.measure if isinstance(scenario, flows.Flow) else harness.measure
                result = how(scenario, server, concurrency=opts.concurrency, warmup=opts.warmup,
                             duration=opts.duration)  # fmt: skip
                result.extra["machine_busy_before_pct"] = round(busy, 1)
                log(f"  [{backend}] {result.name:<10} {result.requests_per_s:>7,.0f} req/s  p50 "
                    f"{result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}")  # fmt: skip
                for sample in result.extra.get("error_samples", []):
                    log(f"      {sample}")
                return result

            livez = measure(_paths("livez", "GET /livez", "/livez"))
            results = [
                livez,
                measure(
                    _paths("room_304", "GET the room with a matching If-None-Match", view, f"If-None-Match: {etag}\r\n")
                ),  # fmt: skip
                measure(_paths("room_200", "GET the room (no If-None-Match)", view)),
                measure(_link_open(room, opts.concurrency)),
            ]
            stream = StreamProcess(redis_url)
            try:
                steps = fanout(server, stream, room, log)
                held = next(steps)
                idle0 = stream.cpu_s()
                under = measure(_paths("livez_sse", f"GET /livez with {held['ready']:,} SSE streams open", "/livez"))
                held["stream_cpu_while_held_s"] = round(stream.cpu_s() - idle0, 2)
                results.append(under)
                with contextlib.suppress(StopIteration):
                    next(steps)
            finally:
                stream.close()
    report["results"] = [harness.as_dict(r) for r in results]
    report["fanout"] = held
    for result in results[1:]:
        ratio = result.requests_per_s / livez.requests_per_s if livez.requests_per_s else 0.0
        result_dict = next(r for r in report["results"] if r["name"] == result.name)
        result_dict["extra"]["ratio_to_livez"] = round(ratio, 3)
        target = TARGETS[result.name.split("@")[0]]
        met = ratio >= target and result.errors == 0
        report["targets"].append({"scenario": result.name, "met": met, "detail": (
            f"{result.requests_per_s:,.0f} req/s = {ratio:.2f} x livez {livez.requests_per_s:,.0f} req/s "
            f"(target >= {target})" + (f"; {result.errors} errors" if result.errors else ""))})  # fmt: skip
    met = held["missed"] == 0 and held["lost"] == 0 and held["ready"] == STREAMS and held["p95_ms"] < FANOUT_P95_MS
    report["targets"].append({"scenario": "pin_fanout", "met": met, "detail": (
        f"{PINS} pins to {held['ready']:,} streams: {held['received']:,} of {held['expected']:,} events received, "
        f"p50 {held['p50_ms']} ms, p95 {held['p95_ms']} ms (target < {FANOUT_P95_MS:.0f}), p99 {held['p99_ms']} ms, "
        f"max {held['max_ms']} ms (the pin's POST itself p50 {held['pin_request_p50_ms']} ms, max "
        f"{held['pin_request_max_ms']} ms; after its answer p50 {held['after_answer_p50_ms']} ms, p95 "
        f"{held['after_answer_p95_ms']} ms); stream process {held['stream_cpu_ms_per_pin']} ms CPU per pin, "
        f"{held['stream_cpu_while_held_s']} s CPU while /livez was measured, RSS {held['rss_mb']} MB with the "
        f"streams open ({held['rss_idle_mb']} MB before)")})  # fmt: skip
    return report


if __name__ == "__main__":
    if sys.argv[1:2] == ["hold"]:
        hold(sys.argv[2:])
