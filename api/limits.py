"""Rate limits on what a shopper (or anyone) can repeat, with flask-limiter on the app's Redis (ADR 0033).

Each family (mall.rate_limits.DEFAULTS; RATE_LIMIT_<FAMILY> overrides) is one fixed-window limit per caller:
`user:<id>` for a bearer token that verifies, else `ip:<client address>` (X-Forwarded-For only through
PROXY_HOPS trusted proxies). Logins are counted per IP and password logins also per email. The named families
share one budget across their routes (`FAMILIES`); every other write by a shopper or an anonymous caller has
the `writes` limit, per route. Staff writes, reads and the payment provider's webhook are not limited.

A limited request is answered before its view runs (no idempotency record, no row, no job): 429, the problem
shape api/errors.py sends (code `rate.limited`), `Retry-After` in seconds. The flash purchase and live
link-open fast paths (api/flash_sales/fast_path.py, api/live/link_fast_path.py) count the same windows inside
their own Redis script and mark the request (`COUNTED`) when they hand it to Flask, which then does not count
it again. RATE_LIMITS=off turns all of it off (benches, soak); it is off by default in the test env.
"""

from __future__ import annotations

import math
import time

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from werkzeug.middleware.proxy_fix import ProxyFix

from api.errors import problem
from api.wsgi_fast import bearer_claims, problem_answer
from mall.config import INSTANCE, Settings
from mall.identity.roles import Role
from mall.rate_limits import Window, parse
from workers import connection
from workers.embedded import EmbeddedRedis

CODE = "rate.limited"
COUNTED = "mall.rate_limits.counted"  # WSGI environ: a fast path has counted this request in its family's window
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
FAMILIES = {  # endpoint -> the family whose budget it spends
    "coupons.claim": "claims",
    "orders.place_order": "purchases",
    "flash_sales.purchase": "purchases",
    "group_buy.join": "purchases",
    "live_links.open_link": "link_opens",
    "guides.open_link": "link_opens",
    "notifications.record_subscriptions": "subscriptions",
}
LOGINS = ("identity.password_login", "identity.wechat_login")  # login_ip; the password one also login_account
UNLIMITED = frozenset({"payments.stripe_webhook"})  # the provider's calls, verified by signature


def caller_key(claims: dict | None, address: str | None) -> str:
    return f"user:{claims['sub']}" if claims else f"ip:{address or '-'}"


def _claims() -> dict | None:
    """The bearer token's claims if it verifies (signature, expiry: no database read). A revoked token still
    counts as its user (the view refuses it afterwards)."""
    if "rate_claims" not in g:
        g.rate_claims = bearer_claims(request.environ, current_app.extensions["mall.settings"].secret_key)
    return g.rate_claims


def caller() -> str:
    """The key of a family's window: the user for a verified bearer token, else the client IP."""
    return caller_key(_claims(), request.remote_addr)


def client_ip() -> str:
    return caller_key(None, request.remote_addr)


def account() -> str:
    """A password login's account: its email as the schema would read it (trimmed, lower-cased)."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return f"account:{email.strip().lower()}" if isinstance(email, str) and email.strip() else client_ip()


def _counted() -> bool:
    return bool(request.environ.get(COUNTED))


def _not_a_shopper_write() -> bool:
    """The `writes` default spares reads, the provider's webhook and staff (a verified token of another role)."""
    if request.method in SAFE or request.endpoint in UNLIMITED:
        return True
    claims = _claims()
    return claims is not None and claims.get("role") != Role.SHOPPER


def redis_url(settings: Settings) -> str:
    """The app's Redis: REDIS_URL, or the embedded server's socket (the server itself starts on first use)."""
    return settings.redis_url or EmbeddedRedis(INSTANCE / "redis").url


def storage_uri(settings: Settings) -> str:
    """The app's Redis as the `limits` package names it: `redis+unix://` for a socket (the embedded server's)."""
    url = redis_url(settings)
    return f"redis+{url}" if url.startswith("unix://") else url


def install(app: Flask, settings: Settings) -> Limiter:
    """The limiter, on the app's views (call after the blueprints are registered)."""
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # outside the fast paths too
    limiter = Limiter(
        caller,
        enabled=settings.rate_limited,
        strategy="fixed-window",
        storage_uri=storage_uri(settings),
        storage_options={"connection_pool": connection.client(redis_url(settings)).connection_pool},  # the app's
        default_limits=[_value("writes")],
        default_limits_exempt_when=_not_a_shopper_write,
        headers_enabled=False,
        swallow_errors=True,  # Redis down: unlimited (and logged) rather than every write a 500
    )
    if settings.rate_limited and not settings.redis_url:
        app.before_request(lambda: _embedded_started(settings))  # before the limiter's own hook
    limiter.init_app(app)
    views = app.view_functions
    for endpoint, family in FAMILIES.items():
        views[endpoint] = limiter.shared_limit(_value(family), scope=family, exempt_when=_counted)(views[endpoint])
    for endpoint in LOGINS:
        views[endpoint] = limiter.shared_limit(_value("login_ip"), scope="login_ip", key_func=client_ip)(
            views[endpoint]
        )
    login = views["identity.password_login"]
    views["identity.password_login"] = limiter.shared_limit(
        _value("login_account"), scope="login_account", key_func=account
    )(login)
    app.extensions["mall.limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter


def _value(family: str):
    """The family's limit, read per request from the app's settings."""
    return lambda: current_app.extensions["mall.settings"].rate_limit(family)


def _embedded_started(settings: Settings) -> None:
    """The embedded Redis is started on first use (workers.connection); a limit may be its first use."""
    connection.redis_url(settings)


def too_many_requests(error: RateLimitExceeded):
    current = current_app.extensions["mall.limiter"].current_limit
    retry_after = max(1, math.ceil(current.window[0] - time.time())) if current is not None else 60
    return limited(retry_after, str(error.limit.limit))


def limited(retry_after: int, limit: str):
    return problem(429, code=CODE, detail=_detail(limit, retry_after), headers={"Retry-After": str(retry_after)})


def _detail(limit: str, retry_after: int) -> str:
    return f"Too many requests ({limit}); retry in {retry_after} s."


def fast_window(app: Flask, family: str, claims: dict) -> Window | None:
    """The window a fast path counts a shopper's request of `family` in (None: limits are off)."""
    settings = app.extensions["mall.settings"]
    if not settings.rate_limited:
        return None
    return Window.of(settings.rate_limit(family), caller=caller_key(claims, None), family=family)


def fast_answer(app: Flask, family: str, path: str, retry_after: int):
    """A fast path's 429: what `too_many_requests` sends (same bytes)."""
    limit = str(parse(app.extensions["mall.settings"].rate_limit(family)))
    return problem_answer(app, 429, code=CODE, detail=_detail(limit, retry_after), path=path,
                          headers=(("Retry-After", str(retry_after)),))  # fmt: skip
