"""Logins as refresh-token families (ADR 0032).

A login gets a short-lived access token (a JWT, `mall.identity.tokens`) and an opaque refresh token: 256 random
bits shown to the client once, stored as their SHA-256. Presenting a refresh token (`rotate`) uses it up and
answers a new pair in the same family; a refresh token presented a second time means two parties hold it (a
stolen copy, or a client that lost an answer): the whole family is revoked, its live access tokens denied, and
both parties log in again. A refresh token also stops working when it has not been used for `refresh` seconds,
when its login is `absolute` seconds old, when its user logs out everywhere, is disabled or is gone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.errors import Unauthorized
from mall.identity import tokens
from mall.identity.models import RefreshToken, User


@dataclass(frozen=True)
class Lifetimes:
    access: int  # seconds
    refresh: int  # a refresh token unused this long expires
    absolute: int  # a login's refresh tokens all end this long after it


@dataclass(frozen=True)
class Grant:
    """What a login or a refresh answers."""

    user: User
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class Reused(Unauthorized):
    """A used refresh token came back: its family is revoked (the caller commits that, then answers 401)."""


def start(session: Session, user: User, *, secret: str, lifetimes: Lifetimes) -> Grant:
    """A new login of `user`: a new family."""
    now = clock.now()
    return _grant(session, user, tokens.new_id(), now + timedelta(seconds=lifetimes.absolute), secret, lifetimes)


def rotate(session: Session, raw: str, *, secret: str, lifetimes: Lifetimes) -> Grant:
    """Use up the refresh token `raw` and answer the family's next pair. Raises Unauthorized when it is unknown,
    expired, revoked or its user may no longer log in, and Reused (after revoking the family) when it was used."""
    row = session.scalar(sa.select(RefreshToken).where(RefreshToken.token_hash == _hash(raw)))
    if row is None or row.revoked_at is not None:
        raise _invalid()
    now = clock.now()
    # The use is a conditional write: of two requests showing the same token, exactly one finds it unused.
    used = session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        revoke_family(session, row.family)
        raise Reused("auth.refresh_reused", "This refresh token was already used; the login is revoked.")
    if row.expires_at <= now:
        raise _invalid("auth.refresh_expired", "The refresh token has expired; log in again.")
    user = session.get(User, row.user_id)
    if user is None or user.status != "active" or user.token_version != row.token_version:
        raise _invalid()  # gone, disabled, or logged out everywhere since
    return _grant(session, user, row.family, row.family_expires_at, secret, lifetimes)


def revoke_family(session: Session, family: str) -> None:
    """Revoke a login: its refresh tokens, and its access tokens still alive (denied in Redis first)."""
    _revoke(session, RefreshToken.family == family)


def revoke_user(session: Session, user_id: int) -> None:
    """Revoke every refresh token of a user (their access tokens are revoked by bumping token_version)."""
    _revoke(session, RefreshToken.user_id == user_id, deny=False)


def _revoke(session: Session, where, *, deny: bool = True) -> None:
    now = clock.now()
    if deny:
        live = session.execute(sa.select(RefreshToken.access_jti, RefreshToken.access_expires_at)
                               .where(where, RefreshToken.access_expires_at > now)).all()  # fmt: skip
        tokens.deny({jti: expires_at.timestamp() for jti, expires_at in live})
    session.execute(
        sa.update(RefreshToken)
        .where(where, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def _grant(session: Session, user: User, family: str, family_expires_at, secret: str, lifetimes: Lifetimes) -> Grant:
    now = clock.now()
    jti, raw = tokens.new_id(), secrets.token_urlsafe(32)
    access, access_ttl = tokens.issue(user, secret=secret, ttl_seconds=lifetimes.access, jti=jti, sid=family)
    expires_at = min(now + timedelta(seconds=lifetimes.refresh), family_expires_at)
    session.add(RefreshToken(user_id=user.id, family=family, token_hash=_hash(raw), token_version=user.token_version,
                             access_jti=jti, access_expires_at=now + timedelta(seconds=access_ttl), issued_at=now,
                             expires_at=expires_at, family_expires_at=family_expires_at))  # fmt: skip
    session.flush()
    return Grant(user, access, access_ttl, raw, max(0, int((expires_at - now).total_seconds())))


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _invalid(code: str = "auth.refresh_invalid", detail: str = "The refresh token is not valid; log in again."):
    return Unauthorized(code, detail)
