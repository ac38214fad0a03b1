"""Request ids and Prometheus metrics for the API (ADR 0035, docs/operations.md "Retention and observability").

- Every request has an id: the caller's X-Request-Id when it is a sane token (mall.logs.ACCEPTED), else a new
  one. It is echoed in the X-Request-Id response header, is on every log line written for the request
  (mall.logs) and goes into the meta of every job the request enqueues (workers/queues.py).
- Request count, latency and status per route, labelled by the route's URL rule (`/api/v1/orders/<int:order_id>`,
  never the raw path: the label set is bounded). The WSGI fast paths count their answers in
  `mall_fast_path_responses_total` (one counter increment each).
- Queue depth, failed jobs and the outbox backlog are read from Redis and the database when /metrics is scraped.
- gunicorn's workers are separate processes: with PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it), every
  worker writes its samples to files there and /metrics sums them (prometheus_client's multiprocess mode).
- /metrics answers 404 unless METRICS_TOKEN is set, and wants `Authorization: Bearer <METRICS_TOKEN>`.
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from mall import logs
from mall.errors import NotFound, Unauthorized

HEADER = "X-Request-Id"
UNMATCHED = "<unmatched>"  # the route label of a request no URL rule matched (404, 405)

REQUESTS = Counter("mall_http_requests", "HTTP requests answered by Flask", ["method", "route", "status"])
LATENCY = Histogram("mall_http_request_duration_seconds", "Time Flask took to answer, per route", ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))  # fmt: skip
FAST = Counter("mall_fast_path_responses", "Requests answered in front of Flask (api/*/fast_path.py)", ["path"])

bp = Blueprint("observability", __name__)
log = logging.getLogger(__name__)


def install(app: Flask) -> None:
    """Before every other hook: the request's id and start time."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.teardown_request(_forget)
    app.register_blueprint(bp)


def _start() -> None:
    g.request_id = logs.accepted_or_new(request.headers.get(HEADER))
    g.request_started = time.perf_counter()
    g.request_id_token = logs.request_id.set(g.request_id)


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        response.headers[HEADER] = g.request_id
    return response


def _forget(_error=None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        logs.request_id.reset(token)


@bp.get("/metrics")
def metrics():
    """The Prometheus exposition (text format 0.0.4)."""
    from api.settings import settings

    token = settings().metrics_token
    if not token:
        raise NotFound("metrics.disabled", "Metrics are off: set METRICS_TOKEN to expose them.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("metrics.token_invalid", "Send Authorization: Bearer <METRICS_TOKEN>.")
    return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


def _registry():
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY  # this process's own metrics (tests, `flask run`)
    if not getattr(registry, "_mall_backlog", False):
        registry.register(Backlog())
        registry._mall_backlog = True
    return registry


class Backlog:
    """Read at scrape time: RQ queue depth and failed jobs per queue (Redis), the outbox's due messages and the age
    of the oldest (one range of ix_messages_due). A source that cannot be read is left out and counted in
    `mall_metrics_source_up{source}` = 0: the request metrics are still served."""

    def collect(self):
        up = GaugeMetricFamily("mall_metrics_source_up", "Whether /metrics could read a source", labels=["source"])
        for source, read in (("redis", _queues), ("database", _outbox)):
            try:
                yield from list(read())
                up.add_metric([source], 1)
            except Exception:  # a scrape reports what it can, never fails
                log.warning("/metrics could not read %s", source, exc_info=True)
                up.add_metric([source], 0)
        yield up


def _queues():
    from workers.queues import DEFAULT, HIGH, LOW, queue

    depth = GaugeMetricFamily("mall_rq_queue_depth", "Jobs waiting in an RQ queue", labels=["queue"])
    failed = GaugeMetricFamily("mall_rq_failed_jobs", "Jobs in an RQ queue's failed registry", labels=["queue"])
    for name in (HIGH, DEFAULT, LOW):
        q = queue(name)
        depth.add_metric([name], q.count)
        failed.add_metric([name], q.failed_job_registry.count)
    return depth, failed


def _outbox():
    import sqlalchemy as sa

    from api.extensions import db
    from mall import clock
    from mall.notifications.models import Message

    now = clock.now()
    try:
        due, oldest = db.session.execute(
            sa.select(sa.func.count(), sa.func.min(Message.send_after))
            .where(sa.text("status = 'pending'"), Message.send_after <= now)
        ).one()  # fmt: skip
    finally:
        db.session.rollback()  # a read: nothing held past the scrape
    age = (now - oldest).total_seconds() if oldest is not None else 0
    return (GaugeMetricFamily("mall_outbox_due_messages", "Outbox messages due and not sent", value=due),
            GaugeMetricFamily("mall_outbox_oldest_due_seconds", "How long the oldest due outbox message has waited",
                              value=age))  # fmt: skip
