"""Idempotency-Key for order, payment, claim and flash-purchase endpoints.

Same key + same body replays the first response; same key + another body is 422; no key is 400.
`idempotent`: the key and the response are written by one row, the last statement of the request's own
transaction, so a concurrent duplicate waits on the unique index, then rolls back and replays the committed
response.

`once` (flash purchases, where most requests are refused in a storm): the key is checked and reserved
in Redis by the flash gate's admission script, in the same round trip as the admission, so a refusal
touches no database row; the view raises `Seen` for a key used before and this replays it (a twin
still running is 409 idempotency.in_progress instead of waiting). An admitted purchase still writes
its row (`keep`) in the order's transaction: the durable record, looked up when Redis lost its state.
See mall/promotions/flash_sale/admission.py for the Redis records and their lifetimes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging

import sqlalchemy as sa
from flask import Response, current_app, g, request

from api.extensions import db
from api.parsing import json_body
from api.tx import commit, rollback
from mall import clock
from mall.db import insert_on_conflict
from mall.errors import BadRequest, Conflict, Invalid
from mall.orders.models import IdempotencyRecord
from mall.promotions.flash_sale.admission import Once, Seen

HEADER = "Idempotency-Key"
log = logging.getLogger(__name__)


def _request_hash() -> str:
    return request_hash(request.method, request.path, json_body(), request.get_data)


def request_hash(method: str, path: str, body, raw=None) -> str:
    """What a key is bound to: the method, the path and the JSON body in canonical form (`raw()`, the bytes,
    when the body is no JSON)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode() if body is not None else raw()
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


def _key() -> str:
    key = request.headers.get(HEADER, "").strip()
    if not key or len(key) > 255:
        raise BadRequest("idempotency.key_missing", f"Send an {HEADER} header (1-255 characters).")
    return key


def _replay(record: IdempotencyRecord, request_hash: str):
    """A record's response (`idempotent` writes each one complete, with its status)."""
    if record.request_hash != request_hash:
        raise Invalid("idempotency.key_reused", f"This {HEADER} was used with a different request.")
    return record.response, record.status_code, {"Idempotent-Replayed": "true"}


_TABLE = IdempotencyRecord.__table__


def _recorded(ours: dict) -> IdempotencyRecord | None:
    return db.session.scalar(sa.select(IdempotencyRecord).filter_by(**ours))


def idempotent(scope: str):
    """Wrap a view that does NOT commit itself: the wrapper stores its response and commits once. (The one
    exception, paying, commits its claim before calling the provider, ADR 0014: the key is then written with
    the provider's recorded answer, and a run whose record never committed is completed by the retry or the
    sweep under the same provider key.)

    The key is written once, with the response, as the transaction's last statement. A concurrent twin runs
    the view too, then waits on the unique index until the first commits, finds the key taken, rolls its own
    work back and replays the first response. A twin whose view failed meanwhile (the stock, the coupon or
    the cart lines were taken by the first) looks for the key as well before answering with its error, and
    so does a later retry, which finds its work already done. One statement per request instead of a
    reservation and an update. The costs: a duplicate runs the view again, rolled back (an external call
    inside, like Stripe's, is idempotent itself); every failing request looks its key up once; and a twin
    whose view fails *before* the first commits (a deadlock, a lock timeout) answers with that error instead
    of waiting for the first: its retry with the same key then replays."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = _key()
            ours = {"user_id": g.actor.user_id, "scope": scope, "key": key}
            request_hash = _request_hash()
            try:
                response = view(*args, **kwargs)
                db.session.flush()  # the view's own writes fail here, not at the key's INSERT
            except Exception:
                rollback()
                done = _recorded(ours)
                if done is None:
                    raise
                log.info("%s %s: replaying key %r after this run failed", request.method, request.path, key,
                         exc_info=True)  # fmt: skip
                return _replay(done, request_hash)
            # No SAVEPOINT: on SQLite, releasing an outermost one commits.
            record = {**ours, "request_hash": request_hash, "status_code": response.status_code,
                      "response": response.get_json(), "created_at": clock.now()}  # fmt: skip
            if not insert_on_conflict(db.session, _TABLE, index_elements=list(ours), values=record):
                rollback()  # a twin committed first: ours never happened
                return _replay(_recorded(ours), request_hash)
            _commit_as_rendered()
            return response

        return wrapper

    return decorator


def _commit_as_rendered() -> None:
    """Commit without expiring the session's objects: the response is already rendered, and what runs after
    the commit (the events' subscribers) reads the rows this request just wrote, so reloading them would be a
    new transaction and a query each (e.g. the order.placed event for the payment-timeout job)."""
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        commit()
    finally:
        session.expire_on_commit = expire


def once(scope: str):
    """Wrap a view that reserves its key itself (`g.once`, passed to the flash gate) and raises `Seen`
    for a key used before. 400 without a key, before the body is read."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            g.once = Once(scope, _key(), _request_hash())
            try:
                return view(*args, **kwargs)
            except Seen as seen:
                return replay_seen(seen, g.once.request_hash)

        return wrapper

    return decorator


def replay_seen(seen: Seen, request_hash: str) -> Response:
    if seen.request_hash != request_hash:
        raise Invalid("idempotency.key_reused", f"This {HEADER} was used with a different request.")
    if seen.status is None or seen.response is None:
        raise Conflict("idempotency.in_progress", "The first request with this key is still running.")
    return Response(seen.response, status=seen.status, mimetype="application/json",
                    headers={"Idempotent-Replayed": "true"})  # fmt: skip


def keep(once: Once, response: Response, payload: dict) -> str:
    """The durable record of a finished `once` request whose response carries `payload`, added to the
    request's transaction (the unique index refuses a second one for the key: see `recorded`). Returns the
    body as sent, for the Redis record."""
    db.session.add(IdempotencyRecord(user_id=g.actor.user_id, scope=once.scope, key=once.key,
                                     request_hash=once.request_hash, status_code=response.status_code,
                                     response=payload, created_at=clock.now()))  # fmt: skip
    return response.get_data(as_text=True)


def recorded(once: Once) -> Seen | None:
    """The database's record of this key, if any (after the unique index refused a second one)."""
    lookup = sa.select(IdempotencyRecord).filter_by(user_id=g.actor.user_id, scope=once.scope, key=once.key)
    record = db.session.scalar(lookup)
    if record is None:
        return None
    response = None if record.response is None else current_app.json.response(record.response).get_data(as_text=True)
    return Seen(record.request_hash, record.status_code, response)
