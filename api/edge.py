"""Headers every answer carries (ADR 0036): `X-Content-Type-Options: nosniff` always, and `Cache-Control:
no-store` on any answer to a request that carried credentials and on any answer whose view did not say how it
may be cached. A view's own Cache-Control (the room poll's `no-cache` with its ETag, the QR codes' `private,
max-age=300`) stands only when the request carried no `Authorization` header.

The WSGI fast paths (api/wsgi_fast.py) answer in front of Flask, so after_request never sees them: they append
the static tuples below, which is all the per-request work this adds there."""

from __future__ import annotations

from flask import Response, request

NOSNIFF = ("X-Content-Type-Options", "nosniff")
NO_STORE = ("Cache-Control", "no-store")
PRIVATE = (NOSNIFF, NO_STORE)  # a fast path's answer to a request with a bearer token

# The HTML pages (the consoles, the API docs): scripts and styles only from this origin (no inline code, so text
# from the API can never run); never framed (a host's pin button under someone else's overlay); no referrer.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")  # fmt: skip
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def secure_headers(resp: Response) -> Response:
    """`after_request`, for every answer Flask sends (errors included)."""
    headers = resp.headers
    headers["X-Content-Type-Options"] = "nosniff"
    if "HTTP_AUTHORIZATION" in request.environ or "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return resp
