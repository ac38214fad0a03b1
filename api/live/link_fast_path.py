"""Cart-link opens answered in front of Flask.

When a host pins a product, thousands of viewers tap its link within seconds. The open itself is a few indexed
statements (mall.live.links.open_link: the link with the room, segment, SKU and the shopper's cart in one read;
the cart line's upsert, the cart's touch, the room's cart add), but Flask's per-request work (request context,
routing, webargs and marshmallow, flask-smorest's wrappers) cost about as much again. `FastOpens` wraps the app's
WSGI callable and serves exactly the opens it is sure of, through the same domain function on a session of its
own:

- POST {prefix}/live/links/open with a bearer token that verifies (signature, expiry), claims the shopper role
  and whose user's cached state (the token cache in Redis, read with the token's denylist key in one script call
  that also counts the request in the shopper's `link_opens` rate-limit window, api/limits.py: over it, 429
  `rate.limited`) is the one it claims: a miss, a revoked token or a changed user goes to Flask (marked as
  counted), which checks the slow way;
- a JSON object body OpenLinkSchema would surely accept (`token` of the link alphabet, optional ids and
  quantity in range, nothing else);
- the open succeeds: on PostgreSQL it is made in one statement on an autocommit connection
  (mall/live/one_statement_open.py, which writes nothing unless every check passes), elsewhere by the plain
  path's domain function on a session of its own. Any refusal (a bad, expired or other-room link, a SKU to
  choose, a full cart, a shopper without a cart yet) writes nothing and the request goes to Flask untouched
  (the body is handed on), which decides and answers it as always.

It sends what the view would (status, headers, body: a test compares them). No before/after-request hook of the
app runs for an answered open (today the only hook refuses unstorable text, which the token's alphabet cannot
hold); add one that must see every request here too. `LIVE_FAST_LINK_OPENS = False` turns it off.
"""

from __future__ import annotations

import re

import redis
from sqlalchemy.orm import Session

from api import limits
from api.observability import FAST
from api.wsgi_fast import bearer_claims, is_id, json_answer, json_object
from mall.errors import DomainError
from mall.identity import tokens
from mall.identity.roles import Actor, Role
from mall.live import links, one_statement_open

PATH = "/live/links/open"
LINK_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{1,500}")  # itsdangerous' URL-safe tokens (TOKEN's length)
COUNTED = FAST.labels("live_link_open")  # bound once: an answer costs one increment
QUANTITY_MAX = 999  # OpenLinkSchema's range


class FastOpens:
    def __init__(self, app, wsgi_app, *, prefix: str, engine, token_cache):
        self.app, self.wsgi_app, self.path = app, wsgi_app, prefix + PATH
        self.engine, self.token_cache = engine, token_cache

    def __call__(self, environ, start_response):
        if (
            environ.get("REQUEST_METHOD") == "POST"
            and environ.get("PATH_INFO") == self.path
            and not environ.get("QUERY_STRING")
            and self.app.config.get("LIVE_FAST_LINK_OPENS", True)
        ):
            answer = self._open(environ)
            if answer is not None:
                COUNTED.inc()
                return answer(environ, start_response)
        return self.wsgi_app(environ, start_response)

    def _open(self, environ):
        secret = self.app.extensions["mall.settings"].secret_key
        claims = bearer_claims(environ, secret)
        if claims is None or claims["role"] != Role.SHOPPER:
            return None
        held, retry_after = self._token_state(environ, claims)
        if retry_after is not None:
            return limits.fast_answer(self.app, "link_opens", environ["PATH_INFO"], retry_after)
        if held is None or held != tokens.guard(claims)[1].encode():
            return None
        body = json_object(environ)
        if body is None or not _surely_valid(body):
            return None
        opened = self._opened(int(claims["sub"]), body, secret)
        return None if opened is None else json_answer(self.app, "200 OK", opened.view())

    def _opened(self, user_id: int, body: dict, secret: str) -> links.Opened | None:
        """The open, or None when it is the plain path's to decide (nothing is written then)."""
        engine = self.engine()
        args = {"link_token": body["token"], "secret": secret, "room_id": body.get("room_id"),
                "sku_id": body.get("sku_id"), "quantity": body.get("quantity", 1)}  # fmt: skip
        if engine.dialect.name == "postgresql":  # one statement, its own transaction
            pooled = engine.raw_connection()
            try:
                connection = pooled.driver_connection
                connection.autocommit = True
                try:
                    return one_statement_open.open_link(connection, user_id=user_id, **args)
                finally:
                    connection.autocommit = False  # as the pool hands connections out
            finally:
                pooled.close()
        with Session(engine) as session:  # elsewhere the plain path's function, on a session of its own
            try:
                opened = links.open_link(session, actor=Actor(user_id, Role.SHOPPER, None), **args)
            except DomainError:
                return None  # rolled back as the session closes
            session.commit()
            return opened

    def _token_state(self, environ, claims: dict) -> tuple[bytes | None, int | None]:
        """The token's user's entry in the token cache (the token is current if it is what `tokens.guard` says:
        what `tokens.actor_for` checks), read in the one round trip that also counts the request in the shopper's
        `link_opens` rate-limit window: (entry, None), or (None, seconds to wait) when over that limit."""
        cache = self.token_cache()
        if cache is None:
            return None, None
        user_id = int(claims["sub"])
        window = limits.fast_window(self.app, "link_opens", claims)
        if window is None:
            state, denied = cache.lookup(user_id, claims["jti"])
            return (None if denied else state), None
        try:
            held, retry_after = cache.get_counted(user_id, claims["jti"], window)
        except redis.RedisError:
            return None, None  # the slow way, where flask-limiter counts it
        environ[limits.COUNTED] = True  # Flask does not count it again
        return held, retry_after


def _surely_valid(body: dict) -> bool:
    """What OpenLinkSchema accepts without a doubt (anything else is Flask's to judge)."""
    if not body.keys() <= {"token", "room_id", "sku_id", "quantity"}:
        return False
    token, quantity = body.get("token"), body.get("quantity", 1)
    return (
        type(token) is str
        and LINK_TOKEN.fullmatch(token) is not None
        and all(body.get(k) is None or is_id(body[k]) for k in ("room_id", "sku_id"))
        and type(quantity) is int
        and 1 <= quantity <= QUANTITY_MAX
    )
