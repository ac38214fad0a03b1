"""Refusals of flash purchases answered in front of Flask.

In a flash sale nearly every purchase is refused (sold out, limit reached, not started, ended) and each
refusal is one Redis script call; Flask's own per-request work (request context, session, routing,
flask-smorest's wrappers, the error handler) cost several times that. `FastRefusals` wraps the app's WSGI
callable and answers exactly those requests itself:

- POST {prefix}/flash-sales/<sale>/items/<item>/purchase with a bearer token that verifies (signature,
  expiry) and claims the shopper role, an Idempotency-Key of 1-255 characters, and a JSON object body that
  PurchaseSchema would surely accept (`address_id`, optional `quantity` and `coupon_ids`, plain integers in
  range, and a `source_token` that verifies: a refusal depends on neither);
- the gate's script, run as a probe (nothing changes), finds the token's cached state current and the key
  unused, and refuses: not started, ended, sold out or limit reached.

The same script call first counts the request in the shopper's `purchases` rate-limit window (api/limits.py):
over it, the answer is 429 `rate.limited` with Retry-After, whatever else the request is; under it, a request
handed to Flask is marked as counted, so that flask-limiter does not count it again.

Then it sends the very 409 problem the view would (tests compare the two, byte for byte). Anything else
(a bad or revoked token, a missing key, other input, a replay, an admission, counters to rebuild, an
unknown item) goes to Flask untouched (the body is handed on), which decides as before; an admission
therefore costs one extra probe. No before/after-request hook of the app runs for an answered refusal: add
one that must see every request here too. `FLASH_FAST_REFUSALS = False` in the app config turns it off.
"""

from __future__ import annotations

import re

from redis.exceptions import RedisError

from api import limits
from api.observability import FAST
from api.wsgi_fast import bearer_claims, is_id, json_object, problem_answer
from mall import attribution, clock
from mall.errors import DomainError
from mall.identity import tokens
from mall.identity.roles import Role
from mall.promotions.flash_sale.admission import Once
from mall.promotions.flash_sale.services import REJECTIONS

SCOPE = "flash_sales.purchase"
PATH = re.compile(r"/flash-sales/([1-9][0-9]{0,8})/items/([1-9][0-9]{0,8})/purchase")
COUNTED = FAST.labels("flash_purchase_refusal")  # bound once: an answer costs one increment
DETAILS = {outcome: f"Not admitted: {outcome.replace('_', ' ')}." for outcome in REJECTIONS}


class _Guard:
    """The token's cached state, checked inside the probe; a miss or a mismatch sends the request to Flask
    (whose TokenGuard then checks it the slow way)."""

    def __init__(self, claims: dict):
        self.key, self.value, self.absent = tokens.guard(claims)


class FastRefusals:
    def __init__(self, app, wsgi_app, *, prefix: str):
        from workers.flash import gate

        self.app, self.wsgi_app, self.prefix, self.gate = app, wsgi_app, prefix, gate

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST" and self.app.config.get("FLASH_FAST_REFUSALS", True):
            path = environ.get("PATH_INFO", "")
            if path.startswith(self.prefix) and path.endswith("/purchase"):
                answer = self._refusal(environ, path)
                if answer is not None:
                    COUNTED.inc()
                    return answer(environ, start_response)
        return self.wsgi_app(environ, start_response)

    def _refusal(self, environ, path: str):
        match = PATH.fullmatch(path, len(self.prefix))
        if match is None:
            return None
        key = environ.get("HTTP_IDEMPOTENCY_KEY", "").strip()
        if not key or len(key) > 255:
            return None
        claims = bearer_claims(environ, self.app.extensions["mall.settings"].secret_key)
        if claims is None or claims["role"] != Role.SHOPPER:
            return None
        body = json_object(environ)
        if body is None or not _surely_valid(body) or not self._link_verifies(body.get("source_token")):
            return None
        from api.idempotency import request_hash

        once = Once(SCOPE, key, request_hash("POST", path, body))
        window = limits.fast_window(self.app, "purchases", claims)
        try:
            outcome, _, retry_after = self.gate().admit(
                item_id=int(match[2]), sale_id=int(match[1]), user_id=int(claims["sub"]),
                quantity=body.get("quantity", 1), now_ms=int(clock.now().timestamp() * 1000), once=once,
                guard=_Guard(claims), probe=True, window=window,
            )  # fmt: skip
        except RedisError:  # Redis away (a restart): not sure of anything, so Flask answers (a 503 problem)
            return None
        if outcome == "rate_limited":
            return limits.fast_answer(self.app, "purchases", path, int(retry_after))
        if window is not None:
            environ[limits.COUNTED] = True  # Flask does not count it again
        if outcome not in REJECTIONS:
            return None
        code = REJECTIONS[outcome]
        return problem_answer(self.app, 409, code=code, detail=DETAILS[outcome], path=path)

    def _link_verifies(self, token) -> bool:
        """A signed link the view would accept (a bad one is the view's 422, not a refusal)."""
        try:
            attribution.verify(token, secret=self.app.extensions["mall.settings"].secret_key)
        except DomainError:
            return False
        return True


def _surely_valid(body: dict) -> bool:
    """What PurchaseSchema accepts without a doubt (anything else is Flask's to judge)."""
    if not body.keys() <= {"address_id", "quantity", "coupon_ids", "source_token"}:
        return False
    token = body.get("source_token")
    if token is not None and not (type(token) is str and 1 <= len(token) <= 2000):
        return False
    address, quantity, coupons = body.get("address_id"), body.get("quantity", 1), body.get("coupon_ids") or []
    return (
        is_id(address)
        and (type(quantity) is int and 1 <= quantity <= 100)
        and type(coupons) is list
        and len(coupons) <= 10
        and all(is_id(c) for c in coupons)
    )
