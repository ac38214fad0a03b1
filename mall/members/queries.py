"""What members and finance read of the points ledger (ADR 0027): a member's balance with what expires next, their
history, and the liability report."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.identity.models import User
from mall.members import catalogue, ledger, levels, policy
from mall.members.points_models import PointsEntry, PointsLot

_LOTS, _ENTRIES = PointsLot.__table__, PointsEntry.__table__


def summary(session: Session, *, user_id: int, expiries: int = 1) -> dict:
    """The balance and the next expiry: the earliest expiry instant among available lots with points left, and
    how many points expire then; with `expiries` > 1 also the coming expiries, that many, under `expiring`."""
    balance = ledger.balance(session, user_id)
    upcoming = expiring(session, user_id=user_id, limit=max(expiries, 1))
    rules = policy.current()
    found = {"available": balance.available, "pending": balance.pending, "reserved": balance.reserved,
             "value": {"amount": rules.value(balance.available), "currency": rules.currency},
             "next_expiry": upcoming[0] if upcoming else None}  # fmt: skip
    return {**found, "expiring": upcoming} if expiries > 1 else found


def expiring(session: Session, *, user_id: int, limit: int) -> list[dict]:
    """The next `limit` expiry instants of the member's available points still left, soonest first, with how many
    points expire at each."""
    rows = session.execute(
        sa.select(_LOTS.c.expires_at, sa.func.sum(_LOTS.c.remaining))
        .where(_LOTS.c.user_id == user_id, _LOTS.c.remaining > 0, _LOTS.c.state == "available",
               _LOTS.c.expires_at > clock.now())
        .group_by(_LOTS.c.expires_at).order_by(_LOTS.c.expires_at).limit(limit)
    )  # fmt: skip
    return [{"points": int(points), "expires_at": at} for at, points in rows]


EXPIRING_SHOWN = 3  # the member centre lists this many coming expiries


def member_centre(session: Session, *, user_id: int) -> dict:
    """The member centre (GET /me/member): the member, their points with the coming expiries, their level's
    progress and benefits, and the coupons they can buy with points now."""
    user = session.get(User, user_id)
    return {"user_id": user.id, "display_name": user.display_name, "member_since": user.created_at,
            "points": summary(session, user_id=user_id, expiries=EXPIRING_SHOWN),
            "level": levels.progress(session, user_id=user_id),
            "catalogue": catalogue.available(session, user_id=user_id)}  # fmt: skip


def history(session: Session, *, user_id: int, before_id: int | None = None,
            limit: int = 20) -> tuple[list[PointsEntry], int | None]:  # fmt: skip
    """A member's entries, newest first, a page at a time: (entries, the `before_id` of the next page or None)."""
    query = sa.select(PointsEntry).where(PointsEntry.user_id == user_id).order_by(PointsEntry.id.desc())
    if before_id is not None:
        query = query.where(PointsEntry.id < before_id)
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def liability(session: Session, *, brand_id: int | None = None, now: datetime | None = None) -> dict:
    """Outstanding points by funder (a brand, or the platform: `brand_id` None) as a count, their money value and
    that value net of expected breakage. Breakage rate per funder = points that expired / points that were
    granted (net of clawbacks) in the lots whose expiry fell in the last 12 months: a matured cohort, all of
    whose points were either used or expired. No matured lots: no breakage is assumed (the full value)."""
    now = now or clock.now()
    rules = policy.current()
    outstanding = (sa.select(_LOTS.c.brand_id,
                             sa.func.sum(sa.case((_LOTS.c.state == "available", _LOTS.c.remaining), else_=0)),
                             sa.func.sum(sa.case((_LOTS.c.state == "pending", _LOTS.c.remaining), else_=0)))
                   .where(_LOTS.c.remaining > 0).group_by(_LOTS.c.brand_id))  # fmt: skip
    if brand_id is not None:
        outstanding = outstanding.where(_LOTS.c.brand_id == brand_id)
    rates = _breakage(session, now - timedelta(days=365), now)
    rows = []
    for funder, available, pending in sorted(
        session.execute(outstanding).all(), key=lambda r: (r[0] is not None, r[0] or 0)
    ):
        points = int(available) + int(pending)
        expired, granted = rates.get(funder, (0, 0))
        rate_bp = expired * 10_000 // granted if granted else 0
        rows.append({"brand_id": funder, "available": int(available), "pending": int(pending), "points": points,
                     "value": rules.value(points), "breakage_bp": rate_bp, "cohort_points": granted,
                     "cohort_expired": expired, "net_value": rules.value(points) * (10_000 - rate_bp) // 10_000})  # fmt: skip
    total = {name: sum(row[name] for row in rows) for name in ("available", "pending", "points", "value", "net_value")}
    return {"as_of": now, "currency": rules.currency, "points_per_unit": rules.points_per_unit, "funders": rows,
            "total": total, "method": METHOD}  # fmt: skip


METHOD = ("value = points / points_per_unit; breakage per funder = expired / (granted - clawed back) over lots whose "
          "expiry fell in the last 12 months (a matured cohort); net = value * (1 - breakage); pending points "
          "(earned on unsettled sub-orders) are included")  # fmt: skip


def _breakage(session: Session, since: datetime, now: datetime) -> dict[int | None, tuple[int, int]]:
    """Funder -> (points expired, points granted net of clawbacks) of the lots that matured in [since, now)."""
    expired = sa.func.sum(sa.case((_ENTRIES.c.kind == "expire", -_ENTRIES.c.amount), else_=0))
    granting = _ENTRIES.c.kind.in_(("earn", "signup", "checkin", "recredit", "clawback")) | (
        (_ENTRIES.c.kind == "adjust") & (_ENTRIES.c.amount > 0)
    )  # a lot's grant, less what refunds took back
    granted = sa.func.sum(sa.case((granting, _ENTRIES.c.amount), else_=0))
    query = (sa.select(_LOTS.c.brand_id, expired, granted)
             .join(_ENTRIES, _ENTRIES.c.lot_id == _LOTS.c.id)
             .where(_LOTS.c.expires_at >= since, _LOTS.c.expires_at < now)
             .group_by(_LOTS.c.brand_id))  # fmt: skip
    return {funder: (int(e or 0), int(g or 0)) for funder, e, g in session.execute(query)}
