"""The nightly prune (mall/retention.py, ADR 0035): per table, a batch per transaction until a batch comes back
short or the run has used its budget (RETENTION_MAX_BATCHES); what is left goes in the next run."""

from __future__ import annotations

import logging
from datetime import timedelta

from mall import clock, retention
from workers import runtime
from workers.runtime import unit_of_work

log = logging.getLogger(__name__)


def prune_old_rows() -> dict[str, int]:
    """Rows deleted per table."""
    settings, deleted = runtime.settings(), {}
    for rule in retention.RULES:
        window, done = timedelta(days=getattr(settings, f"retention_{rule.window}")), 0
        for _ in range(settings.retention_max_batches):
            with unit_of_work() as session:
                batch = retention.prune(session, rule, now=clock.now(), window=window, limit=settings.retention_batch)
            done += batch
            if batch < settings.retention_batch:
                break
        deleted[rule.table] = done
    log.info("retention: rows deleted %s", deleted, extra={"deleted": deleted})
    return deleted
