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

The counters' epoch (`flash:{item}:epoch`) says what they were loaded from: "" when the sale was scheduled,
else the database's read they were rebuilt from (`pg:<snapshot>` on PostgreSQL, `seq:<last flash order id>` on
SQLite, then `#<nonce>`: every load is an epoch of its own), written atomically with them. An admission
returns the epoch it was counted under. Purchases admitted before Redis lost the counters are still in flight
when a rebuild reads the database, so their units are missing from it: once committed, such a purchase finds
the epoch changed and, unless the rebuild's read saw its commit, takes its units from the rebuilt counters
(`take`); one rolled back gives nothing back to counters that never counted it (`release` with its epoch). The
counters converge as the last purchase admitted before the loss finishes, not when the reconcile job next
runs. A rebuild (and the reconcile) takes the item's row before its read and holds it until its load is done,
so no purchase commits in between (services._truth_read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import redis

from mall import rate_limits

PENDING_SECONDS = 120  # longer than any request; a crashed request's marker goes away by itself
ONCE_SECONDS = 24 * 3600  # how long a finished purchase is replayed from Redis

# KEYS: remaining, buyers, meta, epoch, then the request's idempotency record (if ARGV[5] == '1'), a guard key
# and a key that must be absent (if ARGV[8] == '1') and a rate-limit window (if ARGV[11] == '1'). ARGV: now_ms,
# user, quantity, sale, once?, request hash, pending TTL, guard?, expected, probe? (ARGV[10] == '1': decide, change
# nothing but the window: 1 means "would admit"), window?, its amount, its seconds. Admitted: {1, epoch}. Over
# the window: {-12, ttl}.
ADMIT = (
    """
local k = 5
local once, guard, absent, rate_key
if ARGV[5] == '1' then once = KEYS[k]; k = k + 1 end
if ARGV[8] == '1' then guard = KEYS[k]; absent = KEYS[k + 1]; k = k + 2 end
if ARGV[11] == '1' then rate_key = KEYS[k] end
local rate_amount, rate_seconds = tonumber(ARGV[12]), ARGV[13]
"""
    + rate_limits.HIT_LUA
    + """
if guard and (redis.call('GET', guard) ~= ARGV[9] or redis.call('EXISTS', absent) == 1) then return {-11} end
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
return {1, redis.call('GET', KEYS[4]) or ''}
"""
)

# Give units back: only if the counters exist and, when an epoch is given (ARGV[4] == '1': an admission that
# was never committed), only if they are still those it was counted in (rebuilt ones never counted it).
# KEYS: remaining, buyers, epoch, then the request's idempotency record (if given), which goes in any case.
RELEASE = """
if #KEYS > 3 then redis.call('DEL', KEYS[4]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[4] == '1' and (redis.call('GET', KEYS[3]) or '') ~= ARGV[3] then return 0 end
redis.call('INCRBY', KEYS[1], ARGV[2])
if tonumber(redis.call('HINCRBY', KEYS[2], ARGV[1], -tonumber(ARGV[2]))) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""

# KEYS: remaining, buyers, epoch. ARGV: only if missing?, remaining, epoch, then user, quantity pairs.
LOAD = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""

# The epoch the counters are in now; false if they are missing. KEYS: remaining, epoch.
EPOCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('GET', KEYS[2]) or ''
"""

# A committed purchase that rebuilt counters did not count takes its units, if they are still in epoch ARGV[3].
# KEYS: remaining, buyers, epoch. ARGV: user, quantity, epoch.
TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 or (redis.call('GET', KEYS[3]) or '') ~= ARGV[3] then return 0 end
redis.call('DECRBY', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

OUTCOMES = {1: "admitted", -1: "not_started", -2: "ended", -3: "sold_out", -4: "limit_reached", -8: "not_found",
            -9: "not_loaded", -10: "seen", -11: "guard_failed", rate_limits.LIMITED: "rate_limited"}  # fmt: skip


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
    """A precondition the script checks first: `key` holds `value` and `absent` does not exist (the edge's
    bearer-token state, and its token's denylist key)."""

    key: str
    value: str
    absent: str

    def held(self) -> None:
        """The script found the value."""

    def check(self) -> None:
        """It did not: decide the slow way, and raise to refuse."""


def keys(item_id: int) -> tuple[str, str]:
    return f"flash:{{{item_id}}}:remaining", f"flash:{{{item_id}}}:buyers"  # one hash slot per item (Cluster)


def epoch_key(item_id: int) -> str:
    return f"flash:{{{item_id}}}:epoch"


def meta_key(item_id: int) -> str:
    return f"flash:{{{item_id}}}:meta"


def once_key(item_id: int, user_id: int, once: Once) -> str:
    return f"flash:{{{item_id}}}:once:{user_id}:{once.key}"


class Gate:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._admit = client.register_script(ADMIT)
        self._release = client.register_script(RELEASE)
        self._load = client.register_script(LOAD)
        self._epoch = client.register_script(EPOCH)
        self._take = client.register_script(TAKE)

    def admit(self, *, item_id: int, sale_id: int, user_id: int, quantity: int, now_ms: int,
              once: Once | None = None, guard: Guard | None = None, probe: bool = False,
              window: rate_limits.Window | None = None) -> tuple[str, Seen | None, str | None]:  # fmt: skip
        """The outcome, for "seen" what the key's earlier request left, and for "admitted" the counters' epoch
        it was counted in (None for a probe). With a `guard` the script runs only
        if its key holds its value, else the outcome is "guard_failed" (the caller checks the slow way, then
        runs without it): the edge passes its bearer token's cached state and denylist key, so checking the
        token costs no round trip of its own. (The guard key is in another hash slot: on a Redis Cluster it would
        have to go, as RQ would.) `probe`: decide but change nothing ("admitted" then means "would be admitted").
        `window`: count the request in this rate-limit window first (mall.rate_limits); over it, the outcome is
        "rate_limited", nothing else changed, and the third value the seconds until the window ends."""
        remaining, buyers = keys(item_id)
        ks = [remaining, buyers, meta_key(item_id), epoch_key(item_id)]
        args = [now_ms, user_id, quantity, sale_id, 0, "", 0, 0, "", int(probe), 0, 0, 0]
        if once is not None:
            ks.append(once_key(item_id, user_id, once))
            args[4:7] = [1, once.request_hash, PENDING_SECONDS]
        if guard is not None:
            ks += [guard.key, guard.absent]
            args[7:9] = [1, guard.value]
        if window is not None:
            ks.append(window.key)
            args[10:13] = [1, *window.args()]
        result = self._admit(keys=ks, args=args)
        outcome = OUTCOMES[int(result[0])]
        if outcome == "rate_limited":
            return outcome, None, str(result[1])
        seen = Seen.parse(result[1]) if outcome == "seen" else None
        epoch = _text(result[1]) if outcome == "admitted" and len(result) > 1 else None
        return outcome, seen, epoch

    def remember(self, *, item_id: int, user_id: int, once: Once, status: int, response: str) -> None:
        """The purchase is committed: retries of this key replay `response` for ONCE_SECONDS."""
        value = f"D|{once.request_hash}|{status}|{response}"
        self.client.set(once_key(item_id, user_id, once), value, ex=ONCE_SECONDS)

    def release(self, *, item_id: int, user_id: int, quantity: int, once: Once | None = None,
                epoch: str | None = None) -> None:  # fmt: skip
        """Units back to the counters. `epoch`: of an admission that was never committed, given back only to the
        counters it was counted in (None: a committed purchase's, cancelled; the counters hold it in any epoch)."""
        ks = [*keys(item_id), epoch_key(item_id)] + ([once_key(item_id, user_id, once)] if once is not None else [])
        self._release(keys=ks, args=[user_id, quantity, epoch or "", int(epoch is not None)])

    def epoch(self, item_id: int) -> str | None:
        """The epoch the counters are in; None if they are missing."""
        value = self._epoch(keys=[keys(item_id)[0], epoch_key(item_id)])
        return None if value is None else _text(value)

    def take(self, *, item_id: int, user_id: int, quantity: int, epoch: str) -> bool:
        """A committed purchase the counters of `epoch` did not count takes its units (False: not in that epoch)."""
        return bool(self._take(keys=[*keys(item_id), epoch_key(item_id)], args=[user_id, quantity, epoch]))

    def describe(self, *, item_id: int, sale_id: int, starts_ms: int, ends_ms: int, limit: int, open: bool) -> None:
        """The item's facts the script checks (they never change once scheduled; rewritten on every rebuild)."""
        self.client.hset(meta_key(item_id), mapping={"sale": sale_id, "starts": starts_ms, "ends": ends_ms,
                                                     "limit": limit, "open": int(open)})  # fmt: skip

    def load(self, *, item_id: int, remaining: int, buyers: dict[int, int], only_if_missing: bool = False,
             epoch: str = "") -> bool:  # fmt: skip
        """(Re)build the counters from the database's truth (read at `epoch`), atomically. False: `only_if_missing`
        and they were there."""
        flat = [x for user, qty in buyers.items() for x in (user, qty)]
        ks = [*keys(item_id), epoch_key(item_id)]
        return bool(self._load(keys=ks, args=[int(only_if_missing), remaining, epoch, *flat]))

    def counters(self, item_id: int) -> tuple[int | None, dict[int, int]]:
        remaining_key, buyers_key = keys(item_id)
        remaining = self.client.get(remaining_key)
        buyers = {int(u): int(q) for u, q in self.client.hgetall(buyers_key).items()}
        return (None if remaining is None else int(remaining)), buyers


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
