"""One Redis connection per process, from REDIS_URL or the embedded server."""

from __future__ import annotations

import atexit

import redis

from mall.config import INSTANCE, Settings
from workers.embedded import EmbeddedRedis

_clients: dict[str, redis.Redis] = {}
_embedded: EmbeddedRedis | None = None


def redis_url(settings: Settings) -> str:
    """REDIS_URL if set; else the embedded server (started on first use, stopped at exit)."""
    global _embedded
    if settings.redis_url:
        return settings.redis_url
    if _embedded is None:
        _embedded = EmbeddedRedis(INSTANCE / "redis").start()
        atexit.register(_stop_embedded)
    return _embedded.url


def _stop_embedded() -> None:
    """At exit (a `flask mall demo` before `make run`, a shell): close this process's own connections first, or
    they count as other users and the server it started outlives it."""
    for client in _clients.values():
        client.connection_pool.disconnect()
    if _embedded is not None:
        _embedded.stop(force=False)


def get_redis(settings: Settings) -> redis.Redis:
    return client(redis_url(settings))


def client(url: str) -> redis.Redis:
    """This process's client of `url`, connecting on first use (closed at exit before the embedded server stops:
    share it rather than opening another pool)."""
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, health_check_interval=30, socket_timeout=5)
    return _clients[url]
