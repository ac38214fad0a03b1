"""Shared benchmark pieces: throw-away databases, a gunicorn under test, a cheap HTTP load
generator, and percentile/report formatting.

Everything here talks to 127.0.0.1 only and cleans up after itself: the gunicorn process
group is terminated (and killed if it lingers) and the throw-away database is dropped even
when a run fails or is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
HOST = "127.0.0.1"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# One secret per benchmark run: 40 characters, as production demands 32+.
SECRET_KEY = secrets.token_hex(20)


# ---- throw-away databases -------------------------------------------------------------------


def require_local(url: str) -> None:
    """The benchmarks create and drop databases: refuse anything but this machine."""
    from sqlalchemy.engine import make_url

    host = make_url(url).host or ""
    if host not in LOCAL_HOSTS:
        raise SystemExit(f"bench: refusing to use a database on {host!r}; only 127.0.0.1 is allowed")


@contextlib.contextmanager
def throwaway_database(backend: str, suite: str, *, pg_admin_url: str, name: str | None = None) -> Iterator[str]:
    """A new, empty database for one suite (`name`, default bench_<suite>_<pid>); yields its DATABASE_URL and
    removes it afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"bench_{suite}_") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    require_local(pg_admin_url)
    name = name or f"bench_{suite}_{os.getpid()}"
    admin_dsn = make_url(pg_admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_dsn).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def kept_database(name: str, *, pg_admin_url: str) -> Iterator[str]:
    """A database kept between runs (created when missing): yields its DATABASE_URL and leaves it in place."""
    import psycopg
    from sqlalchemy.engine import make_url

    require_local(pg_admin_url)
    admin_dsn = make_url(pg_admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(admin_dsn).set(database=name).render_as_string(hide_password=False)


def app_settings(database_url: str, redis_url: str):
    from mall.config import Settings

    return Settings.from_env(
        {}, env="production", secret_key=SECRET_KEY, database_url=database_url, redis_url=redis_url
    )


@contextlib.contextmanager
def app_engine(database_url: str, redis_url: str):
    """The engine the app itself builds for this URL (same driver and options), inside its app context."""
    from api import create_app
    from api.extensions import db

    app = create_app(app_settings(database_url, redis_url))
    with app.app_context():
        try:
            yield db.engine
        finally:
            db.engine.dispose()


def migrate(database_url: str, redis_url: str) -> None:
    """The schema comes from the project's migrations, exactly as in production."""
    from flask_migrate import upgrade

    with app_engine(database_url, redis_url):
        upgrade()


# ---- the server under test ------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    workers: int = 2
    worker_class: str = "gthread"
    threads: int = 4

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.worker_class}, {self.workers} workers{threads}"


def _postgres_database(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "postgresql" else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """`gunicorn wsgi:app` on a free 127.0.0.1 port, in production mode, in its own process group."""

    def __init__(self, config: ServerConfig, *, database_url: str, redis_url: str, start_timeout: float = 60):
        self.config = config
        self.port = free_port()
        self.start_timeout = start_timeout
        self.database = _postgres_database(database_url)
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MALL_ENV": "production",
            "SECRET_KEY": SECRET_KEY,
            "RATE_LIMITS": os.environ.get("RATE_LIMITS", "off"),  # a bench hammers: RATE_LIMITS=on to measure them
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="bench_gunicorn_", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> Server:
        c = self.config
        cmd = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"{HOST}:{self.port}",
               "--workers", str(c.workers), "--worker-class", c.worker_class, "--threads", str(c.threads),
               "--keep-alive", "75", "--backlog", "2048", "--timeout", "60", "--graceful-timeout", "5",
               "--log-level", "warning"]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/livez", timeout=2) as resp:
                    if resp.status == 200 and len(self.worker_pids()) >= self.config.workers:
                        time.sleep(1.0)  # let the last worker finish importing the app
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer /livez within {self.start_timeout:.0f}s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(p) for p in children]

    def pids(self) -> list[int]:
        return ([self.proc.pid] if self.proc else []) + self.worker_pids()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __exit__(self, *exc) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


def get_json(url: str, timeout: float = 10):
    import json

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read())


# ---- CPU accounting (Linux /proc; zeros elsewhere) ------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _machine_busy() -> float:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICK


def _database_cpu(database: str | None) -> float:
    """CPU seconds of the PostgreSQL backends serving `database` (their title names it)."""
    if not database:
        return 0.0
    total, marker = 0.0, f" {database} ".encode()
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{entry.name}/comm").read_bytes().strip() == b"postgres" and marker in (
                        Path(f"/proc/{entry.name}/cmdline").read_bytes()
                    ):
                        total += _proc_cpu(int(entry.name))
    return total


def _database_processes(database: str) -> dict[int, float]:
    """CPU seconds per PostgreSQL process serving `database`: its backends (their title names it) and the
    parallel workers they lead (titled "parallel worker for PID <leader>")."""
    marker, titles = f" {database} ".encode(), {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{entry.name}/comm").read_bytes().strip() == b"postgres":
                        titles[int(entry.name)] = Path(f"/proc/{entry.name}/cmdline").read_bytes()
    ours = {pid for pid, title in titles.items() if marker in title}
    ours |= {pid for pid, title in titles.items()
             if any(f"parallel worker for PID {leader}".encode() in title for leader in ours)}  # fmt: skip
    return {pid: _proc_cpu(pid) for pid in ours}


class DatabaseCpuMeter:
    """PostgreSQL CPU seconds spent for `database` while the block runs, parallel workers included: they exit
    with their query (taking their counters along), so a thread samples every process a few times a second and
    keeps each one's last reading (a worker's last fraction of a second is missed)."""

    def __init__(self, database: str, interval: float = 0.2):
        self.database, self.interval, self.seconds = database, interval, 0.0
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = False

    def _sample(self) -> None:
        self._last.update(_database_processes(self.database))

    def _loop(self) -> None:
        while not self._stop:
            time.sleep(self.interval)
            self._sample()

    def __enter__(self) -> DatabaseCpuMeter:
        import threading

        self._start = _database_processes(self.database)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join()
        self._sample()
        self.seconds = sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._last.items())


@dataclass
class CpuSample:
    client: float
    server: float
    database: float
    machine: float

    @classmethod
    def take(cls, server_pids: list[int], database: str | None) -> CpuSample:
        return cls(time.process_time(), sum(_proc_cpu(p) for p in server_pids), _database_cpu(database),
                   _machine_busy())  # fmt: skip


def wait_for_quiet(max_wait: float, *, busy_below: float = 25.0, log=print) -> float:
    """Wait up to `max_wait` seconds for the machine to be nearly idle before measuring.

    Whatever else runs (a test suite, a build) takes CPU from the server under test and the
    figures with it. Call this while the benchmark's own processes are idle: it samples the
    machine's busy CPU (in % of one core) each second and returns the last sample, once below
    `busy_below` or when time is up.
    """
    deadline = time.monotonic() + max_wait
    told = False
    while True:
        before = _machine_busy()
        time.sleep(1.0)
        busy = 100 * (_machine_busy() - before)
        if busy < busy_below or time.monotonic() >= deadline:
            return busy
        if not told:
            log(f"  waiting up to {max_wait:.0f}s for other work to finish ({busy:.0f}% of a core busy elsewhere)")
            told = True


# ---- the HTTP load generator ----------------------------------------------------------------


class Client(Protocol):
    """One connection's request stream: what to ask next, and what came back."""

    def next(self) -> str: ...

    def seen(self, status: int, body: bytes) -> None: ...


@dataclass
class Scenario:
    name: str
    description: str
    new_client: Callable[[random.Random], Client]


class RandomPaths:
    """A stateless client: every request is `make(rng)`."""

    def __init__(self, make: Callable[[random.Random], str], rng: random.Random):
        self.make, self.rng = make, rng

    def next(self) -> str:
        return self.make(self.rng)

    def seen(self, status: int, body: bytes) -> None:
        pass


@dataclass
class ScenarioResult:
    name: str
    description: str
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ok: int
    errors: int
    statuses: dict[str, int]
    duration_s: float
    concurrency: int
    # CPU used during the measured seconds, in % of one core: this process (the load generator),
    # gunicorn (master and workers), the PostgreSQL backends of the benchmark's database, and
    # anything else running on the machine (other work skews the figures: it is shown so you know).
    cpu_client_pct: float = 0.0
    cpu_server_pct: float = 0.0
    cpu_database_pct: float = 0.0
    cpu_other_pct: float = 0.0
    cpu_machine_pct: float = 0.0
    # gunicorn + PostgreSQL CPU per successful request: the cost of a request, which unlike req/s
    # hardly depends on what else the machine is doing.
    cpu_ms_per_request: float = 0.0
    extra: dict = field(default_factory=dict)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class _Run:
    def __init__(self, port: int, measure_from: float, end: float, request_timeout: float):
        self.port, self.measure_from, self.end, self.request_timeout = port, measure_from, end, request_timeout
        self.head = f" HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: application/json\r\nUser-Agent: mall-bench\r\n\r\n"
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors = 0
        self.stopping = False
        self.connections: set[_Http] = set()
        self.loop = asyncio.get_running_loop()

    def request(self, path: str, headers: str = "") -> bytes:
        """GET `path`; `headers` are extra header lines, each ending in CRLF (a client's `headers` attribute)."""
        return f"GET {path}{self.head[:-2]}{headers}\r\n".encode()

    def record(self, started: float, finished: float, status: int) -> None:
        if self.measure_from <= finished <= self.end:
            self.statuses[str(status)] += 1
            if status in (200, 304):  # 304: a conditional GET answered (the client sent If-None-Match)
                self.latencies.append(finished - started)
            else:
                self.errors += 1

    def failure(self, kind: str) -> None:
        if self.measure_from <= time.perf_counter() <= self.end:
            self.statuses[kind] += 1
            self.errors += 1

    def open(self, client: Client, delay: float = 0.0) -> None:
        if not self.stopping:
            self.loop.create_task(self._connect(client, delay))

    async def _connect(self, client: Client, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self.stopping or time.perf_counter() >= self.end:
            return
        started = time.perf_counter()
        try:
            await self.loop.create_connection(lambda: _Http(self, client, started), HOST, self.port)
        except OSError:
            self.failure("connect_error")
            self.open(client, delay=0.05)

    async def watchdog(self) -> None:
        while not self.stopping:
            await asyncio.sleep(0.25)
            now = time.perf_counter()
            for conn in list(self.connections):
                if conn.busy and now - conn.started > self.request_timeout:
                    conn.timed_out = True
                    self.failure("timeout")
                    conn.transport.abort()


class _Http(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection that sends the next request as soon as a response ends."""

    def __init__(self, run: _Run, client: Client, started: float):
        self.run, self.client, self.started = run, client, started
        self.transport = None
        self.buf = bytearray()
        self.body_start = -1
        self.expect = -1  # total bytes of the response; -2 chunked; None until the server closes
        self.status = 0
        self.close_after = False
        self.busy = False
        self.timed_out = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.run.connections.add(self)
        self._send(self.started)

    def _send(self, started: float) -> None:
        if self.run.stopping or started >= self.run.end:
            self.busy = False
            self.transport.close()
            return
        self.started, self.busy = started, True
        self.buf.clear()
        self.body_start, self.expect, self.status, self.close_after = -1, -1, 0, False
        self.transport.write(self.run.request(self.client.next(), getattr(self.client, "headers", "")))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.body_start < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.body_start = end + 4
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            self.close_after = b"\r\nconnection: close" in head
            at = head.find(b"\r\ncontent-length:")
            if self.status in (204, 304):  # no body, whatever the headers say
                self.expect = self.body_start
            elif at >= 0:
                eol = head.find(b"\r\n", at + 2)
                self.expect = self.body_start + int(head[at + 17 : eol if eol > 0 else len(head)])
            elif b"\r\ntransfer-encoding: chunked" in head:
                self.expect = -2
            else:
                self.expect = None
        if self.expect is not None and self.expect >= 0:
            if len(buf) >= self.expect:
                self._complete(bytes(buf[self.body_start : self.expect]))
        elif self.expect == -2 and buf.endswith(b"\r\n0\r\n\r\n"):
            self._complete(bytes(buf[self.body_start :]))  # raw chunks: good enough for the checks we make

    def _complete(self, body: bytes) -> None:
        now = time.perf_counter()
        self.busy = False
        self.run.record(self.started, now, self.status)
        self.client.seen(self.status, body)
        if self.close_after:
            self.transport.close()
            self.run.open(self.client)
        else:
            self._send(now)

    def connection_lost(self, exc) -> None:
        run = self.run
        run.connections.discard(self)
        if self.busy and self.expect is None and self.body_start >= 0:
            self._complete_on_close()
            return
        if self.busy and not self.timed_out and not run.stopping:
            run.failure("connection_lost")
        if self.busy and not run.stopping:
            self.busy = False
            run.open(self.client, delay=0.01)

    def _complete_on_close(self) -> None:
        self.busy = False
        self.run.record(self.started, time.perf_counter(), self.status)
        self.client.seen(self.status, bytes(self.buf[self.body_start :]))
        self.run.open(self.client)


async def _drive(scenario: Scenario, port: int, *, concurrency: int, warmup: float, duration: float,
                 seed: int, request_timeout: float) -> _Run:  # fmt: skip
    start = time.perf_counter()
    run = _Run(port, start + warmup, start + warmup + duration, request_timeout)
    for i in range(concurrency):
        run.open(scenario.new_client(random.Random(seed * 1000 + i)))
    watchdog = asyncio.ensure_future(run.watchdog())
    await asyncio.sleep(max(0.0, run.end - time.perf_counter()))
    run.stopping = True
    for conn in list(run.connections):
        conn.transport.close()
    await asyncio.sleep(0.05)
    watchdog.cancel()
    return run


def measure(scenario: Scenario, server: Server, *, concurrency: int = 32, warmup: float = 2.0,
            duration: float = 10.0, seed: int = 1, request_timeout: float = 10.0) -> ScenarioResult:  # fmt: skip
    """Closed-loop load: `concurrency` keep-alive connections, each sending its next request when
    the previous response has arrived; figures cover the `duration` seconds after `warmup`."""
    pids = server.pids()
    holder: dict = {}

    async def main():
        holder["run"] = await _drive(scenario, server.port, concurrency=concurrency, warmup=warmup,
                                     duration=duration, seed=seed, request_timeout=request_timeout)  # fmt: skip

    async def sampled():
        task = asyncio.ensure_future(main())
        await asyncio.sleep(warmup)
        holder["cpu0"] = CpuSample.take(pids, server.database)
        await asyncio.sleep(duration)
        holder["cpu1"] = CpuSample.take(pids, server.database)
        await task

    asyncio.run(sampled())
    run, c0, c1 = holder["run"], holder["cpu0"], holder["cpu1"]
    lat = sorted(run.latencies)
    ms = 1000.0

    def pct(seconds: float) -> float:
        return round(100 * seconds / duration, 1)

    return ScenarioResult(
        name=scenario.name,
        description=scenario.description,
        requests_per_s=len(lat) / duration,
        p50_ms=percentile(lat, 50) * ms,
        p90_ms=percentile(lat, 90) * ms,
        p99_ms=percentile(lat, 99) * ms,
        max_ms=(lat[-1] if lat else 0.0) * ms,
        ok=len(lat),
        errors=run.errors,
        statuses=dict(run.statuses),
        duration_s=duration,
        concurrency=concurrency,
        cpu_client_pct=pct(c1.client - c0.client),
        cpu_server_pct=pct(c1.server - c0.server),
        cpu_database_pct=pct(c1.database - c0.database),
        cpu_other_pct=max(
            0.0,
            pct(
                (c1.machine - c0.machine)
                - (c1.client - c0.client)
                - (c1.server - c0.server)
                - (c1.database - c0.database)
            ),
        ),
        cpu_machine_pct=pct(c1.machine - c0.machine),
        cpu_ms_per_request=round(1000 * ((c1.server - c0.server) + (c1.database - c0.database)) / max(1, len(lat)), 3),
    )


# ---- reporting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    scenario: str
    min_rps: float | None = None
    max_p99_ms: float | None = None

    def check(self, result: ScenarioResult) -> tuple[bool, str]:
        parts, ok = [], result.errors == 0
        if self.min_rps is not None:
            ok &= result.requests_per_s >= self.min_rps
            parts.append(f"{result.requests_per_s:,.0f} req/s (target >= {self.min_rps:,.0f})")
        if self.max_p99_ms is not None:
            ok &= result.p99_ms < self.max_p99_ms
            parts.append(f"p99 {result.p99_ms:.1f} ms (target < {self.max_p99_ms:.0f})")
        if result.errors:
            parts.append(f"{result.errors} errors")
        return ok, ", ".join(parts)


TABLE_HEAD = ("scenario", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "cpu ms/req",
              "cpu % bench/app/db/other")  # fmt: skip


def format_table(results: list[ScenarioResult]) -> str:
    rows = [TABLE_HEAD] + [
        (
            r.name,
            f"{r.requests_per_s:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p90_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.max_ms:.1f}",
            str(r.errors),
            f"{r.cpu_ms_per_request:.2f}",
            f"{r.cpu_client_pct:.0f} / {r.cpu_server_pct:.0f} / {r.cpu_database_pct:.0f} / {r.cpu_other_pct:.0f}",
        )
        for r in results
    ]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]

    def line(cells) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(rows[0]), "  ".join("-" * w for w in widths), *(line(r) for r in rows[1:])])


def as_dict(result: ScenarioResult) -> dict:
    return asdict(result)
