"""The level's birthday coupon (ADR 0030): on the member's birthday (the shop's calendar day; 29 February
birthdays on 28 February in other years), the coupon template of their level, through the coupons capability's
`issue`. Once a year: the grant ref `level-birthday-<year>` is unique per template and member, so a re-run of the
day's job, or of a batch, issues nothing twice."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.identity.models import User
from mall.members import growth
from mall.members.level_models import MemberLevel
from mall.members.levels import BATCH, BIRTHDAY_GRANT
from mall.promotions.coupons.models import CouponTemplate
from mall.promotions.coupons.services import issue


def today(now: datetime) -> date:
    return now.astimezone(ZoneInfo(growth.current().timezone)).date()


def issue_batch(session: Session, *, after: int = 0, limit: int = BATCH, now: datetime | None = None) -> list[int]:
    """One batch of today's birthday members (ids > `after`) whose level has a birthday coupon: each gets it.
    Returns the member ids looked at (fewer than `limit`: done)."""
    now = now or clock.now()
    day = today(now)
    days = [day.day]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        days.append(29)
    rows = session.execute(
        sa.select(User.id, MemberLevel.birthday_template_id)
        .join(MemberLevel, MemberLevel.level == User.member_level)
        .where(User.role == "shopper", User.id > after, MemberLevel.birthday_template_id.is_not(None),
               sa.extract("month", User.birthday) == day.month, sa.extract("day", User.birthday).in_(days))
        .order_by(User.id).limit(limit)
    ).all()  # fmt: skip
    templates = {t.id: t for t in session.scalars(sa.select(CouponTemplate).where(
        CouponTemplate.id.in_({r.birthday_template_id for r in rows})))}  # fmt: skip
    for user_id, template_id in rows:
        issue(session, template=templates[template_id], user_id=user_id, source=BIRTHDAY_GRANT,
              grant_ref=f"level-birthday-{day.year}", strict=False)  # fmt: skip
    return [r.id for r in rows]
