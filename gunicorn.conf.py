"""gunicorn's settings for the API: `gunicorn wsgi:app` reads this file from the working directory;
command-line flags and GUNICORN_CMD_ARGS override it.

gthread workers keep client connections alive (sync workers close them after every response, which
cost the load generator and the server a TCP handshake per request: 2-3 times fewer requests/s in
bench/). Measured on this 2-core machine (`python -m bench ...`, quiet machine, 2026-11-25), 3
processes of 3 threads served the most: catalog list 1,632 req/s against 1,410 with 2 x 4, flash
purchases 0.44 of /livez against 0.39. More processes than cores + 1 only added context switches;
threads let a process run Python while another request waits on PostgreSQL or Redis.
"""

import os
from pathlib import Path

# Prometheus (api/observability.py): each worker process writes its samples to files in this directory and
# /metrics sums every worker's. Set before any worker imports prometheus_client; emptied when gunicorn starts
# (a previous run's files would add its counts to this one's), one directory per gunicorn master.
METRICS_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(os.environ.get("MALL_INSTANCE_DIR") or Path(__file__).resolve().parent / "instance") / "prometheus"),
)

workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 3)
# A worker holds no more client connections than it can serve fairly. Left at gunicorn's 1000, a worker that
# happened to accept more of the keep-alive connections served each of them less often: place@32 (32 clients
# over 3 workers of 3 threads) had a p99 of 285-387 ms against a p50 of 71-93 ms; with 4 per thread (36 slots),
# 219 ms against 141 ms, at the same throughput. A full worker accepts no more: see `pre_request` for the
# clients that then wait in the shared backlog. (For the gthread workers set above: with `-k gevent` or
# eventlet, whose workers hold a connection per greenlet, set GUNICORN_WORKER_CONNECTIONS.)
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS") or 4 * threads)
# The access log line carries the request id the API answered with (api/observability.py; "-" for a fast path's).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s %(M)sms'
keepalive = 5  # seconds an idle client connection stays open (behind a load balancer: less than its own)
# Request line and headers (ADR 0036), gunicorn's own defaults written out: a longer request line is answered 414,
# a longer header line or more header lines 431, by gunicorn itself (a small HTML page; the app never sees the
# request). In production the proxy in front answers first with tighter limits (docs/operations.md: nginx's
# large_client_header_buffers). The app's own limits on what passes (body size, JSON shape) are problem+json.
limit_request_line = 4094  # bytes of "GET /path?query HTTP/1.1"
limit_request_fields = 100
limit_request_field_size = 8190  # bytes of one "Name: value" line


def pre_request(worker, req):
    """A full worker closes a connection after its response while others wait to be accepted.

    Busy keep-alive connections never go idle, so without this the clients beyond every worker's
    `worker_connections` would wait in the backlog until theirs timed out (seen with 32 clients and 24
    slots: 8 timed out after 10 s). While anyone waits, every full worker closes each connection it
    answers; their clients reconnect and queue behind the waiting ones, so under sustained overload
    keep-alive is in effect off and the backlog is served in turn. A worker with room, or no one waiting,
    keeps connections alive. The cost is the reconnecting: with 64 clients over the 36 slots of 3 x 3
    threads, /livez served about 3,300 requests/s against 4,400 with gunicorn's default of 1,000
    connections, and flash purchases 1,760 against 2,100 (their p99 282 ms against 324); deployments
    whose proxy keeps more connections open than workers x worker_connections should raise
    GUNICORN_WORKER_CONNECTIONS. (This replaces gunicorn's own pre_request, which only logs at debug level.)"""
    if getattr(worker, "nr_conns", 0) >= worker.cfg.worker_connections and _someone_waiting(worker.sockets):
        req.force_close()


def _someone_waiting(listeners) -> bool:
    import select

    try:
        return bool(select.select(listeners, [], [], 0)[0])  # a listening socket is readable while a connection waits
    except (OSError, ValueError):  # a listener closed while the worker shuts down
        return False


def on_starting(server):
    directory = Path(METRICS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A dead worker's live gauges leave the sums (its counters stay: they are totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
