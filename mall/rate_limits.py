"""Rate-limit windows shared by flask-limiter (api/limits.py) and the WSGI fast paths (ADR 0033).

A family (`purchases`, `link_opens`, ...) has one limit like `30/minute`, counted per caller (`user:<id>`, or
`ip:<address>` for anonymous calls) in a fixed window, in Redis. flask-limiter counts the Flask routes; the flash
purchase and live link-open fast paths count the same key themselves, inside the Redis script they run anyway
(`HIT_LUA`), so a request costs no extra round trip and is counted once whichever way it goes. The key and the
arithmetic are those of the `limits` package's fixed window on its Redis storage (what flask-limiter uses):
`LIMITS:LIMITER/<caller>/<family>/<amount>/<multiples>/<granularity>`, INCRBY then EXPIRE on the first hit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import limits

# Family -> production default (one limit each; env RATE_LIMIT_<FAMILY> overrides). Documented in
# docs/operations.md ("Rate limits").
DEFAULTS = {
    "login_ip": "60/minute",  # password and WeChat logins, per client IP
    "login_account": "10/hour",  # password logins, per email (credential stuffing)
    "claims": "30/minute",  # coupon claims
    "purchases": "30/minute",  # order placement, flash purchases, group-buy joins (one budget)
    "link_opens": "60/minute",  # live cart links and guide share links
    "subscriptions": "30/minute",  # notification subscription grants
    "writes": "120/minute",  # any other write by a shopper or an anonymous caller
}
STORAGE_PREFIX = "LIMITS"  # limits.storage.RedisStorage.PREFIX

# A Lua fragment for a script that set the locals `rate_key` (nil: no limit), `rate_amount` and `rate_seconds`:
# count this request in the window and, over the limit, return {LIMITED, seconds left} from the script at once
# (before anything else it would do: a limited request changes nothing but its own count).
HIT_LUA = """
if rate_key then
  local hits = redis.call('INCRBY', rate_key, 1)
  if hits == 1 then redis.call('EXPIRE', rate_key, rate_seconds) end
  if hits > rate_amount then
    local ttl = redis.call('TTL', rate_key)
    if ttl < 1 then ttl = 1 end
    return {-12, ttl}
  end
end
"""
LIMITED = -12

# Count the request in the window KEYS[2] (ARGV: amount, seconds), then read KEYS[1]: {0, value} ({0} if missing).
GET_COUNTED = (
    "local rate_key, rate_amount, rate_seconds = KEYS[2], tonumber(ARGV[1]), ARGV[2]\n"
    + HIT_LUA
    + "if redis.call('EXISTS', KEYS[3]) == 1 then return {0} end\n"  # a denied token: no entry, the slow way
    + "return {0, redis.call('GET', KEYS[1])}\n"
)


@functools.lru_cache(maxsize=64)
def parse(value: str) -> limits.RateLimitItem:
    """One limit (`30/minute`, `10 per hour`); ValueError otherwise."""
    items = limits.parse_many(value)
    if len(items) != 1:
        raise ValueError(f"one limit, like 30/minute, not {value!r}")
    return items[0]


@dataclass(frozen=True)
class Window:
    """Where and how a caller's requests of a family are counted."""

    key: str
    amount: int
    seconds: int

    @classmethod
    def of(cls, value: str, *, caller: str, family: str) -> Window:
        item = parse(value)
        return cls(f"{STORAGE_PREFIX}:{item.key_for(caller, family)}", item.amount, item.get_expiry())

    def args(self) -> list[int]:
        return [self.amount, self.seconds]
