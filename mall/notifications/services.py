"""The notification outbox: queue a message with the change that causes it, dispatch it after commit.

Dispatch claims the row with a conditional UPDATE and sends inside that transaction: a worker that
dies mid-dispatch rolls back (the row is pending again, its consent grant unspent) and the sweep
sends it later; a second worker on the same row finds it no longer pending. A provider call that
succeeded just before a crash, before the commit, is the one window for a repeat (WeChat offers no
idempotency key).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.db import insert_on_conflict
from mall.identity.models import User
from mall.notifications import guards, templates
from mall.notifications.channels import Channel
from mall.notifications.models import Message, SubscriptionGrant
from mall.notifications.rules import MarketingRules

MAX_ATTEMPTS = 5


def notify(
    session: Session, *, user_id: int, template_key: str, dedupe_key: str, payload: dict | None = None,
    send_after: datetime | None = None, guard: dict | None = None,
) -> bool:  # fmt: skip
    """Queue a message in the caller's transaction. The same dedupe key never queues twice."""
    template = templates.get(template_key)
    now = clock.now()
    written = insert_on_conflict(session, Message.__table__, index_elements=["dedupe_key"], values={
        "user_id": user_id, "template_key": template_key, "channel": template.channel, "kind": template.kind,
        "payload": payload or {}, "guard": guard, "dedupe_key": dedupe_key, "status": "pending", "attempts": 0,
        "send_after": send_after or now, "created_at": now})  # fmt: skip
    if written:
        events.announce(session, "message.queued", aggregate_id=written.id, send_after=(send_after or now).isoformat())
    return written is not None


def record_grants(session: Session, *, user_id: int, results: dict[str, str]) -> int:
    """What wx.requestSubscribeMessage answered, per template: each 'accept' allows one message."""
    accepted = [key for key, answer in results.items() if answer == "accept"]
    for key in accepted:
        templates.get(key)
    session.add_all(SubscriptionGrant(user_id=user_id, template_key=key, granted_at=clock.now()) for key in accepted)
    session.flush()
    return len(accepted)


def dispatch(session: Session, *, message_id: int, channels: dict[str, Channel], rules: MarketingRules) -> str:
    """Send one due message, or skip it with a reason. Returns what happened."""
    message = session.get(Message, message_id)
    if message is None or message.status != "pending":
        return "not_pending"
    if message.send_after > clock.now():
        return "not_due"
    if not _claim(session, message):
        return "not_pending"
    template = templates.get(message.template_key)
    if not guards.holds(session, message.user_id, message.guard):
        return _skip(message, "condition_failed")
    if template.kind == templates.MARKETING:
        verdict = _marketing_verdict(session, message, rules)
        if verdict:
            return verdict
    if template.channel == "wechat" and not _spend_grant(session, message):
        return _skip(message, "no_consent")
    return _deliver(session, message, template, channels[message.channel])


def _claim(session: Session, message: Message) -> bool:
    """Row-locks the message until commit; a concurrent dispatcher then sees it is no longer pending."""
    claimed = session.execute(
        sa.update(Message).where(Message.id == message.id, Message.status == "pending")
        .values(attempts=Message.attempts + 1),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    session.refresh(message)
    return claimed.rowcount == 1 and message.status == "pending"


def _skip(message: Message, reason: str) -> str:
    message.status, message.skip_reason = "skipped", reason
    return f"skipped:{reason}"


def _marketing_verdict(session: Session, message: Message, rules: MarketingRules) -> str | None:
    now = clock.now()
    if rules.in_quiet_hours(now):
        message.send_after = rules.quiet_ends_after(now)
        events.announce(session, "message.queued", aggregate_id=message.id, send_after=message.send_after.isoformat())
        return "deferred:quiet_hours"
    session.execute(sa.select(User.id).where(User.id == message.user_id).with_for_update())  # one at a time per user
    sent_today = session.scalar(
        sa.select(sa.func.count()).select_from(Message).where(
            Message.user_id == message.user_id, Message.kind == templates.MARKETING, Message.status == "sent",
            Message.sent_at >= rules.day_start(now),
        )
    )  # fmt: skip
    return _skip(message, "frequency_cap") if sent_today >= rules.daily_cap else None


def _spend_grant(session: Session, message: Message) -> bool:
    """Consume the oldest unspent grant for this template; the conditional update makes it one send each.
    A message retried after a transient failure keeps the grant it already spent."""
    held = sa.select(SubscriptionGrant.id).where(SubscriptionGrant.message_id == message.id).limit(1)
    if session.scalar(held) is not None:
        return True
    grant_id = session.scalar(
        sa.select(SubscriptionGrant.id)
        .where(SubscriptionGrant.user_id == message.user_id, SubscriptionGrant.template_key == message.template_key,
               SubscriptionGrant.consumed_at.is_(None))
        .order_by(SubscriptionGrant.id).limit(1)
    )  # fmt: skip
    if grant_id is None:
        return False
    spent = session.execute(
        sa.update(SubscriptionGrant).where(SubscriptionGrant.id == grant_id, SubscriptionGrant.consumed_at.is_(None))
        .values(consumed_at=clock.now(), message_id=message.id),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    return spent.rowcount == 1 or _spend_grant(session, message)


def _deliver(session: Session, message: Message, template, channel: Channel) -> str:
    result = channel.send(session, message, template)
    if result.status == "sent":
        message.status, message.sent_at = "sent", clock.now()
        return "sent"
    if result.status == "rejected":
        return _skip(message, result.reason or "rejected")
    message.last_error = result.reason[:300]
    if message.attempts >= MAX_ATTEMPTS:
        message.status = "failed"
        return "failed"
    message.send_after = clock.now() + timedelta(minutes=2**message.attempts)
    events.announce(session, "message.queued", aggregate_id=message.id, send_after=message.send_after.isoformat())
    return "retry_later"


def due_message_ids(session: Session, *, limit: int = 500) -> list[int]:
    """Pending and due: for the sweep that re-dispatches anything whose job was lost."""
    query = (
        sa.select(Message.id)
        .where(sa.text("messages.status = 'pending'"), Message.send_after <= clock.now())
        .order_by(Message.send_after, Message.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def list_messages(session: Session, *, status=None, user_id=None, template_key=None, before=None, limit=50):
    query = sa.select(Message).order_by(Message.id.desc()).limit(limit)
    for column, value in ((Message.status, status), (Message.user_id, user_id), (Message.template_key, template_key)):
        if value is not None:
            query = query.where(column == value)
    if before:
        query = query.where(Message.id < before)
    return list(session.scalars(query))
