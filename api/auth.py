"""Bearer-token authentication and role checks for routes."""

from __future__ import annotations

import functools

from flask import g, request
from flask_smorest import Blueprint

from api.extensions import db
from api.openapi import RATE_LIMITED
from api.parsing import MallParser, body_required, no_unexpected_body
from api.settings import settings
from mall import audit
from mall.errors import Forbidden, Invalid, Unauthorized
from mall.identity import tokens
from mall.identity.roles import Actor, Role
from workers.flash import token_cache

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


def _claims() -> dict:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("auth.token_missing", "Send 'Authorization: Bearer <token>'.")
    return tokens.decode(token.strip(), secret=settings().secret_key)


def authenticate() -> Actor:
    g.token_claims = _claims()  # for a view about the token itself (/auth/logout)
    return tokens.actor_for(db.session, g.token_claims, cache=token_cache())  # no user-row read on a cache hit


def _audit_as(actor: Actor) -> None:
    """Staff changes in this request are logged as the actor's (mall.audit) with the request's id (the client's
    X-Request-Id if it is a sane one, else a fresh one: api/observability.py); a shopper's are not."""
    staff = actor if actor.role != Role.SHOPPER else None
    audit.acting(db.session, staff, request_id=g.get("request_id"))


class TokenGuard:
    """For a `deferred` view's Redis script (mall.promotions.flash_sale.admission.Guard): the token is good
    while its user's cached state is the one its claims describe and its id is not on the denylist."""

    def __init__(self):
        self.key, self.value, self.absent = tokens.guard(g.token_claims)

    def held(self) -> None:
        g.token_confirmed = True

    def check(self) -> None:
        """The cache said otherwise (or nothing): the usual check, the user row on a miss; 401 if not good."""
        g.actor = tokens.actor_for(db.session, g.token_claims, cache=token_cache())
        g.token_confirmed = True


class MallBlueprint(Blueprint):
    ARGUMENTS_PARSER = MallParser()

    def arguments(self, schema, *, location="json", required=True, **kwargs):
        """flask-smorest's, and a body documented as required is required (not only in the document)."""
        decorator = super().arguments(schema, location=location, required=required, **kwargs)
        if location != "json" or not required:
            return decorator
        return lambda view: body_required(decorator(view))

    def response(self, status_code, schema=None, **kwargs):
        """flask-smorest's, and an operation that documents no request body refuses one."""
        decorator = super().response(status_code, schema, **kwargs)
        return lambda view: decorator(no_unexpected_body(view))

    def problems(self, *statuses: int):
        """Document the error statuses a route answers beyond those api/openapi.py gives every operation of its
        kind (as problems, like those)."""

        def decorator(view):
            for status in statuses:
                view = self.alt_response(status)(view)
            return view

        return decorator

    def auth(self, *roles: Role, deferred: bool = False):
        """Require a valid token whose role is one of `roles` (any role when none are given).

        `deferred`: here only the token itself is checked (signature, expiry, role claim); that its user still
        matches it (version, role, brand, status) is left to the view, which checks it inside its own Redis
        script with a `TokenGuard`, before any effect and before any answer that depends on who is asking. A
        view that returns without having done so is a bug: 500."""

        def decorator(view):
            @functools.wraps(view)
            def wrapper(*args, **kwargs):
                if deferred:
                    claims = _claims()
                    if claims["role"] not in Role.__members__.values():
                        raise Unauthorized("auth.token_revoked", "This token is no longer valid; log in again.")
                    actor = Actor(int(claims["sub"]), Role(claims["role"]), claims.get("brand_id"))
                    g.token_claims, g.token_confirmed = claims, False
                else:
                    actor = authenticate()
                if roles and actor.role not in roles:
                    raise Forbidden("auth.role_forbidden", f"This needs one of the roles: {', '.join(roles)}.")
                if not deferred:  # a deferred view is a shopper's hot path: nothing of it is audited
                    _audit_as(actor)
                g.actor = actor
                response = view(*args, **kwargs)
                if deferred and not g.token_confirmed:
                    raise RuntimeError(f"{view.__name__} answered without checking its deferred token")
                return response

            limited = not roles or Role.SHOPPER in roles  # a shopper's writes have rate limits (its 429)
            return self.doc(security=BEARER, **{RATE_LIMITED: limited})(wrapper)  # and 401, 403 (api/openapi.py)

        return decorator
