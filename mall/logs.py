"""Log lines (ADR 0035): every record carries the request id of the request or job it was written for
(`request_id`, "-" outside both), and a process logs text or, in production, one JSON object per line.

The API sets the id per request (api/observability.py), RQ jobs carry it in their meta (workers/queues.py) and
the work horse sets it before the job runs (workers/worker.py)."""

from __future__ import annotations

import logging
import os
import re
import sys
from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="-")
ACCEPTED = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")  # an incoming X-Request-Id we pass on; anything else: our own
TEXT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"
_HANDLER = "mall.logs"  # the name of the handler `configure` installs (replaced, never doubled)


def accepted_or_new(incoming: str | None) -> str:
    """The caller's id when it is a sane token (bounded, no spaces or control characters), else a fresh one."""
    return incoming if incoming and ACCEPTED.fullmatch(incoming) else os.urandom(16).hex()


def _install_record_factory() -> None:
    """Every LogRecord gets `request_id`, whoever makes it and whichever handler writes it."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.request_id = request_id.get()
        return record

    factory.adds_request_id = True
    logging.setLogRecordFactory(factory)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    return logging.Formatter(TEXT)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """The root logger writes to stderr in `log_format` (text | json)."""
    _install_record_factory()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER)
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level)
