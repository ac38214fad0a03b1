"""The viewer cache: each room's rendered view in one Redis key, answered (or 304'd) from one GET.

Every viewer polls the room every few seconds, so a poll must cost one Redis read and no database work. The
key holds `<version> <etag>\\n<body>`: the room's version when it was rendered, the strong ETag (a digest of the
body, so a re-render that changed nothing keeps the ETag and viewers keep getting 304s) and the JSON body.

Writers refresh it after their commit (`publish`); a reader that misses renders and stores it too. A render is
fresh for TTL_MS and kept for STALE_MS: once it is no longer fresh, the first poll to notice re-renders it
while the others are answered the stale one (ADR 0019). Both store
through one script that keeps a newer version's render against an older one (a reader that read the database
just before a pin cannot put its stale view back after the pin's refresh). The re-render after TTL_MS bounds
how stale the remaining stock (moved by orders, which bump no version) or a missed refresh (a process
that died between its commit and the refresh) can be."""

from __future__ import annotations

import hashlib
import json
import logging

import redis
from sqlalchemy.orm import Session

from mall.live import queries
from mall.live.sync import LineupSync, NoSync, snapshot

log = logging.getLogger(__name__)

TTL_MS = 5_000  # how long a render is fresh
STALE_MS = 60_000  # how long a render is kept: served stale while one request re-renders it

# KEYS[1] the room's key (KEYS[2] its freshness marker); ARGV: version, value, fresh ms (, kept ms). Stores
# unless the key holds a newer version's render.
_STORE = """
local held = redis.call('GET', KEYS[1])
if held then
  local version = tonumber(string.match(held, '^(%d+) '))
  if version and version > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4] or ARGV[3])
if KEYS[2] then redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) end
return 1
"""


class RoomCache:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._store = client.register_script(_STORE)

    @staticmethod
    def key(room_id: int) -> str:
        return f"live:room:{room_id}:view"

    @staticmethod
    def fresh_key(room_id: int) -> str:
        return f"live:room:{room_id}:fresh"

    def get(self, room_id: int) -> tuple[str, bytes] | None:
        """(etag, body) from one MGET, or None when the caller is to render: on a miss (or when Redis is
        unreachable), or when the render is older than TTL_MS and this caller won the right to re-render it
        (one `SET NX` per stale moment; everyone else is answered the stale render meanwhile, so a crowd of
        polls never renders a room all at once)."""
        try:
            held, fresh = self.client.mget(self.key(room_id), self.fresh_key(room_id))
            if held is not None and fresh is None and self.client.set(self.fresh_key(room_id), b"r", nx=True,
                                                                        px=TTL_MS):  # fmt: skip
                return None
        except redis.RedisError:
            log.warning("live room %s: viewer cache unreachable", room_id, exc_info=True)
            return None
        if held is None:
            return None
        head, _, body = held.partition(b"\n")
        return head.split(b" ", 1)[1].decode(), body

    def fill(self, session: Session, room_id: int) -> tuple[str, bytes]:
        """Render the room from the database and store it (unless a newer render is there): (etag, body).
        Raises NotFound for a room viewers cannot see."""
        return self._render(session, room_id)[1:3]

    def publish(self, session: Session, room_id: int, sync: LineupSync | None = None) -> int | None:
        """After a commit that changed the room: the new view for the next poll, and to the external platform.
        Returns the room's version that view was rendered at (None if it could not be rendered)."""
        try:
            view, version = self._render(session, room_id)[::3]
        except Exception:  # committed all the same: the old view expires within TTL_MS
            log.warning("live room %s: viewer cache not refreshed", room_id, exc_info=True)
            return None
        try:
            (sync or NoSync()).push(snapshot(view))
        except Exception:  # the adapter's own retry (or the next change) brings the platform up to date
            log.warning("live room %s: lineup not synced", room_id, exc_info=True)
        return version

    def _render(self, session: Session, room_id: int) -> tuple[dict, str, bytes, int]:
        version, view = queries.room_view(session, room_id)
        body = json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode()
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        try:
            self._store(keys=[self.key(room_id), self.fresh_key(room_id)],
                        args=[version, f"{version} {etag}\n".encode() + body, TTL_MS, STALE_MS])  # fmt: skip
        except redis.RedisError:
            log.warning("live room %s: viewer cache not stored", room_id, exc_info=True)
        return view, etag, body, version

    def forget(self, room_id: int) -> None:
        self.client.delete(self.key(room_id), self.fresh_key(room_id))
