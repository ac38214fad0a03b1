"""Retention (ADR 0035): rows that only grow are pruned by age, a bounded batch per transaction
(workers/jobs/retention.py runs it nightly). What each rule keeps, whatever its age:

- idempotency_records: nothing older than the window (RETENTION_IDEMPOTENCY_DAYS, 7): a retry after it is a new
  request. The flash gate's Redis reservations live minutes, so the row is the last word well within it.
- domain_events: an order's events (its history, `GET /orders/{id}/events`: orders are kept, so is their history).
  Other events are read by nobody after their transaction: their reactions ran in it and their subscribers were
  handed them after its commit (mall/events.py), so there is no unprocessed event in the table to wait for.
- messages: pending and sending ones (queued, retrying, or being sent). A grant a message spent keeps its
  consumed_at and loses the reference to the pruned message.
- webhook_events: unprocessed ones (the sweep still owes them); processed ones keep deduplicating the provider's
  retries (Stripe: up to 3 days) for the whole window.
- cart_nudges: a claim is only consulted while its cart is within a nudge stage (the last stage + 2 days).
- live_room_visits: compacted, not dropped. The room's numbers (mall/live/numbers.py) count distinct viewers per
  room and per pin segment, and attribution reads a shopper's latest visit: an old visit goes only when a later
  visit of the same shopper to the same room lies in every segment it lies in, so every number stays the same.
- guide_visits: nothing older than the window (400 days): the guide report counts visits in the period asked
  for (older periods then count none), first touches (mall/members/tags.py) are recorded nightly.
- refresh_tokens: a login's rows go the window after its absolute expiry (`family_expires_at`): by then no token
  of it can be refreshed, so none can be reused either (ADR 0032).
- Not pruned: ledgers, orders, and live_cart_adds (each row is a cart add in the room's exact numbers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.events import DomainEvent
from mall.guides.models import GuideVisit
from mall.identity.models import RefreshToken
from mall.live.models import PinSegment
from mall.live.tracking import RoomVisit
from mall.notifications.models import Message, SubscriptionGrant
from mall.notifications.nudges import CartNudge
from mall.orders.models import IdempotencyRecord
from mall.payments.models import WebhookEvent

KEPT_AGGREGATES = ("order",)  # their events stay (the partial index ix_domain_events_prunable leaves them out)
DONE_MESSAGES = ("sent", "skipped", "failed")
COMPACTION_LOOKBACK = timedelta(days=30)  # room visits older than the window by more were compacted by past runs


@dataclass(frozen=True)
class Rule:
    table: str
    window: str  # the Settings field: retention_<window>
    prunable: Callable[[datetime, datetime], sa.Select]  # (cutoff, now) -> the ids that may go, oldest first
    before_delete: Callable[[Session, list[int]], None] | None = None


def _older(model, column, *conditions):
    return lambda cutoff, now: sa.select(model.id).where(column < cutoff, *conditions).order_by(column, model.id)


def _release_grants(session: Session, ids: list[int]) -> None:
    session.execute(sa.update(SubscriptionGrant).where(SubscriptionGrant.message_id.in_(ids)).values(message_id=None))


def _redundant_visits(cutoff: datetime, now: datetime) -> sa.Select:
    v, w, s = RoomVisit.__table__.alias("v"), RoomVisit.__table__.alias("w"), PinSegment.__table__

    def within(visit):
        return sa.and_(visit.c.visited_at >= s.c.started_at, sa.or_(s.c.ended_at.is_(None),
                                                                    visit.c.visited_at < s.c.ended_at))  # fmt: skip

    not_covered = sa.exists().where(s.c.room_id == v.c.room_id, within(v), sa.not_(within(w))).correlate_except(s)
    later = sa.exists().where(w.c.room_id == v.c.room_id, w.c.user_id == v.c.user_id, w.c.id > v.c.id, ~not_covered)
    return (
        sa.select(v.c.id)
        .where(v.c.visited_at < cutoff, v.c.visited_at >= cutoff - COMPACTION_LOOKBACK, later)
        .order_by(v.c.visited_at, v.c.id)
    )


RULES = (
    Rule("idempotency_records", "idempotency_days", _older(IdempotencyRecord, IdempotencyRecord.created_at)),
    Rule("domain_events", "events_days", _older(DomainEvent, DomainEvent.occurred_at,
                                                DomainEvent.aggregate_type.not_in(KEPT_AGGREGATES))),
    Rule("messages", "messages_days", _older(Message, Message.created_at, Message.status.in_(DONE_MESSAGES)),
         before_delete=_release_grants),
    Rule("webhook_events", "webhooks_days", _older(WebhookEvent, WebhookEvent.received_at,
                                                   WebhookEvent.processed_at.is_not(None))),
    Rule("cart_nudges", "cart_nudges_days", _older(CartNudge, CartNudge.created_at)),
    Rule("live_room_visits", "room_visits_days", _redundant_visits),
    Rule("guide_visits", "guide_visits_days", _older(GuideVisit, GuideVisit.visited_at)),
    Rule("refresh_tokens", "refresh_tokens_days", _older(RefreshToken, RefreshToken.family_expires_at)),
)  # fmt: skip
_TABLES = {rule.table: sa.table(rule.table, sa.column("id")) for rule in RULES}


def prune(session: Session, rule: Rule, *, now: datetime, window: timedelta, limit: int) -> int:
    """One batch: at most `limit` of the rule's oldest prunable rows deleted. How many were."""
    ids = list(session.scalars(rule.prunable(now - window, now).limit(limit)))
    if not ids:
        return 0
    if rule.before_delete is not None:
        rule.before_delete(session, ids)
    table = _TABLES[rule.table]
    session.execute(sa.delete(table).where(table.c.id.in_(ids)))
    return len(ids)
