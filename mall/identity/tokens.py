"""Bearer tokens: short JWTs signed with the app's secret, revocable by bumping token_version."""

from __future__ import annotations

from datetime import timedelta

import jwt

from mall import clock
from mall.errors import Unauthorized
from mall.identity.models import User
from mall.identity.roles import Actor, Role

ALGORITHM = "HS256"


def issue(user: User, *, secret: str, ttl_seconds: int) -> tuple[str, int]:
    now = clock.now()
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "brand_id": user.brand_id,
        "ver": user.token_version,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), ttl_seconds


def decode(token: str, *, secret: str) -> dict:
    """Verify signature and expiry against the project clock; return the claims.

    PyJWT checks `exp`, `iat` and `nbf` against the wall clock, so a token issued while the
    project clock runs ahead would be refused as "not yet valid": only `exp` is checked, here.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["sub", "exp", "role"],
            },
        )
        expires = float(claims["exp"])
        int(claims["sub"])
    except (jwt.InvalidTokenError, TypeError, ValueError) as exc:
        raise Unauthorized("auth.token_invalid", "The bearer token is invalid.") from exc
    if expires <= clock.now().timestamp():
        raise Unauthorized("auth.token_expired", "The bearer token has expired; log in again.")
    return claims


def actor_for(session, claims: dict) -> Actor:
    """The claims must still match a live user (role, brand and token version unchanged)."""
    user = session.get(User, int(claims["sub"]))
    if user is None or user.status != "active" or user.token_version != claims.get("ver"):
        raise Unauthorized("auth.token_revoked", "This token is no longer valid; log in again.")
    if user.role != claims["role"] or user.brand_id != claims.get("brand_id"):
        raise Unauthorized("auth.token_revoked", "This token is no longer valid; log in again.")
    return Actor(user_id=user.id, role=Role(user.role), brand_id=user.brand_id)
