"""Lots expire, oldest first, set-based in bounded batches (ADR 0027), and members are reminded before.

One batch (`expire_due`), one transaction, a handful of statements whatever its size:
1. the due lots, by (expires_at, id) from the partial index `ix_points_lots_due` (available, points left);
2. their members' balance rows locked in user id order (the ledger's lock order: balance, then lots);
3. one INSERT ... SELECT writes an `expire` entry per lot for what it has left (read under those locks);
4. one UPDATE lowers each member's available balance by the sum of their lots' remaining (a correlated sum);
5. one UPDATE sets the lots' remaining to 0.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.members import ledger
from mall.members.points_models import PointsBalance, PointsCursor, PointsEntry, PointsLot
from mall.members.policy import PointsPolicy
from mall.notifications.services import notify

BATCH = 5000
_LOTS, _ENTRIES, _BALANCES = PointsLot.__table__, PointsEntry.__table__, PointsBalance.__table__
_ids = sa.bindparam("_ids", expanding=True)
_DUE = (
    sa.select(_LOTS.c.id, _LOTS.c.user_id)
    .where(sa.text("points_lots.remaining > 0 AND points_lots.state = 'available'"),  # the index's predicate
           _LOTS.c.expires_at <= sa.bindparam("_now"))
    .order_by(_LOTS.c.expires_at, _LOTS.c.id)
    .limit(sa.bindparam("_limit"))
)  # fmt: skip
_LEFT = (_LOTS.c.id.in_(_ids), _LOTS.c.remaining > 0, _LOTS.c.state == "available")
_WRITE_ENTRIES = _ENTRIES.insert().from_select(
    ["user_id", "lot_id", "brand_id", "kind", "amount", "key", "reason", "created_at"],
    sa.select(_LOTS.c.user_id, _LOTS.c.id, _LOTS.c.brand_id, sa.literal("expire"), -_LOTS.c.remaining,
              sa.literal("expire:") + sa.cast(_LOTS.c.id, sa.String), sa.bindparam("_reason", type_=_ENTRIES.c.reason.type),
              sa.bindparam("_now", type_=_ENTRIES.c.created_at.type))
    .where(*_LEFT),
)  # fmt: skip
_LOWER = (
    _BALANCES.update()
    .where(_BALANCES.c.user_id.in_(sa.bindparam("_users", expanding=True)))
    .values(available=_BALANCES.c.available - sa.select(sa.func.coalesce(sa.func.sum(_LOTS.c.remaining), 0))
            .where(_LOTS.c.user_id == _BALANCES.c.user_id, *_LEFT).scalar_subquery(),
            updated_at=sa.bindparam("_now"))
)  # fmt: skip
_EMPTY = _LOTS.update().where(*_LEFT).values(remaining=0, expired_at=sa.bindparam("_now"))

# PostgreSQL: the same, in two statements with array parameters (one parse and plan whatever the batch size,
# instead of thousands of IN-list parameters in four statements). The ledger's lock order still holds: the
# balance rows first (ordered), then the lots, read under those locks by the CTE and written from it.
_REASON = json.dumps({"rule": "expired"})
_PG_LOCK = sa.text("SELECT user_id FROM points_balances WHERE user_id = ANY(:users) ORDER BY user_id FOR UPDATE")
_PG_EXPIRE = sa.text("""
WITH due AS (
    SELECT id, user_id, brand_id, remaining FROM points_lots
    WHERE id = ANY(:ids) AND remaining > 0 AND state = 'available'
), entries AS (
    INSERT INTO points_entries (user_id, lot_id, brand_id, kind, amount, key, reason, created_at)
    SELECT user_id, id, brand_id, 'expire', -remaining, 'expire:' || id, CAST(:reason AS jsonb), :now FROM due
), balances AS (
    UPDATE points_balances b SET available = b.available - s.total, updated_at = :now
    FROM (SELECT user_id, sum(remaining) AS total FROM due GROUP BY user_id) s WHERE b.user_id = s.user_id
)
UPDATE points_lots l SET remaining = 0, expired_at = :now FROM due WHERE l.id = due.id
""")


def expire_due(session: Session, *, limit: int = BATCH, now: datetime | None = None, fast: bool = True) -> int:
    """One batch: up to `limit` due lots expire. Returns how many this call expired (a concurrent sweep that read
    the same lots finds them empty once it holds their members' locks, and writes nothing for them).
    On PostgreSQL (unless `fast` is off) steps 2-5 are two statements with array parameters (`_PG_LOCK`,
    `_PG_EXPIRE`); elsewhere, the portable statements below. tests/test_points_expiry.py compares the two."""
    now = now or clock.now()
    due = session.execute(_DUE, {"_now": now, "_limit": limit}).all()
    if not due:
        return 0
    ids, users = [row.id for row in due], sorted({row.user_id for row in due})
    if fast and session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_LOCK, {"users": users})
        return session.execute(_PG_EXPIRE, {"ids": ids, "now": now, "reason": _REASON}).rowcount
    ledger.lock(session, users, now)
    session.execute(_WRITE_ENTRIES, {"_ids": ids, "_now": now, "_reason": {"rule": "expired"}})
    session.execute(_LOWER, {"_ids": ids, "_users": users, "_now": now})
    return session.execute(_EMPTY, {"_ids": ids, "_now": now}).rowcount  # another sweep may have taken some


# --- reminders -----------------------------------------------------------------------------------------------

REMINDER = "expiry_reminder"
_REMIND_BATCH = 1000


def remind(session: Session, policy: PointsPolicy, *, limit: int = _REMIND_BATCH, now: datetime | None = None) -> int:
    """One batch of `points.expiring` messages: one per (member, expiry instant) whose lots with points left
    expire within the policy's `remind_days`, in (expires_at, user) order from where the last batch stopped
    (a cursor row), so each is considered once. The outbox's dedupe key makes a retry harmless; marketing
    rules (consent, quiet hours, the daily cap) apply when it is sent, and the guard skips it if the points
    are gone by then. Returns how many groups this batch looked at."""
    now = now or clock.now()
    cursor = session.get(PointsCursor, REMINDER, with_for_update=True)
    if cursor is None:
        cursor = PointsCursor(name=REMINDER, at=now, user_id=0)
        session.add(cursor)
    start = max(cursor.at, now)
    after = sa.or_(
        _LOTS.c.expires_at > cursor.at, sa.and_(_LOTS.c.expires_at == cursor.at, _LOTS.c.user_id > cursor.user_id)
    )
    groups = session.execute(
        sa.select(_LOTS.c.expires_at, _LOTS.c.user_id, sa.func.sum(_LOTS.c.remaining).label("points"))
        .where(sa.text("points_lots.remaining > 0 AND points_lots.state = 'available'"), after,
               _LOTS.c.expires_at >= start, _LOTS.c.expires_at <= now + timedelta(days=policy.remind_days))
        .group_by(_LOTS.c.expires_at, _LOTS.c.user_id)
        .order_by(_LOTS.c.expires_at, _LOTS.c.user_id)
        .limit(limit)
    ).all()  # fmt: skip
    for expires_at, user_id, points in groups:
        notify(session, user_id=user_id, template_key="points.expiring",
               dedupe_key=f"points-expiring-{user_id}-{expires_at:%Y%m%dT%H%M}",
               payload={"points": int(points), "expires_at": expires_at.isoformat()},
               guard={"type": "points_left", "expires_at": expires_at.isoformat()})  # fmt: skip
    if groups:
        cursor.at, cursor.user_id = groups[-1].expires_at, groups[-1].user_id
    return len(groups)


def points_left(session: Session, user_id: int, guard: dict) -> bool:
    """Outbox guard: the member still has points in lots expiring at that instant."""
    at = datetime.fromisoformat(guard["expires_at"])
    query = sa.select(_LOTS.c.id).where(_LOTS.c.user_id == user_id, _LOTS.c.expires_at == at, _LOTS.c.remaining > 0)
    return session.scalar(query.limit(1)) is not None
