"""The RQ worker class: `rq worker -w workers.worker.Worker --with-scheduler high default low`.

RQ forks a work horse per job. With RQ's own class the parent has imported nothing of the mall, so every
horse imported the jobs, configured the application (the composition root) and set up the mappers again:
about a second before each job's first line (a 'paid' message reached WeChat 1.5-2 s after the payment).
This class does that once, in the parent, before the first fork: every horse inherits the configured process
and starts on the job at once. A horse only drops the database connections it inherited (a connection must
never be shared by two processes); it opens its own on first use.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

import rq
import sqlalchemy as sa

from mall import logs
from mall.config import Settings
from workers import runtime

# Imported lazily by the jobs at run time: cheap once, paid by every horse if left to them.
_LAZY = ("workers.wechat_channel",)


def preload(settings: Settings | None = None) -> None:
    """Configure the application and import every job, as the parent of the work horses."""
    runtime.configure(settings or Settings.from_env())
    logs.configure(runtime.settings().log_format)
    import workers.jobs

    for module in pkgutil.iter_modules(workers.jobs.__path__, "workers.jobs."):
        importlib.import_module(module.name)
    for name in _LAZY:
        importlib.import_module(name)
    sa.orm.configure_mappers()


class Worker(rq.Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        preload()
        rq_log = logging.getLogger("rq.worker")  # RQ's own lines go through the root handler too (JSON in production)
        for handler in list(rq_log.handlers):  # the CLI gave it handlers of its own before the root one existed
            rq_log.removeHandler(handler)

    def main_work_horse(self, job, queue):
        runtime.after_fork()
        return super().main_work_horse(job, queue)

    def perform_job(self, job, queue):
        """The job's log lines carry the id of the request that enqueued it (`job-<id>` for a sweep's)."""
        token = logs.request_id.set((job.meta or {}).get("request_id") or f"job-{job.id}")
        try:
            return super().perform_job(job, queue)
        finally:
            logs.request_id.reset(token)
