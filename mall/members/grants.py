"""Points granted outside orders (ADR 0027): the sign-up grant, the daily check-in, operators' adjustments."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import audit, clock
from mall.errors import Forbidden, Invalid, NotFound
from mall.identity.models import User
from mall.identity.roles import Actor, Role
from mall.members import ledger, policy


def on_signed_up(session: Session, event) -> None:
    """Reaction to `shopper.signed_up`: the sign-up grant, if the deployment gives one."""
    rules = policy.current()
    if rules.signup_grant > 0:
        now = clock.now()
        ledger.grant(session, user_id=event.aggregate_id, amount=rules.signup_grant, kind="signup",
                     key=f"signup:{event.aggregate_id}", now=now, expires_at=rules.expires_at(now),
                     reason={"rule": "signup"})  # fmt: skip


@dataclass(frozen=True)
class CheckIn:
    day: str
    points: int
    granted: bool  # False: this day's check-in was done already


def check_in(session: Session, *, user_id: int) -> CheckIn:
    """Today's check-in (the shop's calendar day): one grant per member per day, whatever the retries."""
    rules = policy.current()
    if rules.checkin_grant <= 0:
        raise Invalid("points.checkin_off", "Daily check-in grants no points here.")
    now = clock.now()
    day = rules.local_day(now)
    lot = ledger.grant(session, user_id=user_id, amount=rules.checkin_grant, kind="checkin",
                       key=f"checkin:{user_id}:{day}", now=now, expires_at=rules.expires_at(now),
                       reason={"rule": "checkin", "day": day})  # fmt: skip
    return CheckIn(day=day, points=rules.checkin_grant, granted=lot is not None)


def adjust(session: Session, *, actor: Actor, user_id: int, points: int, reason: str, key: str,
           brand_id: int | None = None) -> ledger.Balance:  # fmt: skip
    """An operator's adjustment with its reason: a credit is a new lot (funded by `brand_id`, or the platform); a
    debit takes available points oldest expiry first (all or nothing). `key` makes a retry a no-op."""
    if actor.role != Role.PLATFORM_ADMIN:
        raise Forbidden("points.adjust_forbidden", "Only platform operators adjust points.")
    if session.scalar(sa.select(User.role).where(User.id == user_id)) != Role.SHOPPER:
        raise NotFound("points.member_not_found", f"No member {user_id}.")
    if points == 0:
        raise Invalid("points.zero_adjustment", "An adjustment moves at least one point.", field="points")
    rules, now = policy.current(), clock.now()
    why = {"rule": "operator", "note": reason, "by": actor.user_id, "role": str(actor.role)}
    before = ledger.balance(session, user_id).available
    if points > 0:
        ledger.grant(session, user_id=user_id, amount=points, kind="adjust", key=f"adjust:{key}", now=now,
                     expires_at=rules.expires_at(now), brand_id=brand_id, actor_id=actor.user_id, reason=why)  # fmt: skip
    else:
        ledger.take(session, user_id=user_id, amount=-points, kind="adjust", key=f"adjust:{key}", now=now,
                    actor_id=actor.user_id, reason=why)  # fmt: skip
    after = ledger.balance(session, user_id)
    if after.available != before:  # a replay of `key` moved nothing
        audit.record(session, action="member_points.adjusted", object_type="member_points", object_id=user_id,
                     brand_id=brand_id, before={"available": before},
                     after={"available": after.available, "reason": reason})  # fmt: skip
    return after
