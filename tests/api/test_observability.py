"""Request ids (header, log lines, job meta), JSON log lines and the Prometheus metrics at /metrics (ADR 0035)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from dataclasses import replace
from datetime import timedelta

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.job import Job

from api import create_app
from api.extensions import db
from mall import clock, logs
from mall.notifications.models import Message
from tests.api.test_live_attribution import live, show  # noqa: F401 (fixtures)
from tests.shop_helpers import Shop
from tests.test_worker import ROOT, _env, _make_run_commands

TOKEN = "scrape-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
log = logging.getLogger("tests.observability")


@pytest.fixture(scope="module")
def ops_app(settings):
    """The test app with METRICS_TOKEN set, and two routes of its own: one that logs, one that fails."""
    app = create_app(replace(settings, metrics_token=TOKEN))

    @app.get("/test/log")
    def log_something():
        log.warning("something happened", extra={"order_id": 7})
        return {"ok": True}

    @app.get("/test/boom")
    def boom():
        raise RuntimeError("boom")

    return app


@pytest.fixture
def ops(ops_app, app):  # `app`: the tables are emptied after the test
    return ops_app.test_client()


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def scrape(client) -> dict[tuple[str, tuple], float]:
    resp = client.get("/metrics", headers=AUTH)
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.get_data(as_text=True)) for s in family.samples}  # fmt: skip


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_route_rule_status_and_latency(ops):
    before = scrape(ops)
    assert ops.get("/livez").status_code == 200 and ops.get("/livez").status_code == 200
    assert ops.get("/api/v1/orders/12345").status_code == 401
    assert ops.get("/api/v1/orders/67890").status_code == 401
    assert ops.get("/no/such/path").status_code == 404
    assert ops.get("/test/boom").status_code == 500
    after = scrape(ops)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("mall_http_requests_total", method="GET", route="/livez", status="200") == 2
    order = "/api/v1/orders/<int:order_id>"  # the rule, not the path: one series for every order
    assert moved("mall_http_requests_total", method="GET", route=order, status="401") == 2
    assert moved("mall_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert moved("mall_http_requests_total", method="GET", route="/test/boom", status="500") == 1
    assert moved("mall_http_request_duration_seconds_count", method="GET", route="/livez") == 2
    assert moved("mall_http_request_duration_seconds_bucket", method="GET", route="/livez", le="+Inf") == 2
    assert not any("12345" in str(key) for key in after)


def test_metrics_read_queue_depth_failed_jobs_and_the_outbox_backlog(ops, ops_app, shop):
    user_id = shop.user_id(shop.shopper())

    def message(key: str, minutes_due: int) -> Message:
        return Message(user_id=user_id, template_key="order.paid", channel="wechat", kind="transactional",
                       payload={}, dedupe_key=key, send_after=clock.now() - timedelta(minutes=minutes_due))  # fmt: skip

    with ops_app.app_context():
        db.session.add_all([message("a", 5), message("b", 10), message("later", -60)])
        db.session.commit()
    from workers import queues

    with ops_app.test_request_context():
        queues.enqueue(print, "x", queue_name=queues.LOW)
    samples = scrape(ops)
    assert value(samples, "mall_rq_queue_depth", queue="low") == 1
    assert value(samples, "mall_rq_queue_depth", queue="high") == 0
    assert value(samples, "mall_rq_failed_jobs", queue="default") == 0
    assert value(samples, "mall_outbox_due_messages") == 2
    assert 600 <= value(samples, "mall_outbox_oldest_due_seconds") < 700


def test_metrics_are_off_without_a_token_and_refuse_a_wrong_one(client, ops):
    off = client.get("/metrics")
    assert off.status_code == 404 and off.json["code"] == "metrics.disabled"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        resp = ops.get("/metrics", headers=headers)
        assert resp.status_code == 401 and resp.json["code"] == "metrics.token_invalid", headers


def test_the_fast_paths_count_their_answers(ops, client, show):  # noqa: F811
    before = scrape(ops)
    for _ in range(3):  # the cached room is answered in front of Flask (a miss renders through Flask)
        assert client.get(f"/api/v1/live/rooms/{show['room']}").status_code == 200
    after = scrape(ops)
    fast = [value(s, "mall_fast_path_responses_total", path="live_room_view") for s in (before, after)]
    route = {"method": "GET", "route": "/api/v1/live/rooms/<int:room_id>", "status": "200"}
    flask = [value(s, "mall_http_requests_total", **route) for s in (before, after)]
    assert fast[1] - fast[0] >= 2 and (fast[1] - fast[0]) + (flask[1] - flask[0]) == 3


def test_a_sane_request_id_is_echoed_and_any_other_replaced(client):
    assert client.get("/livez", headers={"X-Request-Id": "edge-7f3a.1"}).headers["X-Request-Id"] == "edge-7f3a.1"
    for bad in ("a b", "x" * 129, "é", ""):
        given = client.get("/livez", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", given), bad
    assert client.get("/nope").headers["X-Request-Id"]  # errors too


def test_every_log_line_of_a_request_carries_its_id(ops, caplog):
    caplog.set_level(logging.INFO)
    ops.get("/test/log", headers={"X-Request-Id": "req-log-1"})
    resp = ops.get("/test/boom", headers={"X-Request-Id": "req-boom-1"})
    assert resp.headers["X-Request-Id"] == "req-boom-1"

    def id_of(start: str) -> str:
        return next(r.request_id for r in caplog.records if r.getMessage().startswith(start))

    assert id_of("something happened") == "req-log-1"
    assert id_of("unhandled error on GET /test/boom") == "req-boom-1"
    outside = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", None, None)
    assert outside.request_id == "-"  # after the request, none


def test_json_log_lines_parse_with_the_request_id_and_extras(ops, caplog):
    caplog.set_level(logging.INFO)
    ops.get("/test/log", headers={"X-Request-Id": "req-json-1"})
    record = next(r for r in caplog.records if r.getMessage() == "something happened")
    line = json.loads(logs.formatter("json").format(record))
    assert line["message"] == "something happened" and line["level"] == "WARNING"
    assert line["request_id"] == "req-json-1" and line["order_id"] == 7 and line["logger"] == "tests.observability"
    assert "time" in line and "\n" not in logs.formatter("json").format(record)


def test_jobs_a_request_enqueues_carry_its_id(app, client, shop, redis_url):
    brand = shop.brand()
    sku = shop.sku(brand, price=1000)
    me = shop.shopper()
    line = shop.add(me, sku)
    headers = {**me, "Idempotency-Key": "k-1", "X-Request-Id": "req-order-1"}
    resp = client.post("/api/v1/orders", json={"line_ids": [line], "address_id": shop.address(me)}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    connection = redis.Redis.from_url(redis_url)
    ids = [i for name in ("high", "default", "low") for q in [Queue(name, connection=connection)]
           for i in q.job_ids + q.scheduled_job_registry.get_job_ids()]  # fmt: skip
    assert ids  # the payment timeout, the unpaid reminder
    assert {Job.fetch(i, connection=connection).meta.get("request_id") for i in ids} == {"req-order-1"}


def request_id_of_this_job() -> str:
    """A job: the request id on a log record made while it runs."""
    return logging.getLogger("job").makeRecord("job", logging.INFO, "f", 1, "m", None, None).request_id


def test_a_worker_runs_a_job_under_the_request_id_in_its_meta(tmp_path, redis_url, monkeypatch):
    queue = Queue("high", connection=redis.Redis.from_url(redis_url))
    traced = queue.enqueue(request_id_of_this_job, meta={"request_id": "req-job-1"})
    sweep = queue.enqueue(request_id_of_this_job)
    command = _make_run_commands(redis_url, monkeypatch)["worker"] + ["--burst"]
    worker = subprocess.run(command, cwd=ROOT, env={**_env(tmp_path, redis_url), "LOG_FORMAT": "json"},
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert traced.latest_result().return_value == "req-job-1"
    assert sweep.latest_result().return_value == f"job-{sweep.id}"
    lines = [json.loads(line) for line in (worker.stdout + worker.stderr).splitlines() if line.strip()]  # all JSON
    done = [line for line in lines if line["logger"] == "rq.worker" and "Job OK" in line["message"]]
    assert {line["request_id"] for line in done} == {"req-job-1", f"job-{sweep.id}"}


def test_a_scrape_serves_what_it_can_when_redis_is_down(ops, monkeypatch):
    from workers import queues

    def down(name):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(queues, "queue", down)
    samples = scrape(ops)
    assert value(samples, "mall_metrics_source_up", source="redis") == 0
    assert value(samples, "mall_metrics_source_up", source="database") == 1
    assert ("mall_outbox_due_messages", ()) in samples and not any(k[0] == "mall_rq_queue_depth" for k in samples)
