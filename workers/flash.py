"""This process's Redis-backed helpers: the flash-sale gate and the bearer-token cache (which the
composition root, workers/composition.py, switches on)."""

from __future__ import annotations

from functools import cache

from mall.identity import tokens
from mall.promotions.flash_sale.admission import Gate
from workers import runtime
from workers.connection import get_redis


@cache
def _gate_for(url_key: str) -> Gate:
    return Gate(get_redis(runtime.settings()))


def gate() -> Gate:
    settings = runtime.settings()
    return _gate_for(settings.redis_url or "embedded")


@cache
def _token_cache_for(url_key: str) -> tokens.TokenCache:
    return tokens.TokenCache(get_redis(runtime.settings()))


def token_cache() -> tokens.TokenCache:
    settings = runtime.settings()
    return _token_cache_for(settings.redis_url or "embedded")
