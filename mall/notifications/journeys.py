"""T+ journeys (T+消息线): timed messages after an anchor event, each step re-checked when it fires."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from mall import clock
from mall.db import Base, JSONType, insert_on_conflict
from mall.notifications import templates
from mall.notifications.services import notify

ANCHORS = ("signed_up", "first_order_paid", "order_completed", "inactive")


class Journey(Base):
    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    anchor: Mapped[str] = mapped_column(sa.String(30), index=True)
    inactive_days: Mapped[int | None]  # for the "inactive" anchor
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    steps: Mapped[list[JourneyStep]] = relationship(order_by="JourneyStep.offset_minutes", cascade="all, delete-orphan")


class JourneyStep(Base):
    __tablename__ = "journey_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    offset_minutes: Mapped[int]  # T+1 day = 1440
    template_key: Mapped[str] = mapped_column(sa.String(64))
    condition: Mapped[str | None] = mapped_column(sa.String(40))  # e.g. "no_order_since_anchor"
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)


class JourneyEnrollment(Base):
    """A shopper enters a journey once per anchor event (`anchor_ref`: the order, the inactivity date ...)."""

    __tablename__ = "journey_enrollments"
    __table_args__ = (sa.UniqueConstraint("journey_id", "user_id", "anchor_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    anchor_ref: Mapped[str] = mapped_column(sa.String(60))
    anchor_at: Mapped[datetime]


CONDITIONS = {"no_order_since_anchor"}
IN_SEGMENT = "in_segment:"  # `in_segment:<segment id>`: the shopper is in that member segment when the step fires
INACTIVE_LOOKBACK_DAYS = 2  # the daily inactivity run looks this far past the threshold (catch-up)


def define(session: Session, *, name: str, anchor: str, steps: list[dict], inactive_days: int | None = None):
    from mall.errors import Conflict, Invalid

    if session.scalar(sa.select(Journey.id).filter_by(name=name)) is not None:
        raise Conflict("journey.name_taken", f"A journey named {name!r} exists already.", field="name")
    if anchor not in ANCHORS:
        raise Invalid("journey.anchor_unknown", f"Anchor must be one of {', '.join(ANCHORS)}.", field="anchor")
    if (anchor == "inactive") != (inactive_days is not None):
        raise Invalid("journey.inactive_days", "inactive_days goes with (and only with) the inactive anchor.",
                      field="inactive_days")  # fmt: skip
    for step in steps:
        templates.get(step["template_key"])
        if step.get("condition") and step["condition"] not in CONDITIONS and not _segment_condition(step["condition"]):
            raise Invalid("journey.condition_unknown", f"Unknown condition {step['condition']!r}.", field="steps")
    journey = Journey(name=name, anchor=anchor, inactive_days=inactive_days,
                      steps=[JourneyStep(**step) for step in steps])  # fmt: skip
    session.add(journey)
    session.flush()
    return journey


def _segment_condition(condition: str) -> bool:
    return condition.startswith(IN_SEGMENT) and condition.removeprefix(IN_SEGMENT).isdigit()


def _guard(condition: str | None, anchor_at: datetime) -> dict | None:
    """The outbox guard a step's condition becomes (re-checked when the message fires)."""
    if not condition:
        return None
    if _segment_condition(condition):  # the members capability registers the `in_segment` guard
        return {"type": "in_segment", "segment_id": int(condition.removeprefix(IN_SEGMENT))}
    return {"type": "no_order_since", "since": anchor_at.isoformat()}


def enter(
    session: Session, *, user_id: int, anchor: str, anchor_ref: str, anchor_at: datetime | None = None,
    inactive_days: int | None = None,
) -> int:  # fmt: skip
    """Enrol the shopper in every active journey on this anchor and queue each step. Returns enrolments made.
    For the "inactive" anchor, `inactive_days` picks the journeys whose threshold was reached."""
    anchor_at = anchor_at or clock.now()
    made = 0
    query = sa.select(Journey).filter_by(anchor=anchor, active=True).order_by(Journey.id)
    if inactive_days is not None:
        query = query.filter_by(inactive_days=inactive_days)
    for journey in session.scalars(query).all():
        values = {"journey_id": journey.id, "user_id": user_id, "anchor_ref": anchor_ref, "anchor_at": anchor_at}
        if insert_on_conflict(session, JourneyEnrollment.__table__, values=values,
                              index_elements=["journey_id", "user_id", "anchor_ref"]):  # fmt: skip
            _queue_steps(session, journey, user_id, anchor_ref, anchor_at)
            made += 1
    return made


def _queue_steps(session: Session, journey: Journey, user_id: int, anchor_ref: str, anchor_at: datetime) -> None:
    for step in journey.steps:
        guard = _guard(step.condition, anchor_at)
        notify(session, user_id=user_id, template_key=step.template_key, payload=dict(step.payload),
               send_after=anchor_at + timedelta(minutes=step.offset_minutes), guard=guard,
               dedupe_key=f"journey-{journey.id}-{user_id}-{anchor_ref}-{step.id}")  # fmt: skip


def inactive_shoppers(
    session: Session, *, days: int, after: int = 0, limit: int = 1000
) -> list[tuple[int, datetime]]:  # fmt: skip
    """Shoppers whose last order (or sign-up, if none) is `days` to `days + INACTIVE_LOOKBACK_DAYS`
    ago: one episode each (the enrolment's ref is the day of that activity). Looking back two days
    rather than one makes a daily run that starts later than yesterday's, or a missed run, lose nobody;
    those already enrolled for the episode enter nothing again. The anchor is that last activity, so
    "T+10 of inactivity" is ten days after it. Pages by user id (`after`: the previous page's last id)."""
    from mall.identity.models import User
    from mall.orders.models import Order

    last = sa.func.coalesce(sa.func.max(Order.created_at), User.created_at)
    now = clock.now()
    query = (
        sa.select(User.id, last.label("last_seen"))
        .outerjoin(Order, Order.user_id == User.id)
        .where(User.role == "shopper", User.id > after)
        .group_by(User.id, User.created_at)
        .having(last <= now - timedelta(days=days), last > now - timedelta(days=days + INACTIVE_LOOKBACK_DAYS))
        .order_by(User.id)
        .limit(limit)
    )
    return [(row.id, row.last_seen) for row in session.execute(query)]


SEED = [
    ("Welcome series", "signed_up", None, [
        {"offset_minutes": 1 * 1440, "template_key": "journey.welcome"},
        {"offset_minutes": 3 * 1440, "template_key": "journey.recommendation", "condition": "no_order_since_anchor"},
    ]),
    ("After the first purchase", "first_order_paid", None, [
        {"offset_minutes": 5 * 1440, "template_key": "journey.usage_tips"},
        {"offset_minutes": 15 * 1440, "template_key": "journey.member_benefits"},
    ]),
    ("Win-back", "inactive", 10, [
        {"offset_minutes": 10 * 1440, "template_key": "journey.win_back", "condition": "no_order_since_anchor"},
    ]),
]  # fmt: skip


def seed(session: Session) -> None:
    """The demo's seed journeys (idempotent by name)."""
    for name, anchor, inactive_days, steps in SEED:
        if session.scalar(sa.select(Journey.id).filter_by(name=name)) is None:
            define(session, name=name, anchor=anchor, steps=steps, inactive_days=inactive_days)
