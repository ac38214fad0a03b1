"""Queues and scheduling through RQ: `enqueue`, `enqueue_at`, with retries for transient failures."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from redis.exceptions import RedisError
from rq import Queue, Retry

from mall import logs
from workers import runtime
from workers.connection import get_redis

HIGH, DEFAULT, LOW = "high", "default", "low"
TRANSIENT_RETRY = Retry(max=3, interval=[10, 60, 300])
log = logging.getLogger(__name__)
_batch: ContextVar = ContextVar("rq_schedule_batch", default=None)


def queue(name: str = DEFAULT) -> Queue:
    return Queue(name, connection=get_redis(runtime.settings()))


def enqueue(func, *args, queue_name: str = DEFAULT, job_id: str | None = None, **kwargs):
    """Run `func` as soon as a worker is free (inside a `batch`, once the batch is written)."""
    pipe = _batch.get()
    return queue(queue_name).enqueue(func, *args, job_id=job_id, retry=TRANSIENT_RETRY, pipeline=pipe,
                                     meta=_meta(), **kwargs)  # fmt: skip


def enqueue_at(when: datetime, func, *args, queue_name: str = DEFAULT, job_id: str | None = None, **kwargs):
    """Run `func` at `when` (RQ's scheduler, run by `rq worker --with-scheduler`)."""
    pipe = _batch.get()
    # Inside a batch the queue itself talks through the pipeline: RQ 2.12's ScheduledJobRegistry.schedule
    # ignores the pipeline it is given and adds the job to the registry through the queue's connection, a
    # round trip per job; this way that goes in the batch too, after the job's data.
    target = queue(queue_name) if pipe is None else Queue(queue_name, connection=pipe)
    return target.enqueue_at(when, func, *args, job_id=job_id, retry=TRANSIENT_RETRY, pipeline=pipe, meta=_meta(),
                             **kwargs)  # fmt: skip


def _meta() -> dict | None:
    """The request id of the request (or job) enqueueing: the job's log lines carry it (workers/worker.py)."""
    found = logs.request_id.get()
    return {"request_id": found} if found != "-" else None


@contextmanager
def batch() -> Iterator[None]:
    """The jobs scheduled inside are written to Redis together, in one round trip at the end (a placement
    schedules its payment timeout and its reminder). Every scheduled job has a periodic sweep behind it, so
    a Redis failure here is logged, not raised: the request's change is committed."""
    if _batch.get() is not None:
        yield
        return
    pipe = queue().connection.pipeline(transaction=False)
    # MULTI from the start: RQ's enqueue puts a pipeline it is given in MULTI mode, which redis-py refuses once
    # commands are buffered (an enqueue after an enqueue_at in one batch raised "Commands without an initial WATCH")
    pipe.multi()
    token = _batch.set(pipe)
    try:
        yield
    finally:
        _batch.reset(token)
    if pipe.command_stack:
        try:
            pipe.execute()
        except RedisError:
            log.exception("could not schedule this request's jobs; the periodic sweeps will run them")
