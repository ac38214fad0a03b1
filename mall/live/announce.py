"""Room changes announced to the viewers' streams: after commit, one Redis PUBLISH on `live:room:{id}`.

Every change a viewer should see at once (pin, unpin, price, status, lucky_bag) calls `room_changed` after its
transaction committed (DESIGN §8: nothing leaves the process before the commit). The message is JSON
`{"room_id", "kind", "version", "payload"}`; the stream process (`api.live.stream`) relays it to every open
stream of the room as an SSE event whose `id` is the room's version, so a client that reconnects with
`Last-Event-ID` learns whether it missed something (and then re-reads the room).

The version is the room's `live_rooms.version` after the change. Callers that know it pass it; otherwise it is
taken from the viewer cache's render (`live:room:{id}:view`, refreshed after the same commit) or, failing that,
the last version announced. The script also keeps `live:room:{id}:version`, the highest version announced, which
the stream process reads when a client connects. Publishing is best-effort: a Redis error is logged and the
request that committed does not fail (viewers' polls see the change within the cache's 5 s anyway)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import redis

from mall.live.cache import RoomCache

log = logging.getLogger(__name__)

KINDS = ("pin", "unpin", "price", "status", "lucky_bag")
VERSION_TTL_S = 7 * 24 * 3600  # a room's last version outlives any show; an idle room's key goes away

# KEYS: channel, version key, view key. ARGV: version ('' if unknown), room id, kind, payload JSON, ttl s.
# Returns the number of subscribers (processes) that got it.
_ANNOUNCE = """
local version = tonumber(ARGV[1])
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
if not version then
  local view = redis.call('GET', KEYS[3])
  if view then version = tonumber(string.match(view, '^(%d+) ')) end
  if not version or version < held then version = held end
end
if version > held then redis.call('SET', KEYS[2], version, 'EX', ARGV[5])
else redis.call('EXPIRE', KEYS[2], ARGV[5]) end
local message = '{"room_id":' .. ARGV[2] .. ',"kind":' .. cjson.encode(ARGV[3]) .. ',"version":' .. version
  .. ',"payload":' .. ARGV[4] .. '}'
return redis.call('PUBLISH', KEYS[1], message)
"""

_redis: Callable[[], redis.Redis] | None = None
_scripts: dict[int, object] = {}


def channel(room_id: int) -> str:
    return f"live:room:{room_id}"


def version_key(room_id: int) -> str:
    return f"live:room:{room_id}:version"


def use_redis(factory: Callable[[], redis.Redis] | None) -> None:
    """The composition root gives the process's Redis (workers.composition); None switches announcing off."""
    global _redis
    _redis = factory
    _scripts.clear()


def room_changed(room_id: int, kind: str, payload: dict | None = None, *, version: int | None = None) -> int:
    """Announce a committed change of the room to its streams. Call after commit, never inside the transaction.
    Returns how many stream processes received it (0 when none listens, or on error)."""
    if kind not in KINDS:
        raise ValueError(f"unknown room change kind {kind!r}; one of {', '.join(KINDS)}")
    if _redis is None:
        log.warning("live room %s: %s not announced (no Redis wired)", room_id, kind)
        return 0
    try:
        client = _redis()
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts[id(client)] = client.register_script(_ANNOUNCE)
        body = json.dumps(payload or {}, ensure_ascii=False, separators=(",", ":"), default=str)
        keys = [channel(room_id), version_key(room_id), RoomCache.key(room_id)]
        return int(script(keys=keys, args=["" if version is None else version, room_id, kind, body, VERSION_TTL_S]))
    except redis.RedisError:
        log.warning("live room %s: %s not announced", room_id, kind, exc_info=True)
        return 0


def last_version(client: redis.Redis, room_id: int) -> int | None:
    held = client.get(version_key(room_id))
    return None if held is None else int(held)
