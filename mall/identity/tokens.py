"""Bearer tokens: short JWTs signed with the app's secret, revocable by bumping token_version.

Checking a token needs the user's token_version, role, brand and status. They are cached in Redis
(`auth:user:{id}`, CACHE_SECONDS) so a request does not read the user row; the cache is kept exact by
the write path, not by expiry:

- a miss reads the row and fills the entry only if the key is absent (SET NX), and so does issuing a
  token (a login), with the state it was issued against;
- every change to those columns of a user, or a deleted user, through an ORM session (the unit of work,
  or `session.execute(update(User)/delete(User))`, e.g. `identity.services.revoke_tokens`) first
  overwrites the entry with a tombstone for TOMBSTONE_SECONDS, before the change is written, and again
  after the commit. A tombstone sends readers to the database and blocks fills, so a reader that loaded
  the old row just before the change cannot put it back. If Redis cannot be told, the change fails
  (a revocation that could not reach the cache does not happen).

Only those four columns count: an UPDATE through the session that sets none of them (levels,
birthdays, scores, over any number of users) writes nothing to Redis. Writes that bypass the ORM
session (raw SQL such as `session.execute(text(...))`, a Core connection, psql, another program) are not
seen: when they change a cached column they must call `TokenCache(redis).invalidate(user_ids)` before
and after their commit, as the unit of work does, or revoke by bumping `token_version` through the ORM.
With no cache configured (`use_cache` not called), every check reads the user row, as before.

One token is revoked by its `jti` (ADR 0032): `deny` writes `auth:deny:{jti}` until the token would expire anyway,
and every check reads it with the user's entry in the same round trip (`TokenCache.lookup`, one MGET; the flash
gate's script and the link fast path read both too). The denylist lives in Redis only: a Redis that loses its data
forgets single-token logouts, for at most an access token's life (refresh families are revoked in the database).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta

import jwt
import redis
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from mall import clock, rate_limits
from mall.errors import Unauthorized, Unavailable
from mall.identity.models import User
from mall.identity.roles import Actor, Role

ALGORITHM = "HS256"
CACHE_SECONDS = 3600
TOMBSTONE_SECONDS = 900  # longer than any transaction that changes a user
TOMBSTONE = b"-"
WATCHED = ("token_version", "role", "brand_id", "status")
REQUIRED = ["sub", "exp", "role", "ver", "jti"]


def new_id() -> str:
    """A token id (`jti`) or a login's refresh family (`sid`): 128 random bits, 32 hex digits."""
    return secrets.token_hex(16)


def issue(user: User, *, secret: str, ttl_seconds: int, jti: str | None = None,
          sid: str | None = None) -> tuple[str, int]:  # fmt: skip
    """An access token: `jti` names it (for `deny`), `sid` the refresh family it was issued with (if any)."""
    now = clock.now()
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "brand_id": user.brand_id,
        "ver": user.token_version,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": jti or new_id(),
    }
    if sid is not None:
        claims["sid"] = sid
    if _cache is not None:  # the state the token was just issued against: its first request reads no row
        _cache().fill(user.id, _state(user))
    return jwt.encode(claims, secret, algorithm=ALGORITHM), ttl_seconds


def decode(token: str, *, secret: str) -> dict:
    """Verify signature and expiry against the project clock; return the claims.

    PyJWT checks `exp`, `iat` and `nbf` against the wall clock, so a token issued while the
    project clock runs ahead would be refused as "not yet valid": only `exp` is checked, here.
    """
    try:
        claims = _verified(token, secret)
    except (jwt.InvalidTokenError, TypeError, ValueError) as exc:
        raise Unauthorized("auth.token_invalid", "The bearer token is invalid.") from exc
    if float(claims["exp"]) <= clock.now().timestamp():
        raise Unauthorized("auth.token_expired", "The bearer token has expired; log in again.")
    return dict(claims)


@functools.lru_cache(maxsize=8192)
def _verified(token: str, secret: str) -> dict:
    """The signature check (about 60 us in PyJWT) done once per token and secret in this process: a
    signature that verified once always will. Expiry and revocation are checked on every request."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": REQUIRED},
    )
    float(claims["exp"]), int(claims["sub"])
    if not isinstance(claims["jti"], str) or not 1 <= len(claims["jti"]) <= 64:
        raise ValueError("jti")
    return claims


def actor_for(session, claims: dict, cache: TokenCache | None = None) -> Actor:
    """The claims must still match a live user (role, brand and token version unchanged)."""
    user_id = int(claims["sub"])
    cached, denied = cache.lookup(user_id, claims["jti"]) if cache is not None else (None, False)
    if denied:
        raise Unauthorized("auth.token_revoked", "This token was revoked (logged out); log in again.")
    if cached is not None and cached != TOMBSTONE:
        state = _parse(cached)
    else:
        user = session.get(User, user_id)
        state = None if user is None else _state(user)
        if state is not None and cache is not None and cached is None:
            cache.fill(user_id, state)
    if state is None:
        raise Unauthorized("auth.token_revoked", "This token is no longer valid; log in again.")
    version, role, brand_id, status = state
    if status != "active" or version != claims.get("ver"):
        raise Unauthorized("auth.token_revoked", "This token is no longer valid; log in again.")
    if role != claims["role"] or brand_id != claims.get("brand_id"):
        raise Unauthorized("auth.token_revoked", "This token is no longer valid; log in again.")
    return Actor(user_id=user_id, role=Role(role), brand_id=brand_id)


def guard(claims: dict) -> tuple[str, str, str]:
    """(cache key, value, denylist key): the token is good while the key holds exactly that value and the denylist
    key does not exist. For a check done inside another Redis script (the flash gate's), saving the round trip of
    `actor_for`'s read. A miss, a tombstone, any other value or a denial means "ask `actor_for`"."""
    brand_id = claims.get("brand_id")
    state = f"{claims.get('ver')}|{claims['role']}|{'' if brand_id is None else brand_id}|active"
    return TokenCache.key(int(claims["sub"])), state, TokenCache.deny_key(claims["jti"])


def deny(expiries: dict[str, float]) -> None:
    """Revoke access tokens (jti -> exp, a Unix time) until they would have expired anyway, in one round trip.
    Unavailable (503) if Redis cannot be told: a logout that could not reach the denylist does not happen. Nothing
    to do without a cache (no denylist then)."""
    if _cache is None or not expiries:
        return
    try:
        _cache().deny(expiries)
    except redis.RedisError as exc:
        raise Unavailable("auth.revocation_unavailable", "Tokens cannot be revoked right now; try again.") from exc


def _state(user: User) -> tuple[int, str, int | None, str]:
    return user.token_version, user.role, user.brand_id, user.status


def _parse(raw: bytes) -> tuple[int, str, int | None, str]:
    version, role, brand_id, status = raw.decode().split("|")
    return int(version), role, (int(brand_id) if brand_id else None), status


class TokenCache:
    """What a token is checked against, per user, in Redis (see the module docstring)."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self._get_counted = client.register_script(rate_limits.GET_COUNTED)

    @staticmethod
    def key(user_id: int) -> str:
        return f"auth:user:{user_id}"

    @staticmethod
    def deny_key(jti: str) -> str:
        return f"auth:deny:{jti}"

    def get(self, user_id: int) -> bytes | None:
        return self.lookup(user_id, "")[0]

    def lookup(self, user_id: int, jti: str) -> tuple[bytes | None, bool]:
        """The user's cached state and whether the token `jti` is denied, in one round trip."""
        try:
            state, denied = self.client.mget(self.key(user_id), self.deny_key(jti))
        except redis.RedisError:
            return TOMBSTONE, False  # Redis unavailable: read the database and cache nothing
        return state, denied is not None

    def current(self, claims: dict) -> bool:
        """The token's user is cached as the token claims and the token is not denied (what `actor_for` checks)."""
        _, value, _ = guard(claims)
        state, denied = self.lookup(int(claims["sub"]), claims["jti"])
        return not denied and state == value.encode()

    def deny(self, tokens: dict[str, float]) -> None:
        """Deny each token id until its expiry (a Unix time); raises if Redis cannot be reached."""
        now = clock.now().timestamp()
        pipe = self.client.pipeline(transaction=False)
        for jti, expires_at in tokens.items():
            if expires_at > now:
                pipe.set(self.deny_key(jti), b"1", ex=max(1, int(expires_at - now) + 1))
        pipe.execute()

    def get_counted(self, user_id: int, jti: str, window: rate_limits.Window) -> tuple[bytes | None, int | None]:
        """`get`, counting the request in a rate-limit window in the same round trip: (the entry, None), or
        (None, seconds until the window ends) when the request is over its limit (then nothing is read). Raises
        if Redis cannot be reached."""
        result = self._get_counted(keys=[self.key(user_id), window.key, self.deny_key(jti)], args=window.args())
        if int(result[0]) == rate_limits.LIMITED:
            return None, int(result[1])
        return (result[1] if len(result) > 1 else None), None

    def fill(self, user_id: int, state: tuple) -> None:
        version, role, brand_id, status = state
        value = f"{version}|{role}|{'' if brand_id is None else brand_id}|{status}"
        with contextlib.suppress(redis.RedisError):
            self.client.set(self.key(user_id), value, nx=True, ex=CACHE_SECONDS)

    def invalidate(self, user_ids: Iterable[int]) -> None:
        """Tombstone these users' entries. Raises if Redis cannot be reached."""
        pipe = self.client.pipeline(transaction=False)
        for user_id in set(user_ids):
            pipe.set(self.key(user_id), TOMBSTONE, ex=TOMBSTONE_SECONDS)
        pipe.execute()


# ---- invalidation on the write path --------------------------------------------------------------

_cache: Callable[[], TokenCache] | None = None
_TOUCHED = "mall.tokens.touched"


def use_cache(cache: Callable[[], TokenCache] | None) -> None:
    """Switch this process's cache on (the composition root does, for the app and the workers)."""
    global _cache
    _cache = cache


def cache_factory() -> Callable[[], TokenCache] | None:
    return _cache


def _touch(session: Session, user_ids: Iterable[int]) -> None:
    ids = set(user_ids)
    if not ids or _cache is None:
        return
    _cache().invalidate(ids)  # before the change is written; raises (and so fails the change) without Redis
    session.info.setdefault(_TOUCHED, set()).update(ids)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state) -> None:
    if _cache is None or not (state.is_update or state.is_delete):
        return
    statement = state.statement
    table = getattr(statement, "table", None)  # an annotated copy for update(User)/delete(User)
    if table is None or getattr(table, "name", None) != User.__tablename__:
        return
    params = state.parameters
    if state.is_update and not _sets_watched(statement, params):
        return  # levels, birthdays, scores: nothing a token is checked against changed
    if isinstance(params, list):  # bulk UPDATE by primary key
        ids = [p["id"] for p in params if "id" in p]
    else:
        where = statement.whereclause
        query = sa.select(User.id) if where is None else sa.select(User.id).where(where)
        ids = state.session.scalars(query, params or {}).all()
    _touch(state.session, ids)


def _sets_watched(statement, params) -> bool:
    """Whether an UPDATE of users may change a cached column: in its VALUES, or in the per-row parameters
    of an ORM bulk update by primary key. A column named by neither is left as it was."""
    names = {getattr(col, "key", col) for col in (getattr(statement, "_values", None) or {})}
    for row in params if isinstance(params, list) else [params or {}]:
        names.update(row)
    return not names.isdisjoint(WATCHED)


@event.listens_for(Session, "before_flush")
def _on_flush(session: Session, _context, _instances) -> None:
    if _cache is None:
        return
    ids = [u.id for u in session.deleted if isinstance(u, User) and u.id is not None]
    for user in session.dirty:
        if isinstance(user, User) and user.id is not None:
            attrs = sa.inspect(user).attrs
            if any(attrs[name].history.has_changes() for name in WATCHED):
                ids.append(user.id)
    _touch(session, ids)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    ids = session.info.pop(_TOUCHED, None)
    if ids and _cache is not None:
        with contextlib.suppress(redis.RedisError):  # the tombstones written before the change still stand
            _cache().invalidate(ids)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_TOUCHED, None)
