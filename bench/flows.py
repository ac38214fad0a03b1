"""Scripted HTTP load: clients that POST JSON with headers and run multi-request operations.

`harness.measure` drives GETs of independent paths. Checkout is a conversation: add a line,
quote it, place the order with an Idempotency-Key, pay it, each request using what the
previous one answered. Here every simulated client runs a *script*, a generator that yields
`Request`s and receives `Response`s, and yields `DONE` when one operation (the unit that is
counted and timed: a whole checkout, one placement) is complete:

    def checkout(index, rng):
        while True:
            cart = yield Request("POST", "/api/v1/cart/lines", {"sku_id": 7}, headers=auth)
            ...
            yield DONE

A unit's latency runs from sending its first timed request to receiving the response before
`DONE`; requests marked `timed=False` (set-up between units) are not part of any unit. A
response whose status is not in the request's `expect` counts as an error, and that client's
script starts over. Like `harness.measure`: keep-alive connections to 127.0.0.1 only, a
closed loop (each client sends its next request when the previous answer arrived), figures
over the `duration` seconds after `warmup`, CPU split between load generator, gunicorn,
PostgreSQL and the rest of the machine.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from bench import harness

DONE = object()  # yielded by a script: the operation that started with its first timed request is complete


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: object = None
    headers: dict = field(default_factory=dict)
    expect: tuple[int, ...] = (200,)
    timed: bool = True

    def encode(self, host: str) -> bytes:
        body = b"" if self.json is None else json.dumps(self.json, separators=(",", ":")).encode()
        head = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", "Accept: application/json",
                "User-Agent: mall-bench"]  # fmt: skip
        if self.json is not None or self.method in ("POST", "PUT", "PATCH"):
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


Script = Generator[object, Response | None, None]


@dataclass
class Flow:
    """A scenario whose clients run scripts; `unit` names what one DONE counts (shown in reports)."""

    name: str
    description: str
    new_script: Callable[[int, random.Random], Script]  # (client index, its rng)
    unit: str = "request"


class _Stats:
    def __init__(self, measure_from: float, end: float):
        self.measure_from, self.end = measure_from, end
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.requests = 0
        self.errors = 0
        self.error_samples: list[str] = []

    def in_window(self, at: float) -> bool:
        return self.measure_from <= at <= self.end

    def failure(self, kind: str, detail: str = "") -> None:
        if self.in_window(time.perf_counter()):
            self.statuses[kind] += 1
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{kind}: {detail[:300]}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    status = int(head[9:12])
    close = b"\r\nconnection: close" in lower
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        eol = lower.find(b"\r\n", at + 2)
        body = await reader.readexactly(int(lower[at + 17 : eol]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        body = b"".join(chunks)
    else:
        body, close = await reader.read(), True
    return status, body, close


async def _client(flow: Flow, index: int, port: int, stats: _Stats, request_timeout: float, seed: int) -> None:
    host, rng = f"{harness.HOST}:{port}", random.Random(seed * 1000 + index)
    script, reader, writer = flow.new_script(index, rng), None, None
    item, unit_started = next(script), None
    try:
        while time.perf_counter() < stats.end:
            if item is DONE:
                finished = time.perf_counter()
                if unit_started is not None and stats.in_window(finished):
                    stats.latencies.append(finished - unit_started)
                unit_started = None
                item = script.send(None)
                continue
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection(harness.HOST, port)
                except OSError as exc:
                    stats.failure("connect_error", str(exc))
                    await asyncio.sleep(0.05)
                    continue
            started = time.perf_counter()
            if item.timed and unit_started is None:
                unit_started = started
            try:
                writer.write(item.encode(host))
                status, body, close = await asyncio.wait_for(_read_response(reader), request_timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                stats.failure("timeout" if isinstance(exc, TimeoutError) else "connection_lost", repr(exc))
                writer.close()
                reader = writer = None
                script.close()
                script, unit_started = flow.new_script(index, rng), None
                item = next(script)
                continue
            finished = time.perf_counter()
            if stats.in_window(finished):
                stats.requests += 1
                stats.statuses[str(status)] += 1
            if close:
                writer.close()
                reader = writer = None
            if status not in item.expect:
                if stats.in_window(finished):
                    stats.errors += 1
                    if len(stats.error_samples) < 5:
                        stats.error_samples.append(f"{item.method} {item.path} -> {status}: {body[:300]!r}")
                script.close()
                script, unit_started = flow.new_script(index, rng), None
                item = next(script)
                continue
            item = script.send(Response(status, body))
    finally:
        script.close()
        if writer is not None:
            writer.close()


def measure(flow: Flow, server: harness.Server, *, concurrency: int, warmup: float = 2.0, duration: float = 10.0,
            seed: int = 1, request_timeout: float = 10.0) -> harness.ScenarioResult:  # fmt: skip
    """Closed-loop load of `concurrency` scripted clients; `requests_per_s` and the percentiles are
    per unit (DONE), the HTTP request rate is in `extra`."""
    pids = server.pids()
    holder: dict = {}

    async def main():
        start = time.perf_counter()
        stats = _Stats(start + warmup, start + warmup + duration)
        holder["stats"] = stats
        tasks = [asyncio.ensure_future(_client(flow, i, server.port, stats, request_timeout, seed))
                 for i in range(concurrency)]  # fmt: skip
        await asyncio.sleep(max(0.0, stats.measure_from - time.perf_counter()))
        holder["cpu0"] = harness.CpuSample.take(pids, server.database)
        await asyncio.sleep(max(0.0, stats.end - time.perf_counter()))
        holder["cpu1"] = harness.CpuSample.take(pids, server.database)
        _, pending = await asyncio.wait(tasks, timeout=0.5)  # requests in flight at the end are not counted
        for task in pending:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):  # a bug in a script, not a server error: stop loudly
                raise outcome

    asyncio.run(main())
    stats, c0, c1 = holder["stats"], holder["cpu0"], holder["cpu1"]
    lat = sorted(stats.latencies)

    def pct(seconds: float) -> float:
        return round(100 * seconds / duration, 1)

    client, app, database = c1.client - c0.client, c1.server - c0.server, c1.database - c0.database
    return harness.ScenarioResult(
        name=flow.name,
        description=flow.description,
        requests_per_s=len(lat) / duration,
        p50_ms=harness.percentile(lat, 50) * 1000,
        p90_ms=harness.percentile(lat, 90) * 1000,
        p99_ms=harness.percentile(lat, 99) * 1000,
        max_ms=(lat[-1] if lat else 0.0) * 1000,
        ok=len(lat),
        errors=stats.errors,
        statuses=dict(stats.statuses),
        duration_s=duration,
        concurrency=concurrency,
        cpu_client_pct=pct(client),
        cpu_server_pct=pct(app),
        cpu_database_pct=pct(database),
        cpu_other_pct=max(0.0, pct((c1.machine - c0.machine) - client - app - database)),
        cpu_machine_pct=pct(c1.machine - c0.machine),
        cpu_ms_per_request=round(1000 * (app + database) / max(1, len(lat)), 3),
        extra={"unit": flow.unit, "http_requests_per_s": round(stats.requests / duration, 1),
               "error_samples": stats.error_samples},
    )  # fmt: skip
