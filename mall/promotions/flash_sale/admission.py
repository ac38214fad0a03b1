"""Admission in Redis: one Lua script checks the window, the quota and the shopper's count and takes
the units, atomically. Redis holds counters only; the database (flash_orders) is the record, and
`load` rebuilds the counters from it whenever they are missing (Redis restarted or flushed)."""

from __future__ import annotations

import redis

ADMIT = """
local remaining = redis.call('GET', KEYS[1])
if not remaining then return -9 end
local now, starts, ends = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if now < starts then return -1 end
if now >= ends then return -2 end
local qty, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
if tonumber(remaining) < qty then return -3 end
local bought = tonumber(redis.call('HGET', KEYS[2], ARGV[4]) or '0')
if bought + qty > limit then return -4 end
redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[2], ARGV[4], qty)
return 1
"""

# Give units back: only if the counters exist (after a rebuild they already reflect the database).
RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('INCRBY', KEYS[1], ARGV[2])
if tonumber(redis.call('HINCRBY', KEYS[2], ARGV[1], -tonumber(ARGV[2]))) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""

LOAD_MISSING = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""

OUTCOMES = {1: "admitted", -1: "not_started", -2: "ended", -3: "sold_out", -4: "limit_reached", -9: "not_loaded"}


def keys(item_id: int) -> tuple[str, str]:
    return f"flash:{{{item_id}}}:remaining", f"flash:{{{item_id}}}:buyers"  # one hash slot per item (Cluster)


class Gate:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._admit = client.register_script(ADMIT)
        self._release = client.register_script(RELEASE)
        self._load_missing = client.register_script(LOAD_MISSING)

    def admit(self, *, item_id: int, user_id: int, quantity: int, limit: int, now_ms: int, starts_ms: int,
              ends_ms: int) -> str:  # fmt: skip
        result = self._admit(keys=keys(item_id), args=[now_ms, starts_ms, ends_ms, user_id, quantity, limit])
        return OUTCOMES[int(result)]

    def release(self, *, item_id: int, user_id: int, quantity: int) -> None:
        self._release(keys=keys(item_id), args=[user_id, quantity])

    def load(self, *, item_id: int, remaining: int, buyers: dict[int, int], only_if_missing: bool = False) -> None:
        """(Re)build the counters from the database's truth, atomically."""
        remaining_key, buyers_key = keys(item_id)
        if only_if_missing:
            flat = [x for user, qty in buyers.items() for x in (user, qty)]
            self._load_missing(keys=[remaining_key, buyers_key], args=[remaining, *flat])
            return
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(remaining_key, buyers_key)
        pipe.set(remaining_key, remaining)
        if buyers:
            pipe.hset(buyers_key, mapping={str(u): q for u, q in buyers.items()})
        pipe.execute()

    def counters(self, item_id: int) -> tuple[int | None, dict[int, int]]:
        remaining_key, buyers_key = keys(item_id)
        remaining = self.client.get(remaining_key)
        buyers = {int(u): int(q) for u, q in self.client.hgetall(buyers_key).items()}
        return (None if remaining is None else int(remaining)), buyers
