"""The notification outbox: queue a message with the change that causes it, dispatch it after commit.

Dispatch is claim -> commit -> call -> record, so no transaction or row lock is open during the
provider's HTTP call:

1. `claim` (one transaction): a conditional UPDATE moves a due message to `sending` with a lease
   (`send_after` = now + LEASE) and bumps `attempts`; consent, guards and the marketing cap are checked
   and the grant is spent here; the channel resolves the recipient. A second dispatcher finds the row no
   longer pending.
2. The call (`deliver`), with nothing open.
3. `record` (a second transaction): the outcome is written only if the row is still `sending` under this
   claim's attempt number.

A dispatcher that dies, or whose record cannot commit, leaves the row `sending`; when its lease runs
out the sweep claims it again and sends it once more (its grant stays spent to it, not a second one).
That re-send is the one window for a duplicate: WeChat subscribe messages take no idempotency key. We
chose at-least-once over losing the message, and the window is a one-row commit after the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.db import insert_on_conflict, upsert_many
from mall.identity.models import User
from mall.notifications import guards, templates
from mall.notifications.channels import Channel, Outgoing, SendResult
from mall.notifications.models import PENDING, SENDING, Message, SubscriptionGrant
from mall.notifications.rules import MarketingRules

MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=5)  # far longer than a channel call (WeChat's timeout is 5 s)


def notify(
    session: Session, *, user_id: int, template_key: str, dedupe_key: str, payload: dict | None = None,
    send_after: datetime | None = None, guard: dict | None = None,
) -> bool:  # fmt: skip
    """Queue a message in the caller's transaction. The same dedupe key never queues twice."""
    values = _message(user_id=user_id, template_key=template_key, dedupe_key=dedupe_key, payload=payload,
                      send_after=send_after, guard=guard)  # fmt: skip
    written = insert_on_conflict(session, Message.__table__, index_elements=["dedupe_key"], values=values)
    if written:
        _announce_queued(session, written.id, values["send_after"], values["kind"])
    return written is not None


def notify_many(session: Session, messages: list[dict]) -> int:
    """`notify` for a batch job: each dict holds notify's keyword arguments; one INSERT for all of them, the same
    dedupe. Returns how many were queued."""
    rows = [_message(**message) for message in messages]
    table = Message.__table__
    written = upsert_many(session, table, rows, index_elements=["dedupe_key"],
                          returning=(table.c.id, table.c.send_after, table.c.kind))  # fmt: skip
    for message_id, send_after, kind in written:
        _announce_queued(session, message_id, send_after, kind)
    return len(written)


def _message(*, user_id: int, template_key: str, dedupe_key: str, payload: dict | None = None,
             send_after: datetime | None = None, guard: dict | None = None) -> dict:  # fmt: skip
    template = templates.get(template_key)
    now = clock.now()
    return {"user_id": user_id, "template_key": template_key, "channel": template.channel, "kind": template.kind,
            "payload": payload or {}, "guard": guard, "dedupe_key": dedupe_key, "status": "pending", "attempts": 0,
            "send_after": send_after or now, "created_at": now}  # fmt: skip


def _announce_queued(session: Session, message_id: int, send_after: datetime, kind: str) -> None:
    """After the commit, the dispatch job is queued (now) or scheduled (later); its kind picks the queue."""
    events.announce(session, "message.queued", aggregate_id=message_id, send_after=send_after.isoformat(), kind=kind)


def record_grants(session: Session, *, user_id: int, results: dict[str, str]) -> int:
    """What wx.requestSubscribeMessage answered, per template: each 'accept' allows one message."""
    accepted = [key for key, answer in results.items() if answer == "accept"]
    for key in accepted:
        templates.get(key)
    session.add_all(SubscriptionGrant(user_id=user_id, template_key=key, granted_at=clock.now()) for key in accepted)
    session.flush()
    return len(accepted)


def claim(
    session: Session, *, message_id: int, channels: Mapping[str, Channel], rules: MarketingRules
) -> Outgoing | str:
    """Step 1: take a due message for sending, or settle it without a send. Returns what to send, or what
    happened ("not_pending", "not_due", "skipped:<reason>", "deferred:quiet_hours")."""
    message = session.get(Message, message_id)
    if message is None or message.status not in (PENDING, SENDING):
        return "not_pending"
    if message.send_after > clock.now():
        return "not_due" if message.status == PENDING else "not_pending"  # sending: another holds the lease
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
    outgoing = Outgoing(id=message.id, user_id=message.user_id, template_key=message.template_key,
                        payload=dict(message.payload or {}), attempt=message.attempts)  # fmt: skip
    prepared = channels[message.channel].prepare(session, outgoing, template)
    return _skip(message, prepared.reason or "rejected") if isinstance(prepared, SendResult) else prepared


def deliver(outgoing: Outgoing, channels: Mapping[str, Channel]) -> SendResult:
    """Step 2: the provider call. Run it with no transaction open."""
    template = templates.get(outgoing.template_key)
    return channels[template.channel].send(outgoing, template)


def record(session: Session, *, outgoing: Outgoing, result: SendResult) -> str:
    """Step 3: write the outcome, if this claim still holds the message (its lease was not taken over)."""
    message = session.get(Message, outgoing.id, with_for_update=True)
    if message is None or message.status != SENDING or message.attempts != outgoing.attempt:
        return "superseded"
    if result.status == "sent":
        message.status, message.sent_at = "sent", clock.now()
        return "sent"
    if result.status == "rejected":
        return _skip(message, result.reason or "rejected")
    message.last_error = result.reason[:300]
    if message.attempts >= MAX_ATTEMPTS:
        message.status = "failed"
        return "failed"
    message.status, message.send_after = PENDING, clock.now() + timedelta(minutes=2**message.attempts)
    _announce_queued(session, message.id, message.send_after, message.kind)
    return "retry_later"


def _claim(session: Session, message: Message) -> bool:
    """The conditional move to `sending` under a lease; a concurrent dispatcher's finds no due row."""
    now = clock.now()
    claimed = session.execute(
        sa.update(Message)
        .where(Message.id == message.id, Message.status.in_((PENDING, SENDING)), Message.send_after <= now)
        .values(status=SENDING, send_after=now + LEASE, attempts=Message.attempts + 1),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    session.refresh(message)
    return claimed.rowcount == 1


def _skip(message: Message, reason: str) -> str:
    message.status, message.skip_reason = "skipped", reason
    return f"skipped:{reason}"


def _marketing_verdict(session: Session, message: Message, rules: MarketingRules) -> str | None:
    now = clock.now()
    if rules.in_quiet_hours(now):
        message.status, message.send_after = PENDING, rules.quiet_ends_after(now)
        _announce_queued(session, message.id, message.send_after, message.kind)
        return "deferred:quiet_hours"
    # One claim at a time per user, for this transaction only (never across the call); a send in flight
    # counts, so two dispatchers cannot both take the last place under the cap.
    session.execute(sa.select(User.id).where(User.id == message.user_id).with_for_update())
    sent_today = session.scalar(
        sa.select(sa.func.count()).select_from(Message).where(
            Message.user_id == message.user_id, Message.kind == templates.MARKETING, Message.id != message.id,
            sa.or_(sa.and_(Message.status == "sent", Message.sent_at >= rules.day_start(now)),
                   Message.status == SENDING),
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


def due_message_ids(session: Session, *, limit: int = 500) -> list[int]:
    """Pending and due, then sends whose lease ran out (their dispatcher died or could not record): for the
    sweep that re-dispatches anything whose job was lost. Each status has its own partial index."""
    now = clock.now()
    ids = []
    for status in (PENDING, SENDING):
        query = (
            sa.select(Message.id)
            .where(sa.text(f"messages.status = '{status}'"), Message.send_after <= now)
            .order_by(Message.send_after, Message.id)
            .limit(limit - len(ids))
        )
        ids += session.scalars(query)
    return ids


def list_messages(session: Session, *, status=None, user_id=None, template_key=None, before=None, limit=50):
    query = sa.select(Message).order_by(Message.id.desc()).limit(limit)
    for column, value in ((Message.status, status), (Message.user_id, user_id), (Message.template_key, template_key)):
        if value is not None:
            query = query.where(column == value)
    if before:
        query = query.where(Message.id < before)
    return list(session.scalars(query))
