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
        atexit.register(_embedded.stop, force=False)
    return _embedded.url


def get_redis(settings: Settings) -> redis.Redis:
    url = redis_url(settings)
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, health_check_interval=30, socket_timeout=5)
    return _clients[url]
