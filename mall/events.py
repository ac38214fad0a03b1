"""Domain events: a row written in the same transaction as the change it describes.

Services call `record`; the edge commits, then calls `release` so in-process
subscribers (job enqueuers, later the notification outbox) see only committed facts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from mall import clock, wiring
from mall.db import Base, JSONType

_subscribers: dict[str, list[Callable[[DomainEvent], None]]] = defaultdict(list)
_reactions: dict[str, list[Callable[[Session, DomainEvent], None]]] = defaultdict(list)


_PRUNABLE = sa.text("aggregate_type <> 'order'")


class DomainEvent(Base):
    __tablename__ = "domain_events"
    __table_args__ = (
        sa.Index(None, "aggregate_type", "aggregate_id", "id"),
        # retention (mall/retention.py): the events it may prune, oldest first; an order's (kept) are not in it
        sa.Index("ix_domain_events_prunable", "occurred_at", postgresql_where=_PRUNABLE, sqlite_where=_PRUNABLE),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(64))  # never searched by type alone: no index to keep up
    aggregate_type: Mapped[str] = mapped_column(sa.String(32))
    aggregate_id: Mapped[int]
    actor_id: Mapped[int | None]
    actor_role: Mapped[str | None] = mapped_column(sa.String(32))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=clock.now)


# Written by one prebuilt INSERT, not through the session's unit of work: the row is never read back in the
# transaction that writes it, and a flush of it cost more Python than the INSERT itself.
_WRITTEN = ("type", "aggregate_type", "aggregate_id", "actor_id", "actor_role", "payload", "occurred_at")
_INSERT = sa.insert(DomainEvent.__table__).inline()


def record(session: Session, type: str, *, aggregate: str, aggregate_id: int, actor=None, **payload) -> DomainEvent:
    """Write an event row; it commits or rolls back with the change that caused it."""
    return write(session, new(type, aggregate=aggregate, aggregate_id=aggregate_id, actor=actor,
                              occurred_at=clock.now(), **payload))  # fmt: skip


def write(session: Session, event: DomainEvent) -> DomainEvent:
    """Write an event made by `new`, then as `recorded`."""
    session.execute(_INSERT, {name: getattr(event, name) for name in _WRITTEN})
    return recorded(session, event)


def write_many(session: Session, batch: list[DomainEvent]) -> list[DomainEvent]:
    """Write events made by `new` in one statement (a sweep's batch: one round trip, not one per event), then each
    as `recorded`, in order."""
    if batch:
        session.execute(_INSERT, [{name: getattr(event, name) for name in _WRITTEN} for event in batch])
    return [recorded(session, event) for event in batch]


def new(type: str, *, aggregate: str, aggregate_id: int | None, actor, occurred_at: datetime, **payload) -> DomainEvent:
    """The event, not written."""
    return DomainEvent(type=type, aggregate_type=aggregate, aggregate_id=aggregate_id,
                       actor_id=getattr(actor, "user_id", None), actor_role=getattr(actor, "role", None),
                       payload=payload, occurred_at=occurred_at)  # fmt: skip


def recorded(session: Session, event: DomainEvent) -> DomainEvent:
    """`event`, written already (by `record`, or by a statement of the caller's with `insert_cte`): its
    reactions run now, in the transaction; its subscribers hear of it after the commit."""
    wiring.require()  # an event with none of its reactions installed would be a silent half-change
    session.info.setdefault("pending_events", []).append(event)
    for react in _reactions.get(event.type, ()):
        react(session, event)
    return event


def insert_cte(name: str, written: str) -> str:
    """A CTE for PostgreSQL that writes an event as part of a statement of the caller's (the placement writes
    its order and the order's event in one): the aggregate's id is the `id` of the CTE `written` (no row
    there, no event); the other values are the parameters `insert_params` gives."""
    return f"""{name} AS (
    INSERT INTO domain_events (type, aggregate_type, aggregate_id, actor_id, actor_role, payload, occurred_at)
    SELECT :ev_type, :ev_aggregate_type, {written}.id, CAST(:ev_actor_id AS integer), :ev_actor_role,
           CAST(:ev_payload AS jsonb), :ev_occurred_at
    FROM {written}
)"""


def insert_params(event: DomainEvent) -> dict:
    """The parameters of `insert_cte` for `event` (whose aggregate id the statement supplies)."""
    return {"ev_type": event.type, "ev_aggregate_type": event.aggregate_type, "ev_actor_id": event.actor_id,
            "ev_actor_role": event.actor_role, "ev_payload": json.dumps(event.payload),
            "ev_occurred_at": event.occurred_at}  # fmt: skip


def react(event_type: str, handler: Callable[[Session, DomainEvent], None]) -> None:
    """Run `handler` inside the transaction that records the event (e.g. queue an outbox message),
    so the reaction commits or rolls back with the change."""
    if handler not in _reactions[event_type]:
        _reactions[event_type].append(handler)


@dataclass(frozen=True)
class Announcement:
    """An after-commit signal that needs no row of its own (e.g. "this outbox message is queued")."""

    type: str
    aggregate_id: int
    payload: dict


def announce(session: Session, type: str, *, aggregate_id: int, **payload) -> None:
    """Like `record`, but nothing is written: subscribers hear of it only if the transaction commits."""
    session.info.setdefault("pending_events", []).append(Announcement(type, aggregate_id, payload))


def subscribe(event_type: str, handler: Callable[[DomainEvent], None]) -> None:
    if handler not in _subscribers[event_type]:
        _subscribers[event_type].append(handler)


def around_release(wrapper: Callable[[], AbstractContextManager]) -> None:
    """Run every `release` inside `wrapper()` (e.g. the job queue's batch: the jobs a request's events
    schedule go to Redis in one round trip)."""
    global _around_release
    _around_release = wrapper


_around_release: Callable[[], AbstractContextManager] = nullcontext


def reset() -> None:
    """Forget every reaction and subscriber (the composition root starts from nothing each time it runs)."""
    global _around_release
    _reactions.clear()
    _subscribers.clear()
    _around_release = nullcontext


def installed() -> dict[str, dict[str, list[str]]]:
    """Event type -> the reactions (in the transaction) and subscribers (after the commit) installed."""

    def names(registry: dict) -> dict[str, list[str]]:
        return {kind: [wiring.name_of(h) for h in handlers] for kind, handlers in sorted(registry.items()) if handlers}

    return {"reactions": names(_reactions), "subscribers": names(_subscribers)}


def release(session: Session) -> None:
    """After commit: hand committed events to their subscribers (side effects go here)."""
    pending = session.info.pop("pending_events", [])
    if pending:
        with _around_release():
            for event in pending:
                for handler in _subscribers.get(event.type, ()):
                    handler(event)
    for callback in session.info.pop("after_commit", []):  # e.g. give flash-sale units back in Redis
        callback()


def discard(session: Session) -> None:
    """After rollback: the events never happened."""
    session.info.pop("pending_events", None)
    session.info.pop("after_commit", None)
