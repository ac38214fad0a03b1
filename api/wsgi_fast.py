"""What the WSGI fast paths (api/flash_sales/fast_path.py, api/live/fast_path.py, api/live/link_fast_path.py)
share: reading a bearer token's claims and a small JSON body straight from the WSGI environ, and writing a JSON
answer as Flask would. Each fast path answers only requests it is sure of and hands anything else to Flask
untouched (a body read here is handed on)."""

from __future__ import annotations

import io
import json
from http import HTTPStatus

from api.edge import PRIVATE
from mall.errors import DomainError
from mall.identity import tokens

# Within the bounds api/parsing.bound_input puts on every body Flask reads (ADR 0036): no string this short is over
# MAX_STRING, the shapes the fast paths accept nest two deep at most, and anything larger goes to Flask (its 413).
MAX_BODY = 4096
ID_MAX = 2**31 - 1


def bearer_claims(environ, secret: str) -> dict | None:
    """The verified claims (signature, expiry) of the request's bearer token; None when there is none or it fails
    (Flask answers that)."""
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return tokens.decode(token, secret=secret)
    except DomainError:
        return None


def json_object(environ) -> dict | None:
    """The body, if it is a small JSON object; the bytes read are handed on to Flask in any case."""
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return None
    if not 0 < length <= MAX_BODY:
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested too deep: Flask's to answer
        return None
    return body if isinstance(body, dict) else None


def is_id(value) -> bool:
    """What the API's Id field accepts without a doubt."""
    return type(value) is int and 1 <= value <= ID_MAX


def json_answer(app, status: str, payload: dict, content_type: str = "application/json", headers: tuple = ()):
    """A WSGI app sending `payload` as `app.json.response` would (same bytes), with the headers api/edge.py gives
    an answer to a request with a bearer token (every fast path's): a werkzeug Response object cost a fifth of a
    flash refusal."""
    provider = app.json
    pretty = provider.compact is False or (provider.compact is None and app.debug)  # as Flask decides
    options = {"indent": 2} if pretty else {"separators": (",", ":")}
    body = (provider.dumps(payload, **options) + "\n").encode()

    def answer(environ, start_response):
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *PRIVATE,
                                *headers])  # fmt: skip
        return [body]

    return answer


def problem_answer(app, status: int, *, code: str, detail: str, path: str, headers: tuple = ()):
    """The problem api/errors.py `problem` sends (same bytes), as a WSGI app."""
    reason = HTTPStatus(status).phrase
    payload = {"type": f"urn:mall:problem:{code}", "title": reason, "status": status, "detail": detail,
               "code": code, "instance": path}  # fmt: skip
    return json_answer(app, f"{status} {reason.upper()}", payload, "application/problem+json", headers)
