"""The RQ worker that `make run` starts configures the application once, in its parent, so a work horse
starts on its job at once; sweeps queue behind everything else."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import redis
from rq import Queue

ROOT = Path(__file__).resolve().parent.parent


def horse_state() -> dict:
    """A job: what the work horse found when it started on it."""
    from workers import runtime

    return {"configured": runtime._sessions is not None, "jobs_imported": "workers.jobs.orders" in sys.modules,
            "pid": os.getpid()}  # fmt: skip


def _env(tmp_path, redis_url) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MALL_ENV", "SECRET_KEY")}
    return env | {"DATABASE_URL": f"sqlite:///{tmp_path / 'worker.db'}", "REDIS_URL": redis_url}


def _make_run_commands(redis_url: str, monkeypatch) -> dict[str, list[str]]:
    spec = importlib.util.spec_from_file_location("run_local", ROOT / "scripts" / "run_local.py")
    run_local = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_local)
    monkeypatch.setenv("REDIS_URL", redis_url)
    return run_local.commands("0")


def test_a_work_horse_starts_configured(tmp_path, redis_url, monkeypatch):
    job = Queue("high", connection=redis.Redis.from_url(redis_url)).enqueue(horse_state)
    command = _make_run_commands(redis_url, monkeypatch)["worker"] + ["--burst"]

    worker = subprocess.run(command, cwd=ROOT, env=_env(tmp_path, redis_url), capture_output=True, text=True,
                            timeout=120)  # fmt: skip

    assert worker.returncode == 0, worker.stderr
    found = job.latest_result().return_value
    assert found["configured"] and found["jobs_imported"], found


def test_every_periodic_sweep_goes_on_the_low_queue(tmp_path, redis_url):
    code = "import json, workers.cron\nfrom rq import cron\n" \
           "print(json.dumps({d['func'].__name__: d['queue_name'] for d in cron._job_data_registry}))"  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(tmp_path, redis_url),
                            capture_output=True, text=True, timeout=60)  # fmt: skip

    assert result.returncode == 0, result.stderr
    sweeps = json.loads(result.stdout.splitlines()[-1])
    assert "sweep_unpaid_orders" in sweeps and "sweep_due_messages" in sweeps
    assert "release_unclaimed_prizes" in sweeps  # lucky-bag gifts not claimed in 24 h
    assert set(sweeps.values()) == {"low"}, sweeps


def test_one_batch_takes_a_scheduled_job_and_one_due_now(app):
    """A commit that schedules a job and queues another (the demo's place-and-pay in one transaction) writes both:
    RQ puts a pipeline it is given in MULTI mode, which redis-py refused once commands were buffered."""
    from datetime import timedelta

    from mall import clock
    from workers import queues

    with queues.batch():
        queues.enqueue_at(clock.now() + timedelta(hours=1), horse_state, job_id="later-1")
        queues.enqueue(horse_state, queue_name=queues.HIGH, job_id="now-1")

    assert "now-1" in queues.queue(queues.HIGH).job_ids
    assert "later-1" in queues.queue(queues.DEFAULT).scheduled_job_registry.get_job_ids()
