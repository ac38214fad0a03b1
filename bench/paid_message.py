"""paid_message: how long after a payment its 'paid' subscribe message reaches WeChat.

The whole production path runs: gunicorn takes `POST /orders/{id}/pay` (offline gateway), the commit queues
the outbox message's dispatch job, the RQ worker (started as `make run` starts it, `--rq-worker-class` to
compare another class) runs it in a work horse, which fetches the access token and posts the subscribe
message to a local fake of api.weixin.qq.com (tests/fakes/wechat.py) that notes when it arrived. `rq cron
workers/cron.py` runs beside them. One payment at a time: the next is made once the previous message has
arrived, so each figure is one message's latency, from sending the payment request to the message arriving.

Scenarios:
- `idle`: nothing else queued (the cron's periodic sweeps run when due, as in production);
- `sweeps-busy`: the `low` queue is kept stocked with the periodic sweeps of workers/cron.py (all of them,
  in turn), so the worker is running a sweep, with more queued behind it, whenever a payment lands.
Targets (issue 13): p50 under 300 ms idle, no worse than 2 s with the sweeps busy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from bench import harness
from bench.checkout import _call, _key, _line_of, _Seeder, spare_redis

NAME = "paid_message"
DESCRIPTION = "payment -> 'paid' subscribe message at (fake) WeChat, through the RQ worker, cron running"
API = "/api/v1"
APP_ID, APP_SECRET, TEMPLATE_ID = "wx-bench", "bench-app-secret", "TMPL-PAID-BENCH"
# Jobs are queued in Redis under fixed names (queues, job ids): a database of the run's own, emptied after.
REDIS_URL = os.environ.get("BENCH_WORKERS_REDIS_URL", "redis://127.0.0.1:6379/12")
SWEEPS = ("workers.jobs.orders.sweep_unpaid_orders", "workers.jobs.orders.auto_confirm_receipts",
          "workers.jobs.payments.sweep_unprocessed_webhooks", "workers.jobs.notifications.sweep_due_messages",
          "workers.jobs.notifications.sweep_unpaid_reminders", "workers.jobs.notifications.nudge_abandoned_carts",
          "workers.jobs.flash_sales.reconcile_flash_sales", "workers.jobs.group_buy.sweep_due_groups",
          "workers.jobs.coupons.expire_coupons")  # fmt: skip
TARGETS = {"idle": 300.0, "sweeps-busy": 2000.0}  # p50, ms


def seed(database_url: str, redis_url: str, *, grants: int) -> dict:
    """A brand, one SKU with ample stock, and one shopper with a WeChat account who accepted `grants` paid
    messages (each acceptance allows one)."""
    from api.extensions import db
    from mall import clock, events
    from mall.identity.models import WeChatAccount
    from mall.notifications import services as outbox

    with harness.app_engine(database_url, redis_url):
        session = db.session
        seeder = _Seeder(session, harness.SECRET_KEY)
        seeder.staff()
        _, skus = seeder.product(0, skus=1, price=5900)
        shopper = seeder.shopper("paid-message")
        session.add(WeChatAccount(user_id=shopper.user_id, app_id=APP_ID, openid="openid-bench", session_key="sk",
                                  last_login_at=clock.now()))  # fmt: skip
        for _ in range(grants):
            outbox.record_grants(session, user_id=shopper.user_id, results={"order.paid": "accept"})
        session.commit()
        events.discard(session)
    return {"shopper": shopper, "sku": skus[0]}


class Jobs:
    """`rq worker` and `rq cron` as `make run` starts them, in their own process group, ended with the run."""

    def __init__(self, env: dict, redis_url: str, worker_class: str):
        rq = os.path.join(os.path.dirname(sys.executable), "rq")
        self.commands = [
            [rq, "worker", "-w", worker_class, "--with-scheduler", "--url", redis_url, "high", "default", "low"],
            [rq, "cron", "workers/cron.py", "--url", redis_url, "--path", str(harness.ROOT)],
        ]
        self.env, self.redis_url = env, redis_url
        self.procs: list[subprocess.Popen] = []
        self._log = tempfile.NamedTemporaryFile(prefix="bench_rq_", suffix=".log", delete=False)  # noqa: SIM115

    def __enter__(self) -> Jobs:
        import redis
        from rq import Worker

        for cmd in self.commands:
            self.procs.append(subprocess.Popen(cmd, cwd=harness.ROOT, env=self.env, stdout=self._log,
                                               stderr=subprocess.STDOUT, start_new_session=True,
                                               preexec_fn=harness._die_with_parent))  # fmt: skip
        connection = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + 60
        while not Worker.all(connection=connection):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.__exit__()
                raise RuntimeError(f"the RQ worker did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def log_tail(self, lines: int = 30) -> str:
        with open(self._log.name, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


class BusySweeps:
    """Keeps the `low` queue holding a few of the periodic sweeps, as a backlog of sweeps would."""

    def __init__(self, redis_url: str, backlog: int = 3):
        import redis
        from rq import Queue

        self.queue = Queue("low", connection=redis.Redis.from_url(redis_url))
        self.backlog, self.enqueued = backlog, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            while self.queue.count < self.backlog:
                self.queue.enqueue(SWEEPS[self.enqueued % len(SWEEPS)])
                self.enqueued += 1
            self.stop.wait(0.02)

    def sweep_seconds(self) -> list[float]:
        """How long the sweeps that finished took (RQ's started/ended times)."""
        return sorted(run for _, run in job_times(self.queue))

    def __enter__(self) -> BusySweeps:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def job_times(queue) -> list[tuple[float, float]]:
    """(waited, ran) in seconds for each finished job of `queue`: enqueued to started, started to ended."""
    from rq.registry import FinishedJobRegistry

    registry = FinishedJobRegistry(queue=queue)
    jobs = queue.job_class.fetch_many(registry.get_job_ids(), connection=queue.connection)
    return sorted(((j.started_at - j.enqueued_at).total_seconds(), (j.ended_at - j.started_at).total_seconds())
                  for j in jobs if j and j.enqueued_at and j.started_at and j.ended_at)  # fmt: skip


def _job_split(redis_url: str) -> dict:
    """Where a message's time went inside RQ: waiting in `high`, then running in a work horse (p50, ms)."""
    import redis
    from rq import Queue

    times = job_times(Queue("high", connection=redis.Redis.from_url(redis_url)))
    waited, ran = sorted(w for w, _ in times), sorted(r for _, r in times)
    return {"job_wait_p50_ms": round(harness.percentile(waited, 50) * 1000, 1),
            "job_run_p50_ms": round(harness.percentile(ran, 50) * 1000, 1)}  # fmt: skip


def one_payment(base_url: str, shop: dict, fake, timeout: float = 30.0) -> tuple[float, float]:
    """Place an order (untimed), pay it, wait for its message: (message latency, pay response time) in s."""
    s, sku = shop["shopper"], shop["sku"]
    status, cart = _call(base_url, "POST", f"{API}/cart/lines", {"sku_id": sku}, s.auth)
    assert status == 200, (status, cart)
    body = {"line_ids": [_line_of(cart, sku)], "address_id": s.address_id}
    status, order = _call(base_url, "POST", f"{API}/orders", body, {**s.auth, **_key()})
    assert status == 201, (status, order)
    before = len(fake.delivered_at)
    started = time.perf_counter()
    status, paid = _call(base_url, "POST", f"{API}/orders/{order['id']}/pay", None, {**s.auth, **_key()})
    answered = time.perf_counter()
    assert status == 200 and paid["status"] == "succeeded", (status, paid)
    deadline = started + timeout
    while len(fake.delivered_at) <= before:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no paid message for order {order['id']} within {timeout:.0f}s")
        time.sleep(0.002)
    assert fake.delivered[before]["template_id"] == TEMPLATE_ID, fake.delivered[before]
    return fake.delivered_at[before] - started, answered - started


def measure(name: str, description: str, base_url: str, shop: dict, fake, payments: int) -> harness.ScenarioResult:
    latencies, responses, errors = [], [], 0
    started = time.perf_counter()
    for _ in range(payments):
        try:
            latency, response = one_payment(base_url, shop, fake)
        except TimeoutError:
            errors += 1
            continue
        latencies.append(latency)
        responses.append(response)
    elapsed = time.perf_counter() - started
    lat, ms = sorted(latencies), 1000.0
    return harness.ScenarioResult(
        name=name, description=description, requests_per_s=len(lat) / elapsed,
        p50_ms=harness.percentile(lat, 50) * ms, p90_ms=harness.percentile(lat, 90) * ms,
        p99_ms=harness.percentile(lat, 99) * ms, max_ms=(lat[-1] if lat else 0.0) * ms, ok=len(lat), errors=errors,
        statuses={"delivered": len(lat), "timeout": errors}, duration_s=elapsed, concurrency=1,
        extra={"unit": "message", "pay_response_p50_ms": round(harness.percentile(sorted(responses), 50) * ms, 1)},
    )  # fmt: skip


def run(backend: str, opts, log=print) -> dict:
    from tests.fakes.wechat import FakeWeChat

    payments = max(20, int(opts.duration * 4))
    worker_class = getattr(opts, "rq_worker_class", None) or "workers.worker.Worker"
    config = harness.ServerConfig(workers=opts.workers, worker_class=opts.worker_class, threads=opts.threads)
    results = []
    fake = FakeWeChat({APP_ID: APP_SECRET}).start()
    try:
        with (
            spare_redis(REDIS_URL) as redis_url,
            harness.throwaway_database(backend, NAME, pg_admin_url=opts.pg_admin_url) as database_url,
        ):
            harness.migrate(database_url, redis_url)
            shop = seed(database_url, redis_url, grants=3 * payments + 10)
            server = harness.Server(config, database_url=database_url, redis_url=redis_url)
            server.env.update(PAYMENT_GATEWAY="offline", NOTIFY_TRANSPORT="wechat", WECHAT_API_BASE=fake.base_url,
                              WECHAT_APPS=f"{APP_ID}:{APP_SECRET}", WECHAT_TEMPLATE_IDS=f"order.paid:{TEMPLATE_ID}")  # fmt: skip
            with server, Jobs(server.env, redis_url, worker_class) as jobs:
                log(f"  [{backend}] worker class {worker_class}; {payments} payments per scenario, one at a time")
                for _ in range(3):  # warm-up: the access token, the first connections
                    one_payment(server.base_url, shop, fake)
                harness.wait_for_quiet(getattr(opts, "quiet_wait", 0), log=log)
                idle = measure("idle", "nothing else queued", server.base_url, shop, fake, payments)
                idle.extra |= _job_split(redis_url)
                results.append(idle)
                with BusySweeps(redis_url) as sweeps:
                    busy = measure("sweeps-busy", "the low queue kept stocked with the periodic sweeps",
                                   server.base_url, shop, fake, payments)  # fmt: skip
                durations = sweeps.sweep_seconds()
                busy.extra |= {"sweeps_run": len(durations),
                               "sweep_p50_ms": round(harness.percentile(durations, 50) * 1000, 1),
                               "sweep_max_ms": round((durations[-1] if durations else 0) * 1000, 1)}  # fmt: skip
                results.append(busy)
                for r in results:
                    log(f"  [{backend}] {r.name:<12} p50 {r.p50_ms:7.1f} ms  p90 {r.p90_ms:7.1f} ms  "
                        f"p99 {r.p99_ms:7.1f} ms  max {r.max_ms:7.1f} ms  timeouts {r.errors}  "
                        f"(pay answered in {r.extra['pay_response_p50_ms']} ms p50)")  # fmt: skip
                log(f"  [{backend}] idle, inside RQ: queued {idle.extra['job_wait_p50_ms']} ms, "
                    f"ran {idle.extra['job_run_p50_ms']} ms (p50 of the dispatch jobs)")  # fmt: skip
                log(f"  [{backend}] sweeps run while busy: {busy.extra['sweeps_run']}, "
                    f"p50 {busy.extra['sweep_p50_ms']} ms, max {busy.extra['sweep_max_ms']} ms")  # fmt: skip
                if any(r.errors for r in results):
                    log(jobs.log_tail())
    finally:
        fake.stop()
    checks = []
    for r in results:
        goal = TARGETS[r.name]
        checks.append({"scenario": r.name, "met": r.p50_ms < goal and not r.errors,
                       "detail": f"p50 {r.p50_ms:.0f} ms (target < {goal:.0f}), p99 {r.p99_ms:.0f} ms"})  # fmt: skip
    return {
        "suite": NAME,
        "backend": backend,
        "server": f"{config.describe()}; rq worker -w {worker_class}",
        "concurrency": 1,
        "results": [harness.as_dict(r) for r in results],
        "targets": checks,
    }
