"""A real RQ worker is killed (SIGKILL, worker and work horse at once) while its job is inside a Stripe refund
call: the provider has made the refund, nobody recorded it. RQ's abandoned-job handling retries the job, the
payment sweep takes the refund over once its lease ran out, and the shopper is refunded exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry

from mall import clock
from mall.payments.models import Refund
from tests.api import test_stripe_payments as stripe_tests
from tests.api.test_gateway_calls import AFTER_LEASE, REFUNDS, approved_refund, rows
from tests.api.test_stripe_payments import WEBHOOK_SECRET, order_row
from workers import queues
from workers.connection import get_redis
from workers.jobs import payments as payment_jobs

fake_stripe, stripe_app, client, shop = (stripe_tests.fake_stripe, stripe_tests.stripe_app, stripe_tests.client,
                                         stripe_tests.shop)  # fmt: skip
pytestmark = pytest.mark.refund_audit
ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60  # for a subprocess to start and reach the call (a loaded 2-core machine)


def worker_env(settings, fake_stripe) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MALL_ENV", "SECRET_KEY")}
    return env | {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, "PAYMENT_GATEWAY": "stripe",
                  "STRIPE_API_KEY": "sk_test_fake", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                  "STRIPE_API_BASE": fake_stripe.base_url}  # fmt: skip


def rq_worker(settings, fake_stripe, *extra: str) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("rq")), "worker", "-w", "workers.worker.Worker", "--url",
               settings.redis_url, *extra, queues.HIGH]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=worker_env(settings, fake_stripe), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def children(pid: int) -> list[int]:
    """The processes `pid` forked (RQ's work horse calls setsid: killing the worker's group leaves it running)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def until(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.05)


def test_a_worker_killed_inside_a_refund_call_refunds_once(shop, client, settings, stripe_app, fake_stripe,
                                                           monkeypatch):  # fmt: skip
    """Guards the refund's one idempotency key on every send (mall.payments.refund_calls.refund_key), its lease
    (take_refund: the retried job does not send while the dead one's lease holds) and the payment sweep
    (workers.jobs.payments.sweep_gateway_calls) behind RQ's retry of the abandoned job."""
    monkeypatch.setattr(payment_jobs, "send_claimed_refund", lambda event: None)  # the worker sends it, not the API
    order, case = approved_refund(shop, client, settings, fake_stripe, stripe_app)
    [refund] = rows(stripe_app, Refund)
    fake_stripe.answer_late(REFUNDS, 5)  # done at Stripe at once, answered late: the horse dies inside the call
    job = queues.enqueue(payment_jobs.send_refund, refund.id, queue_name=queues.HIGH)

    worker = rq_worker(settings, fake_stripe)
    try:
        until(lambda: len(fake_stripe.refunds) == 1, "refund at the provider")
    finally:
        for pid in [*children(worker.pid), worker.pid]:  # the work horse (its own session) and its worker, mid-call
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=30)

    redis = get_redis(settings)
    started = StartedJobRegistry(queues.HIGH, connection=redis)
    assert job.id in started.get_job_ids()  # abandoned: nobody will finish it
    assert [r.status for r in rows(stripe_app, Refund)] == ["claimed"]
    started.cleanup(timestamp=time.time() + 3600)  # what a worker does once the dead one's heartbeat expired
    job.refresh()
    assert job.retries_left == queues.TRANSIENT_RETRY.max - 1
    Queue(queues.HIGH, connection=redis).enqueue_job(job)  # due now (the scheduler would, after its interval)
    rerun = rq_worker(settings, fake_stripe, "--burst")
    assert rerun.wait(timeout=WAIT_S) == 0, rerun.stderr.read()
    assert job.latest_result().return_value == "not_due"  # the dead horse's lease still holds
    assert len(fake_stripe.refunds) == 1

    clock.advance(AFTER_LEASE)
    assert payment_jobs.sweep_gateway_calls() == 1  # the same key: Stripe replays its refund
    [refund] = rows(stripe_app, Refund)
    [made] = fake_stripe.refunds.values()
    assert (refund.status, refund.gateway_refund_id, made["amount"]) == ("succeeded", made["id"], case["amount"])
    assert order_row(stripe_app, order["id"]).refunded_total == case["amount"]
    assert payment_jobs.sweep_gateway_calls() == 0 and len(fake_stripe.refunds) == 1
