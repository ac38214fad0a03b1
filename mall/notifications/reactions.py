"""What the notification capability does when other capabilities record events, inside their
transaction (so the outbox row commits or rolls back with the change)."""

from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import events
from mall.events import DomainEvent
from mall.notifications import journeys
from mall.notifications.services import notify


def install() -> None:
    """The unpaid reminder is not among these: it is written when due (mall/notifications/reminders.py)."""
    events.react("order.paid", _paid)
    events.react("sub_order.shipped", _shipped)
    events.react("payment.refunded", _refunded)
    events.react("shopper.signed_up", _signed_up)
    events.react("order.completed", _completed)


def _order(session: Session, order_id: int):
    from mall.orders.models import Order

    return session.get(Order, order_id)


def _paid(session: Session, event: DomainEvent) -> None:
    order = _order(session, event.aggregate_id)
    notify(session, user_id=order.user_id, template_key="order.paid", dedupe_key=f"order-paid-{order.id}",
           payload={"order_id": order.id, "amount": order.payable_total})  # fmt: skip
    if _is_first_paid_order(session, order):
        # One ref per shopper, not per order: two first orders paid at once (neither sees the other's
        # uncommitted payment) meet on the enrolment's unique key and enter once.
        journeys.enter(session, user_id=order.user_id, anchor="first_order_paid", anchor_ref="first-paid-order")


def _is_first_paid_order(session: Session, order) -> bool:
    return session.execute(_earlier_paid(), {"_user": order.user_id, "_order": order.id}).first() is None


@functools.cache
def _earlier_paid() -> sa.Select:
    """Another paid order of the same shopper; built once."""
    from mall.orders.models import Order

    return (
        sa.select(Order.id)
        .where(Order.user_id == sa.bindparam("_user"), Order.paid_at.is_not(None), Order.id != sa.bindparam("_order"))
        .limit(1)
    )


def _shipped(session: Session, event: DomainEvent) -> None:
    order = _order(session, event.aggregate_id)
    sub_id = event.payload["sub_order_id"]
    notify(session, user_id=order.user_id, template_key="order.shipped", dedupe_key=f"sub-order-shipped-{sub_id}",
           payload={"order_id": order.id, "carrier": event.payload.get("carrier"),
                    "tracking_number": event.payload.get("tracking_number")})  # fmt: skip


def _refunded(session: Session, event: DomainEvent) -> None:
    order = _order(session, event.aggregate_id)
    refund_id = event.payload["refund_id"]
    notify(session, user_id=order.user_id, template_key="order.refunded", dedupe_key=f"refund-{refund_id}",
           payload={"order_id": order.id, "amount": event.payload["amount"]})  # fmt: skip


def _signed_up(session: Session, event: DomainEvent) -> None:
    journeys.enter(session, user_id=event.aggregate_id, anchor="signed_up", anchor_ref="signup",
                   anchor_at=event.occurred_at)  # fmt: skip


def _completed(session: Session, event: DomainEvent) -> None:
    order = _order(session, event.aggregate_id)
    journeys.enter(session, user_id=order.user_id, anchor="order_completed", anchor_ref=f"order-{order.id}")


def enter_inactive(session: Session, *, days: int, page: int = 1000) -> int:
    """Daily: shoppers inactive for N days enter the journeys on that threshold (only those), once per
    inactivity episode. Every such shopper, page after page: the day's window is not seen again."""
    made, after = 0, 0
    while found := journeys.inactive_shoppers(session, days=days, after=after, limit=page):
        for user_id, last_seen in found:
            made += journeys.enter(session, user_id=user_id, anchor="inactive", anchor_at=last_seen,
                                   anchor_ref=f"inactive-{_day(last_seen)}", inactive_days=days)  # fmt: skip
        after = found[-1][0]
    return made


def _day(at: datetime) -> str:
    return at.date().isoformat()
