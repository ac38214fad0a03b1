"""Growth value (ADR 0030): what a member paid for lines, net of what was refunded on them, on orders paid in the
programme's term (the calendar year, the last 12 months, or ever), in the programme's currency. Shipping never
counts (it is on the sub-order, not a line), exactly as points never earn on it.

Growth is always recomputed from the orders for a set of members (`compute`), never incremented: a payment, a
refund and the daily job all give the same number for the same orders, a retried reaction changes nothing, and
spend leaving a rolling term drops out without a ledger of its own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.db import upsert_many
from mall.members.level_models import MemberGrowth
from mall.orders.models import Order, OrderLine

TERMS = ("calendar_year", "rolling_12_months", "lifetime")


@dataclass(frozen=True)
class Programme:
    term: str = "calendar_year"
    grace_days: int = 30
    currency: str = "CNY"
    timezone: str = "Asia/Shanghai"

    @property
    def grace(self) -> timedelta:
        return timedelta(days=self.grace_days)

    def term_start(self, now: datetime) -> datetime | None:
        """The first instant whose payments count, or None (lifetime)."""
        if self.term == "lifetime":
            return None
        local = now.astimezone(ZoneInfo(self.timezone))
        if self.term == "calendar_year":
            return datetime(local.year, 1, 1, tzinfo=local.tzinfo).astimezone(UTC)
        day = min(local.day, 28) if (local.month, local.day) == (2, 29) else local.day
        return local.replace(year=local.year - 1, day=day).astimezone(UTC)


PROGRAMME = Programme()


def install(programme: Programme) -> None:
    global PROGRAMME
    PROGRAMME = programme


def current() -> Programme:
    return PROGRAMME


def compute(session: Session, user_ids: Iterable[int], now: datetime) -> dict[int, int]:
    """User id -> growth now, from their paid orders (members with none: 0). One aggregate query."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    programme = current()
    query = (
        sa.select(Order.user_id, sa.func.sum(OrderLine.payable - OrderLine.refunded_amount))
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.user_id.in_(ids), Order.paid_at.is_not(None), Order.currency == programme.currency)
        .group_by(Order.user_id)
    )  # fmt: skip
    if (start := programme.term_start(now)) is not None:
        query = query.where(Order.paid_at >= start)
    found = dict.fromkeys(ids, 0)
    found.update({user_id: int(total or 0) for user_id, total in session.execute(query)})
    return found


def rows(session: Session, user_ids: Iterable[int]) -> dict[int, MemberGrowth]:
    ids = sorted(set(user_ids))
    return {row.user_id: row for row in session.scalars(sa.select(MemberGrowth).where(MemberGrowth.user_id.in_(ids)))}


def write(session: Session, found: dict[int, MemberGrowth], growth: dict[int, int], now: datetime) -> None:
    """Store the growth that changed, in two statements: a row changes only if it still holds what was read (a
    payment that committed meanwhile wrote a newer value: it stays), a member's first row is inserted unless one
    appeared meanwhile. The next recomputation corrects whatever a skipped write left."""
    changed = [{"_u": u, "_old": found[u].growth, "_g": g, "_now": now} for u, g in growth.items()
               if u in found and found[u].growth != g]  # fmt: skip
    if changed:
        session.execute(_CHANGE, changed)
    new = [{"user_id": u, "growth": g, "below_since": None, "updated_at": now} for u, g in growth.items()
           if u not in found and g != 0]  # fmt: skip
    upsert_many(session, MemberGrowth.__table__, new, index_elements=["user_id"])


_T = MemberGrowth.__table__
_CHANGE = (
    _T.update().where(_T.c.user_id == sa.bindparam("_u"), _T.c.growth == sa.bindparam("_old"))
    .values(growth=sa.bindparam("_g"), updated_at=sa.bindparam("_now"))
)  # fmt: skip
