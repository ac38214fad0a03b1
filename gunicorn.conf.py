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
keepalive = 5  # seconds an idle client connection stays open (behind a load balancer: less than its own)
