"""Queues and scheduling through RQ: `enqueue`, `enqueue_at`, with retries for transient failures."""

from __future__ import annotations

from datetime import datetime

from rq import Queue, Retry

from workers import runtime
from workers.connection import get_redis

HIGH, DEFAULT, LOW = "high", "default", "low"
TRANSIENT_RETRY = Retry(max=3, interval=[10, 60, 300])


def queue(name: str = DEFAULT) -> Queue:
    return Queue(name, connection=get_redis(runtime.settings()))


def enqueue(func, *args, queue_name: str = DEFAULT, job_id: str | None = None, **kwargs):
    return queue(queue_name).enqueue(func, *args, job_id=job_id, retry=TRANSIENT_RETRY, **kwargs)


def enqueue_at(when: datetime, func, *args, queue_name: str = DEFAULT, job_id: str | None = None, **kwargs):
    """Run `func` at `when` (RQ's scheduler, run by `rq worker --with-scheduler`)."""
    return queue(queue_name).enqueue_at(when, func, *args, job_id=job_id, retry=TRANSIENT_RETRY, **kwargs)
