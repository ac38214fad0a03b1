# The one image every compose.yaml service runs (api, stream, worker, cron, migrate): the project and its pinned
# runtime dependencies, run as an unprivileged user. `docker compose up` builds it (see docs/operations.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MALL_INSTANCE_DIR=/app/instance
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --system --uid 10001 --home-dir /app mall && mkdir -p instance && chown mall instance
USER mall

EXPOSE 8000 8001
# gunicorn.conf.py (read from /app) sets the workers and threads; WEB_CONCURRENCY overrides the worker count.
CMD ["gunicorn", "wsgi:app", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
