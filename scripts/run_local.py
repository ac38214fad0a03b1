"""`make run`: the API (gunicorn), the live rooms' event stream (api/live/stream.py, its own asyncio process on
STREAM_PORT, default 8001), an RQ worker with its scheduler and `rq cron`, as one foreground process.

With no REDIS_URL it starts the embedded Redis first and hands its socket to the
children; on Ctrl-C, SIGTERM, SIGHUP (the terminal closed) or the death of any child
everything is stopped, the embedded Redis last, so nothing is left running.

The children run in their own process group: a signal from the terminal reaches only
this supervisor, which stops them in order (gunicorn would take the terminal's SIGHUP
as "reload" and keep serving). If the supervisor itself is killed (SIGKILL), each child
and the embedded Redis get SIGTERM from the kernel (PR_SET_PDEATHSIG, Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mall.config import INSTANCE  # noqa: E402
from workers.embedded import EmbeddedRedis, EmbeddedRedisUnavailable, die_with_parent  # noqa: E402

BIN = Path(sys.executable).parent


def commands(port: str, stream_port: str = "8001") -> dict[str, list[str]]:
    return {
        "api": [str(BIN / "gunicorn"), "wsgi:app", "--bind", f"0.0.0.0:{port}", "--access-logfile", "-"],  # + gunicorn.conf.py
        # Open SSE streams hold a connection each: an event loop of their own, never the API's threads.
        "stream": [sys.executable, "-m", "api.live.stream", "--port", stream_port, "--redis-url", os.environ["REDIS_URL"]],
        "worker": [str(BIN / "rq"), "worker", "-w", "workers.worker.Worker", "--with-scheduler",
                   "--url", os.environ["REDIS_URL"], "high", "default", "low"],
        "cron": [str(BIN / "rq"), "cron", "workers/cron.py", "--url", os.environ["REDIS_URL"], "--path", str(ROOT)],
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["api", "stream", "worker", "cron"])
    args = parser.parse_args()
    embedded = None
    if not os.environ.get("REDIS_URL"):
        try:
            embedded = EmbeddedRedis(INSTANCE / "redis", die_with_parent=True).start()
        except EmbeddedRedisUnavailable as exc:
            print(f"make run: {exc}", file=sys.stderr)
            return 1
        os.environ["REDIS_URL"] = embedded.url
        say(f"embedded Redis at {embedded.url}")
    try:
        return supervise(args.only)
    finally:
        if embedded is not None:
            embedded.stop()
            say("embedded Redis stopped")


def say(line: str) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP): writing to it fails with EIO
        print(line, flush=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def supervise(only: str | None) -> int:
    port, stream_port = os.environ.get("PORT", "8000"), os.environ.get("STREAM_PORT", "8001")
    stop = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.append(True))
    children = {
        name: subprocess.Popen(cmd, cwd=ROOT, process_group=0, preexec_fn=die_with_parent(os.getpid()))
        for name, cmd in commands(port, stream_port).items()
        if only in (None, name)
    }
    say(
        f"running {', '.join(children)}; API on http://127.0.0.1:{port} (docs at /api/docs), room event streams on "
        f"http://127.0.0.1:{stream_port}/api/v1/live/rooms/<id>/events. Ctrl-C stops."
    )
    try:
        while not stop and all(p.poll() is None for p in children.values()):
            time.sleep(0.2)
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    failed = [name for name, p in children.items() if p.returncode not in (0, -signal.SIGTERM, None)]
    return 1 if failed and not stop else 0


if __name__ == "__main__":
    sys.exit(main())
