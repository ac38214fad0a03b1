"""Every error leaves as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, jsonify, request
from marshmallow import INCLUDE, Schema, fields
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, InternalServerError

from api import tx
from mall.config import ConfigError
from mall.errors import DomainError

log = logging.getLogger(__name__)

STATUS_BY_KIND = {
    "bad_request": 400,
    "invalid": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "gone": 410,
    "conflict": 409,
    "rate_limited": 429,
    "unavailable": 503,
}


BEARER_CHALLENGES = {
    "auth.token_invalid": 'Bearer realm="mall", error="invalid_token"',
    "auth.token_expired": 'Bearer realm="mall", error="invalid_token", error_description="The token has expired"',
    "auth.token_revoked": 'Bearer realm="mall", error="invalid_token", error_description="The token was revoked"',
}


class FieldErrorSchema(Schema):
    """One complaint about the input."""

    location = fields.String(required=True, metadata={"description": "Where the field was: `json` or `query`."})
    field = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Its dotted path (`lines.0.quantity`); `_schema`: the input as a whole."},
    )
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details, plus our stable `code` and, for bad input, the field `errors`. Some problems
    carry more members that say more about them (e.g. `sku_id`)."""

    class Meta:
        unknown = INCLUDE  # documented without additionalProperties: false

    type = fields.String(required=True, metadata={"description": "`urn:mall:problem:<code>`"})
    title = fields.String(required=True, metadata={"description": "The HTTP status's reason phrase."})
    status = fields.Integer(required=True)
    detail = fields.String(required=True, metadata={"description": "What went wrong, for a person."})
    code = fields.String(required=True, metadata={"description": "Stable, for programs: `flash_sale.sold_out`"})
    instance = fields.String(required=True, metadata={"description": "The request's path."})
    errors = fields.List(fields.Nested(FieldErrorSchema), metadata={"description": "For bad input: each field."})


def problem(status: int, *, code: str, detail: str, title: str | None = None, headers=None, **extra):
    body = {
        "type": f"urn:mall:problem:{code}",
        "title": title or _reason(status),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.path,
        **extra,
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _reason(status: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status).phrase


def _field_errors(messages, location: str, prefix: str = "") -> list[dict]:
    """Flatten marshmallow's nested messages into [{"location", "field", "message"}]."""
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            out += _field_errors(value, location, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out += [{"location": location, "field": prefix or None, "message": m} for m in messages]
    elif isinstance(messages, list):
        for i, m in enumerate(messages):
            out += _field_errors(m, location, f"{prefix}.{i}")
    else:
        out.append({"location": location, "field": prefix or None, "message": str(messages)})
    return out


def handle_http_exception(error: HTTPException):
    data = getattr(error, "data", None) or {}
    status = error.code or 500
    if status >= 500:
        return handle_unexpected(error)
    messages = data.get("messages")
    if messages is not None:
        errors = [e for loc, msgs in messages.items() for e in _field_errors(msgs, loc)]
        return problem(
            status, code="request.invalid", detail="The request has invalid or unknown fields.", errors=errors
        )
    if status == 413:  # the body is not read: its limit is the app's, or the view's own (request.max_content_length)
        limit = request.max_content_length
        return problem(413, code="request.too_large", detail=f"A request body may be at most {limit:,} bytes.",
                       max_bytes=limit)  # fmt: skip
    code = {400: "request.malformed", 404: "route.not_found", 405: "route.method_not_allowed"}.get(status, "http.error")
    return problem(status, code=code, detail=error.description or _reason(status))


def handle_domain_error(error: DomainError):
    status = STATUS_BY_KIND.get(error.kind, 422)
    headers = {"Retry-After": "60"} if status in (429, 503) else {}
    if status == 401:  # RFC 9110: a 401 names its scheme; RFC 6750 says why a bearer token failed
        headers["WWW-Authenticate"] = BEARER_CHALLENGES.get(error.code, 'Bearer realm="mall"')
    extra = dict(error.extra)
    if "field" in extra:  # one shape for every field complaint, whether schema or business rule
        extra["errors"] = [{"location": "json", "field": extra.pop("field"), "message": error.detail}]
    return problem(status, code=error.code, detail=error.detail, headers=headers, **extra)


RETRY_AFTER = "5"  # seconds: a dropped connection is replaced at once, a restart or a failover takes a few


def handle_database_error(error: sa.exc.DBAPIError | sa.exc.TimeoutError):
    """The database went away under the request (a restart, a failover, a killed backend: OperationalError, or
    a connection SQLAlchemy found dead) or the pool had none free in time: the request's transaction is rolled
    back and the client told to retry (503), not that we have a bug. Any other database error is one (500)."""
    if not isinstance(error, sa.exc.OperationalError | sa.exc.TimeoutError) and not getattr(
        error, "connection_invalidated", False
    ):
        return handle_unexpected(error)
    log.warning("database unavailable on %s %s: %s", request.method, request.path, error.__class__.__name__,
                exc_info=error)  # fmt: skip
    tx.rollback()  # nothing half-written; the pool has already dropped a dead connection
    return problem(503, code="database.unavailable", detail="The database is unavailable for a moment; retry.",
                   headers={"Retry-After": RETRY_AFTER})  # fmt: skip


def handle_redis_error(error: RedisError):
    """Redis went away under the request (a restart, a failover): what it guards (a flash sale's counters, an
    idempotency key) could not be checked, so nothing was done; the client retries (503), as for the database."""
    log.warning("redis unavailable on %s %s: %s", request.method, request.path, error, exc_info=error)
    tx.rollback()
    return problem(503, code="service.unavailable", detail="A service we depend on is unavailable for a moment; retry.",
                   headers={"Retry-After": RETRY_AFTER})  # fmt: skip


def handle_unexpected(error: Exception):
    original = getattr(error, "original_exception", None) or error
    if not isinstance(original, InternalServerError):
        log.exception("unhandled error on %s %s", request.method, request.path, exc_info=original)
    return problem(500, code="server.error", detail="Something went wrong on our side; it has been logged.")


def register(app: Flask, api) -> None:
    api.handle_http_exception = handle_http_exception  # flask-smorest registers this for HTTPException
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(sa.exc.DBAPIError, handle_database_error)
    app.register_error_handler(sa.exc.TimeoutError, handle_database_error)  # the pool: none free in time
    app.register_error_handler(RedisError, handle_redis_error)
    app.register_error_handler(ConfigError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)
