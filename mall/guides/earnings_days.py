"""A guide's commission per day for the workbench's chart (ADR 0025), without summing a month of ledger entries on
every view: a guide with 100,000 entries in 30 days would scan them all (about 100 ms on PostgreSQL).

A day's figure is the sum of the guide's earn, reverse and adjust entries posted that day (the shop's time zone)
that are not void: what was credited, net of reversals, on hold included (the balances by state say what is
payable). Closed days are kept in `guide_earnings_days` the first time they are asked for (one aggregation per
guide and day, written insert-or-ignore so concurrent views agree) and read as rows afterwards. The open days
(today, and yesterday within `GRACE` after midnight, while its last postings may still commit) are summed from the
guide's newest entries, walked newest first on ix_guide_commission_entries_guide (guide_id, id) in steps until
the step's oldest entry is older than the open days by `GRACE` (ids grow with posting time, up to transactions
racing each other, which the grace covers): the cost follows today's postings, not the guide's history."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.db import insert_on_conflict
from mall.guides.ledger_models import CommissionEntry as Entry
from mall.guides.models import EarningsDay

CREDITS = ("earn", "reverse", "adjust")
GRACE = timedelta(minutes=10)
STEP = 1000  # entries per step of the open days' walk


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def per_day(session: Session, *, guide_id: int, currency: str, now: datetime, tz: str, days: int) -> list[dict]:
    """[{date, earned}] for the `days` days ending today, oldest first."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    window = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    first_open = today if now - _midnight(today, zone) >= GRACE else today - timedelta(days=1)
    closed = [d for d in window if d < first_open]
    figures = _closed(session, guide_id, currency, closed, zone) if closed else {}
    figures.update(_open(session, guide_id, currency, _midnight(max(first_open, window[0]), zone), today, zone))
    return [{"date": d.isoformat(), "earned": figures.get(d, 0)} for d in window]


def _credits(guide_id: int, currency: str):
    return (Entry.guide_id == guide_id, Entry.currency == currency, Entry.kind.in_(CREDITS), Entry.state != "void")


def _closed(session: Session, guide_id: int, currency: str, closed: list[date], zone: ZoneInfo) -> dict[date, int]:
    """The closed days' figures: the kept rows, and the missing days summed once and kept."""
    kept = dict(session.execute(sa.select(EarningsDay.day, EarningsDay.amount).where(
        EarningsDay.guide_id == guide_id, EarningsDay.currency == currency, EarningsDay.day >= closed[0],
        EarningsDay.day <= closed[-1])).all())  # fmt: skip
    missing = [d for d in closed if d not in kept]
    if not missing:
        return kept
    bounds = [_midnight(d, zone) for d in missing] + [_midnight(missing[-1] + timedelta(days=1), zone)]
    bucket = sa.case(*((Entry.created_at < bounds[i + 1], i) for i in range(len(missing))), else_=None)
    sums = dict(session.execute(
        sa.select(bucket, sa.func.sum(Entry.amount))
        .where(*_credits(guide_id, currency), Entry.created_at >= bounds[0], Entry.created_at < bounds[-1])
        .group_by(bucket)).all())  # fmt: skip
    for i, day in enumerate(missing):
        kept[day] = int(sums.get(i) or 0)
        insert_on_conflict(session, EarningsDay.__table__, index_elements=["guide_id", "currency", "day"],
                           values={"guide_id": guide_id, "currency": currency, "day": day, "amount": kept[day]})  # fmt: skip
    return kept


def _open(session: Session, guide_id: int, currency: str, start: datetime, today: date,
          zone: ZoneInfo) -> dict[date, int]:  # fmt: skip
    """The open days' figures, from the guide's entries posted since `start`, walked newest first: each step is
    summed by the database (per open day), so only a row of figures per step comes back."""
    first = start.astimezone(zone).date()
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]  # today, and yesterday in the grace
    bounds = [_midnight(d, zone) for d in days] + [_midnight(days[-1] + timedelta(days=1), zone)]
    figures: dict[date, int] = {}
    before = None
    while True:
        query = (sa.select(Entry.id, Entry.created_at, Entry.amount, Entry.currency, Entry.kind, Entry.state)
                 .where(Entry.guide_id == guide_id).order_by(Entry.id.desc()).limit(STEP))  # fmt: skip
        if before is not None:
            query = query.where(Entry.id < before)
        step = query.subquery()
        credited = sa.and_(step.c.currency == currency, step.c.kind.in_(CREDITS), step.c.state != "void")
        sums = [sa.func.coalesce(sa.func.sum(sa.case((sa.and_(credited, step.c.created_at >= low,
                                                              step.c.created_at < high), step.c.amount), else_=0)), 0)
                for low, high in zip(bounds, bounds[1:], strict=False)]  # fmt: skip
        seen, last, oldest, *amounts = session.execute(
            sa.select(sa.func.count(), sa.func.min(step.c.id), sa.func.min(step.c.created_at), *sums)
        ).one()
        for d, amount in zip(days, amounts, strict=True):
            if amount:
                figures[d] = figures.get(d, 0) + int(amount)
        if seen < STEP or oldest < start - GRACE:
            return figures
        before = last
