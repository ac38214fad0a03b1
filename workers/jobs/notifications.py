"""Outbox dispatch, the sweeps behind it, unpaid reminders, abandoned-cart nudges and inactivity journeys."""

from __future__ import annotations

import logging
from datetime import timedelta

from mall.notifications import nudges, reactions, reminders
from mall.notifications import services as notifications
from mall.notifications.channels import LogChannel
from workers import runtime
from workers.runtime import unit_of_work

log = logging.getLogger(__name__)


def channels() -> dict:
    """The transports this deployment sends through (`NOTIFY_TRANSPORT`)."""
    settings = runtime.settings()
    found = {"wechat": LogChannel("wechat"), "sms": LogChannel("sms"), "email": LogChannel("email")}
    if settings.notify_transport == "wechat":
        from workers.wechat_channel import wechat_channel

        found["wechat"] = wechat_channel(settings)
    return found


def dispatch_message(message_id: int) -> str:
    return dispatch_through(message_id, channels())


def dispatch_through(message_id: int, found: dict) -> str:
    """Claim, commit, call the channel with no transaction open, then record (mall.notifications.services)."""
    with unit_of_work() as session:
        claimed = notifications.claim(session, message_id=message_id, channels=found,
                                      rules=runtime.settings().marketing_rules)  # fmt: skip
    if isinstance(claimed, str):
        return claimed
    result = notifications.deliver(claimed, found)
    with unit_of_work() as session:
        return notifications.record(session, outgoing=claimed, result=result)


def sweep_due_messages() -> int:
    """Re-dispatch pending, due messages whose job was lost (crash between commit and enqueue)."""
    with unit_of_work() as session:
        ids = notifications.due_message_ids(session)
    return sum(dispatch_message(message_id) == "sent" for message_id in ids)


def _reminder_delay() -> timedelta:
    return timedelta(minutes=runtime.settings().unpaid_reminder_minutes)


def remind_unpaid_order(order_id: int) -> bool:
    """Queue the order's reminder if it is still unpaid (one transaction per order)."""
    with unit_of_work() as session:
        return reminders.remind_unpaid(session, order_id=order_id, delay=_reminder_delay())


def sweep_unpaid_reminders() -> int:
    """Every 30 seconds: the reminders of unpaid orders that came due (a bounded batch)."""
    with unit_of_work() as session:
        ids = reminders.due_unpaid_reminders(session, delay=_reminder_delay())
    made = 0
    for order_id in ids:
        try:
            made += remind_unpaid_order(order_id)
        except Exception:  # rolled back: one order's failure does not hold up the others; the next run retries it
            log.exception("could not queue the unpaid reminder of order %s", order_id)
    return made


def nudge_abandoned_carts() -> int:
    made = 0
    for stage, idle, until in nudges.stage_windows(runtime.settings().cart_nudge_hours):
        with unit_of_work() as session:
            found = nudges.abandoned_carts(session, idle=idle, until=until, stage=stage)
        for cart_id, user_id, version in found:
            try:
                with unit_of_work() as session:  # one cart per transaction: a failure costs one nudge, not all
                    made += nudges.nudge(session, cart_id=cart_id, user_id=user_id, version=version, stage=stage)
            except Exception:  # rolled back, claim included: the next sweep tries this cart again
                log.exception("could not nudge cart %s (stage %s)", cart_id, stage)
    return made


def enter_inactivity_journeys() -> int:
    import sqlalchemy as sa

    from mall.notifications.journeys import Journey

    with unit_of_work() as session:
        query = sa.select(Journey.inactive_days).filter_by(anchor="inactive", active=True).distinct()
        thresholds = session.scalars(query).all()
    made = 0
    for days in thresholds:
        with unit_of_work() as session:
            made += reactions.enter_inactive(session, days=days)
    return made
