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

workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 3)
# A worker holds no more client connections than it can serve fairly. Left at gunicorn's 1000, a worker that
# happened to accept more of the keep-alive connections served each of them less often: at 32 clients
# over 3 x 3 threads, place@32's p99 was 285-387 ms against a p50 of 71-93 ms; with 4 per thread, 219 ms
# against 141 ms, at the same throughput. Beyond the cap a response closes its connection (gthread keeps
# at most worker_connections - threads idle ones) and the client's next one queues in the shared backlog,
# where any worker takes it.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS") or 4 * threads)
keepalive = 5  # seconds an idle client connection stays open (behind a load balancer: less than its own)
