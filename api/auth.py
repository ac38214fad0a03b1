"""Bearer-token authentication and role checks for routes."""

from __future__ import annotations

import functools

from flask import g, request
from flask_smorest import Blueprint

from api.extensions import db
from api.settings import settings
from mall.errors import Forbidden, Invalid, Unauthorized
from mall.identity import tokens
from mall.identity.roles import Actor, Role

BEARER = [{"bearerAuth": []}]


def current_actor() -> Actor:
    return g.actor


def acting_brand(requested: int | None, *, code: str = "catalog.brand_required") -> int:
    """The brand a write is for: a brand admin's own unless named; a platform admin must name one.
    (Naming another brand than one's own is refused by the service's ownership check.)"""
    brand_id = requested if requested is not None else current_actor().brand_id
    if brand_id is None:
        raise Invalid(code, "Name the brand_id this belongs to.", field="brand_id")
    return brand_id


def authenticate() -> Actor:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("auth.token_missing", "Send 'Authorization: Bearer <token>'.")
    claims = tokens.decode(token.strip(), secret=settings().secret_key)
    return tokens.actor_for(db.session, claims)


class MallBlueprint(Blueprint):
    def auth(self, *roles: Role):
        """Require a valid token whose role is one of `roles` (any role when none are given)."""

        def decorator(view):
            @functools.wraps(view)
            def wrapper(*args, **kwargs):
                actor = authenticate()
                if roles and actor.role not in roles:
                    raise Forbidden("auth.role_forbidden", f"This needs one of the roles: {', '.join(roles)}.")
                g.actor = actor
                return view(*args, **kwargs)

            documented = self.doc(security=BEARER)(wrapper)
            for status in (401, 403):
                documented = self.alt_response(status, description="Problem details")(documented)
            return documented

        return decorator
