"""Admission in Redis: one Lua script checks the request's idempotency record, the sale, the window,
the quota and the shopper's count and takes the units, atomically, in one round trip. Redis holds
counters, the item's immutable facts (sale, window, per-shopper limit) and short-lived idempotency
records only; the database (flash_orders, idempotency_records) is the record, and `load`/`describe`
rebuild the counters and facts from it whenever they are missing (Redis restarted or flushed).

A refusal (not started, ended, sold out, limit reached) therefore costs one script call and no
database read at all; the script can also check the caller's bearer-token state (a guard key), so
that check needs no round trip of its own.

Idempotency records of purchases (`flash:{item}:once:{user}:{key}`): the script refuses to run a key
it has seen and, when it admits, writes `P|<request hash>` (in progress, PENDING_SECONDS); once the
order is committed the edge overwrites it with `D|<hash>|<status>|<response JSON>` (ONCE_SECONDS).
A refusal leaves no record (as with the database records: a domain error keeps no key), and giving
the units back removes it. The durable record of an admitted purchase is still the database's
idempotency_records row, written in the order's transaction: it is consulted when Redis has lost its
state, and its unique index refuses a second order for the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import redis

PENDING_SECONDS = 120  # longer than any request; a crashed request's marker goes away by itself
ONCE_SECONDS = 24 * 3600  # how long a finished purchase is replayed from Redis

# KEYS: remaining, buyers, meta, then the request's idempotency record (if ARGV[5] == '1') and a guard key
# (if ARGV[8] == '1'). ARGV: now_ms, user, quantity, sale, once?, request hash, pending TTL, guard?, expected,
# probe? (ARGV[10] == '1': decide, change nothing: 1 means "would admit").
ADMIT = """
local k = 4
local once, guard
if ARGV[5] == '1' then once = KEYS[k]; k = k + 1 end
if ARGV[8] == '1' then guard = KEYS[k] end
if guard and redis.call('GET', guard) ~= ARGV[9] then return {-11} end
if once then
  local seen = redis.call('GET', once)
  if seen then return {-10, seen} end
end
local remaining = redis.call('GET', KEYS[1])
local meta = redis.call('HMGET', KEYS[3], 'sale', 'starts', 'ends', 'limit', 'open')
if not remaining or not meta[1] then return {-9} end
if meta[1] ~= ARGV[4] or meta[5] ~= '1' then return {-8} end
local now = tonumber(ARGV[1])
if now < tonumber(meta[2]) then return {-1} end
if now >= tonumber(meta[3]) then return {-2} end
local qty = tonumber(ARGV[3])
if tonumber(remaining) < qty then return {-3} end
local bought = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if bought + qty > tonumber(meta[4]) then return {-4} end
if ARGV[10] == '1' then return {1} end
redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[2], ARGV[2], qty)
if once then redis.call('SET', once, 'P|' .. ARGV[6], 'EX', ARGV[7]) end
return {1}
"""

# Give units back: only if the counters exist (after a rebuild they already reflect the database).
# The request's idempotency record (KEYS[3], if given) goes in any case.
RELEASE = """
if #KEYS > 2 then redis.call('DEL', KEYS[3]) end
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

OUTCOMES = {1: "admitted", -1: "not_started", -2: "ended", -3: "sold_out", -4: "limit_reached", -8: "not_found",
            -9: "not_loaded", -10: "seen", -11: "guard_failed"}  # fmt: skip


@dataclass(frozen=True)
class Once:
    """One request's idempotency: (scope, key) of this caller, and the hash of what was asked."""

    scope: str
    key: str
    request_hash: str


class Seen(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """This key was used before: in progress (status None), or finished with `status` and `response` (JSON)."""

    def __init__(self, request_hash: str, status: int | None = None, response: str | None = None):
        super().__init__(request_hash)
        self.request_hash, self.status, self.response = request_hash, status, response

    @classmethod
    def parse(cls, raw: bytes | str) -> Seen:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if text.startswith("D|"):
            _, request_hash, status, response = text.split("|", 3)
            return cls(request_hash, int(status), response)
        return cls(text.partition("|")[2])


class Guard(Protocol):
    """A precondition the script checks first: `key` holds `value` (the edge's bearer-token state)."""

    key: str
    value: str

    def held(self) -> None:
        """The script found the value."""

    def check(self) -> None:
        """It did not: decide the slow way, and raise to refuse."""


def keys(item_id: int) -> tuple[str, str]:
    return f"flash:{{{item_id}}}:remaining", f"flash:{{{item_id}}}:buyers"  # one hash slot per item (Cluster)


def meta_key(item_id: int) -> str:
    return f"flash:{{{item_id}}}:meta"


def once_key(item_id: int, user_id: int, once: Once) -> str:
    return f"flash:{{{item_id}}}:once:{user_id}:{once.key}"


class Gate:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._admit = client.register_script(ADMIT)
        self._release = client.register_script(RELEASE)
        self._load_missing = client.register_script(LOAD_MISSING)

    def admit(self, *, item_id: int, sale_id: int, user_id: int, quantity: int, now_ms: int,
              once: Once | None = None, guard: Guard | None = None,
              probe: bool = False) -> tuple[str, Seen | None]:  # fmt: skip
        """The outcome, and for "seen" what the key's earlier request left. With a `guard` the script runs only
        if its key holds its value, else the outcome is "guard_failed" (the caller checks the slow way, then
        runs without it): the edge passes its bearer token's cached state, so checking the token costs no
        round trip of its own. (The guard key is in another hash slot: on a Redis Cluster it would have to
        go, as RQ would.) `probe`: decide but change nothing ("admitted" then means "would be admitted")."""
        remaining, buyers = keys(item_id)
        ks = [remaining, buyers, meta_key(item_id)]
        args = [now_ms, user_id, quantity, sale_id, 0, "", 0, 0, "", int(probe)]
        if once is not None:
            ks.append(once_key(item_id, user_id, once))
            args[4:7] = [1, once.request_hash, PENDING_SECONDS]
        if guard is not None:
            ks.append(guard.key)
            args[7:9] = [1, guard.value]
        result = self._admit(keys=ks, args=args)
        outcome = OUTCOMES[int(result[0])]
        return outcome, (Seen.parse(result[1]) if outcome == "seen" else None)

    def remember(self, *, item_id: int, user_id: int, once: Once, status: int, response: str) -> None:
        """The purchase is committed: retries of this key replay `response` for ONCE_SECONDS."""
        value = f"D|{once.request_hash}|{status}|{response}"
        self.client.set(once_key(item_id, user_id, once), value, ex=ONCE_SECONDS)

    def release(self, *, item_id: int, user_id: int, quantity: int, once: Once | None = None) -> None:
        ks = [*keys(item_id)] + ([once_key(item_id, user_id, once)] if once is not None else [])
        self._release(keys=ks, args=[user_id, quantity])

    def describe(self, *, item_id: int, sale_id: int, starts_ms: int, ends_ms: int, limit: int, open: bool) -> None:
        """The item's facts the script checks (they never change once scheduled; rewritten on every rebuild)."""
        self.client.hset(meta_key(item_id), mapping={"sale": sale_id, "starts": starts_ms, "ends": ends_ms,
                                                     "limit": limit, "open": int(open)})  # fmt: skip

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
