"""`make run` (scripts/run_local.py) leaves nothing behind, however it ends: a closed terminal (SIGHUP to its
process group), SIGTERM, or SIGKILL of the supervisor itself. Nothing left means no API, worker, cron or
embedded Redis process, and the API's and the stream's ports free for the next `make run`."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from workers.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; PR_SET_PDEATHSIG is Linux's")


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def _tree(pid: int) -> set[int]:
    seen, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += _children(p)
    return seen


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait() is missing


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s; supervisor log:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


def _livez(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def _redis_answers(socket_path: str) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=socket_path, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _worker_registered(socket_path: str) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=socket_path, socket_timeout=1).smembers("rq:workers"))
    except (redis.RedisError, OSError):
        return False


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "hup", "term", "kill"]
)
def test_the_supervisor_leaves_nothing_running_however_it_ends(signum, tmp_path):
    port, stream_port, log = _free_port(), _free_port(), tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MALL_ENV", "SECRET_KEY")}
    env |= {"MALL_INSTANCE_DIR": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite:///{tmp_path / 'mall.db'}",
            "PORT": str(port), "STREAM_PORT": str(stream_port), "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}  # fmt: skip
    with log.open("wb") as out:
        # A session of its own, as a terminal's foreground job: the terminal's SIGHUP goes to this group.
        supervisor = subprocess.Popen([sys.executable, "scripts/run_local.py"], cwd=ROOT, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    running: set[int] = set()
    try:
        _wait(lambda: re.search(r"embedded Redis at unix://(\S+)", log.read_text()), 30, "no embedded Redis", log)
        socket_path = re.search(r"embedded Redis at unix://(\S+)", log.read_text())[1]
        _wait(lambda: _livez(port) and _livez(stream_port) and _worker_registered(socket_path), 120,
              "API, stream and worker not up", log)  # fmt: skip
        running = _tree(supervisor.pid) - {supervisor.pid}
        assert len(running) >= 5  # gunicorn master + worker, stream, rq worker, rq cron, redis-server

        if signum in (signal.SIGINT, signal.SIGHUP):
            os.killpg(supervisor.pid, signum)  # what Ctrl-C and closing the terminal do
        else:
            os.kill(supervisor.pid, signum)
        supervisor.wait(timeout=60)

        _wait(lambda: not any(_alive(p) for p in running), 60, "processes left running", log)
        assert _port_free(port) and _port_free(stream_port)
        assert not _redis_answers(socket_path)
    finally:
        for pid in running | {supervisor.pid}:  # whatever a failure left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        supervisor.wait(timeout=5)


def test_a_second_process_on_the_instance_joins_the_embedded_redis_and_leaves_it_running(tmp_path):
    (tmp_path / "redis.sock").write_text("")  # left by a server that was killed
    owner = EmbeddedRedis(tmp_path, die_with_parent=True).start()
    joined = EmbeddedRedis(tmp_path).start()

    server = owner.pid
    assert joined.url == owner.url and joined.pid is None and server
    joined.stop()
    assert _redis_answers(owner.socket_path)
    owner.stop()
    assert not _redis_answers(owner.socket_path) and not _alive(server)


def test_a_command_that_started_the_embedded_redis_stops_it_when_it_ends(tmp_path):
    """`make run` runs `flask mall demo` first: the Redis that command started must not outlive it (it used to,
    its own pooled connections counting as other users), or `make run` joins it and leaves it running at the end."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MALL_ENV", "SECRET_KEY")}
    env |= {"MALL_INSTANCE_DIR": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite:///{tmp_path / 'mall.db'}"}
    code = ("from mall.config import Settings\nfrom workers.connection import get_redis\n"
            "client = get_redis(Settings.from_env())\nclient.set('k', 'v')\n"
            "print(client.connection_pool.connection_kwargs['path'])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    assert not _redis_answers(done.stdout.strip())
