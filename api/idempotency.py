"""Idempotency-Key for order, payment and claim endpoints.

Same key + same body replays the first response; same key + another body is 422; no key is 400.
The key is reserved by a row inserted in the request's own transaction, so a concurrent duplicate
waits on the unique index, then finds the committed response and replays it.
"""

from __future__ import annotations

import functools
import hashlib
import json

import sqlalchemy as sa
from flask import g, request
from sqlalchemy.exc import IntegrityError

from api.extensions import db
from api.tx import commit
from mall import clock
from mall.errors import BadRequest, Conflict, Invalid
from mall.orders.models import IdempotencyRecord

HEADER = "Idempotency-Key"


def _request_hash() -> str:
    body = request.get_json(silent=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")) if body is not None else request.get_data()
    raw = f"{request.method} {request.path}\n".encode() + (
        canonical.encode() if isinstance(canonical, str) else canonical
    )
    return hashlib.sha256(raw).hexdigest()


def _replay(record: IdempotencyRecord, request_hash: str):
    if record.request_hash != request_hash:
        raise Invalid("idempotency.key_reused", f"This {HEADER} was used with a different request.")
    if record.status_code is None:
        raise Conflict("idempotency.in_progress", "The first request with this key is still running.")
    return record.response, record.status_code, {"Idempotent-Replayed": "true"}


def idempotent(scope: str):
    """Wrap a view that does NOT commit itself: the wrapper stores its response and commits once."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get(HEADER, "").strip()
            if not key or len(key) > 255:
                raise BadRequest("idempotency.key_missing", f"Send an {HEADER} header (1-255 characters).")
            user_id, request_hash = g.actor.user_id, _request_hash()
            lookup = sa.select(IdempotencyRecord).filter_by(user_id=user_id, scope=scope, key=key)
            record = db.session.scalar(lookup)
            if record is not None:
                return _replay(record, request_hash)
            record = IdempotencyRecord(user_id=user_id, scope=scope, key=key, request_hash=request_hash,
                                       created_at=clock.now())  # fmt: skip
            db.session.add(record)
            try:  # no SAVEPOINT: on SQLite, releasing an outermost savepoint commits
                db.session.flush()
            except IntegrityError:  # a concurrent twin committed first
                db.session.rollback()
                return _replay(db.session.scalar(lookup), request_hash)
            response = view(*args, **kwargs)
            record.status_code, record.response = response.status_code, response.get_json()
            commit()
            return response

        return wrapper

    return decorator
