"""The unpaid-order reminder, written when it is due rather than at placement.

Most orders are paid within minutes. Written at placement, every order's reminder sat in the outbox
until it was skipped as paid, and every placement paid an INSERT into an indexed table for it. Nor is
there a job per order: a sweep every 30 seconds (workers/cron.py) queues the reminders that came due,
so one is at most that late, and Redis holds no reminder job for each order placed in the last ten
minutes (at 250 orders/s, 150,000 of them). The message's dedupe key writes it once, and its guard is
checked again when it is sent, so an order paid in between is not reminded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.notifications.models import Message
from mall.notifications.services import notify
from mall.orders.states import PENDING

# The reminder comes at least this long before the order closes, so it can still be paid; a window too
# short for that (under REMINDER_LEAD + MIN_REMINDER_DELAY) gets no reminder.
REMINDER_LEAD = timedelta(minutes=5)
MIN_REMINDER_DELAY = timedelta(minutes=1)
TEMPLATE = "order.unpaid_reminder"
DEDUPE_PREFIX = "order-unpaid-"  # + the order's id: one reminder per order


def unpaid_reminder_at(placed_at: datetime, expires_at: datetime, delay: timedelta) -> datetime | None:
    """`delay` after placement, but never later than REMINDER_LEAD before the order closes (a 10-minute flash
    order is reminded after 5 minutes, not at the moment it is cancelled); None when the window is too short."""
    at = min(placed_at + delay, expires_at - REMINDER_LEAD)
    # placed_at and expires_at may come from two clock readings a few milliseconds apart: judge whole seconds
    return at if at - placed_at >= MIN_REMINDER_DELAY - timedelta(seconds=1) else None


def remind_unpaid(session: Session, *, order_id: int, delay: timedelta) -> bool:
    """Queue the order's reminder if it is still unpaid and has a reminder at all. True if queued now."""
    from mall.orders.models import Order

    order = session.get(Order, order_id)
    if order is None or order.status != PENDING:
        return False
    at = unpaid_reminder_at(order.created_at, order.expires_at, delay)
    if at is None:
        return False
    return notify(session, user_id=order.user_id, template_key=TEMPLATE, dedupe_key=f"{DEDUPE_PREFIX}{order.id}",
                  payload={"order_id": order.id, "amount": order.payable_total}, send_after=at,
                  guard={"type": "order_unpaid", "order_id": order.id})  # fmt: skip


def due_unpaid_reminders(session: Session, *, delay: timedelta, limit: int = 1000) -> list[int]:
    """Unpaid orders still open whose reminder is due and not yet written, those closing soonest first, at most
    `limit` (a run stays short; the next one takes the rest). They are found by the partial index of unpaid
    orders by expiry; those already reminded are left out by the outbox's dedupe key."""
    from mall.orders.models import Order

    now = clock.now()
    written = sa.select(Message.id).where(
        Message.dedupe_key == sa.literal(DEDUPE_PREFIX) + sa.cast(Order.id, sa.String)
    )
    query = (
        sa.select(Order.id, Order.created_at, Order.expires_at)
        .where(_UNPAID, Order.expires_at > now)  # the status as written in the partial index's predicate
        .where(sa.or_(Order.created_at <= now - delay, Order.expires_at <= now + REMINDER_LEAD), ~written.exists())
        .order_by(Order.expires_at, Order.id)  # ties (one checkout, many orders) in placement order
        .limit(limit)
    )
    return [
        order_id
        for order_id, placed_at, expires_at in session.execute(query)
        if (at := unpaid_reminder_at(placed_at, expires_at, delay)) is not None and at <= now
    ]


_UNPAID = sa.text(f"orders.status = '{PENDING}'")
