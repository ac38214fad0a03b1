"""The flash-sale gate on this process's Redis connection."""

from __future__ import annotations

from functools import cache

from mall.promotions.flash_sale.admission import Gate
from workers import runtime
from workers.connection import get_redis


@cache
def _gate_for(url_key: str) -> Gate:
    return Gate(get_redis(runtime.settings()))


def gate() -> Gate:
    settings = runtime.settings()
    return _gate_for(settings.redis_url or "embedded")
