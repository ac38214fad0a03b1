"""The show: the room's host (or its brand's admin) starts and ends the room and pins one lineup item at a time.

A pin closes the open segment and opens the next in one transaction, after taking the room's row
(`rooms.lock`), so pins of one room queue behind each other. The database has the last word: one open
segment per room (a partial unique index) and, on PostgreSQL, no two overlapping (an exclusion constraint)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import audit, clock, events
from mall.catalog.models import Product, Sku
from mall.errors import Conflict, Invalid
from mall.identity.roles import Actor
from mall.live.models import LineupItem, LiveRoom, PinSegment
from mall.live.rooms import ensure_runs, lock, room_not_found

TRANSITIONS = {"scheduled": {"live", "cancelled"}, "live": {"ended"}}
REFUSED = {"live": "live.room_not_scheduled", "ended": "live.room_not_live"}  # the code when a move is refused


def _running(session: Session, actor: Actor, room_id: int) -> LiveRoom:
    room = lock(session, room_id)
    if room.status == "cancelled":
        raise room_not_found(room_id)
    ensure_runs(actor, room)
    return room


def _move(room: LiveRoom, target: str) -> None:
    if target not in TRANSITIONS.get(room.status, ()):
        raise Conflict(REFUSED[target], f"A {room.status} room cannot become {target}.")
    room.status = target


def start(session: Session, *, actor: Actor, room_id: int) -> LiveRoom:
    room = _running(session, actor, room_id)
    _move(room, "live")
    room.started_at = clock.now()
    session.flush()
    events.record(session, "live.room_started", aggregate="live_room", aggregate_id=room.id, actor=actor)
    return room


def end(session: Session, *, actor: Actor, room_id: int, stream_offset_ms: int | None = None) -> LiveRoom:
    room = _running(session, actor, room_id)
    _move(room, "ended")
    now = _close_open(session, room, stream_offset_ms)
    room.ended_at = now
    session.flush()
    events.record(session, "live.room_ended", aggregate="live_room", aggregate_id=room.id, actor=actor)
    return room


def pin(session: Session, *, actor: Actor, room_id: int, item_id: int | None = None, product_id: int | None = None,
        stream_offset_ms: int | None = None) -> PinSegment:  # fmt: skip
    """Pin a lineup item (by its id, or the first item of a product). Pinning the item already pinned changes
    nothing and answers its open segment."""
    room = _live(session, actor, room_id)
    item = _lineup_item(room, item_id=item_id, product_id=product_id)
    current = _open_segment(session, room.id)
    if current is not None and current.item_id == item.id:
        return current
    ensure_pinnable(session, item)
    return _open(session, actor, room, item, stream_offset_ms)


def pin_next(session: Session, *, actor: Actor, room_id: int, stream_offset_ms: int | None = None) -> PinSegment:
    """The next pinnable item after the pinned one in lineup order (the first when none is pinned), passing over
    items off-shelf or out of stock."""
    room = _live(session, actor, room_id)
    current = _open_segment(session, room.id)
    items = list(room.items)
    after = next((n for n, i in enumerate(items) if current is not None and i.id == current.item_id), -1)
    for item in items[after + 1 :]:
        if refusal(session, item) is None:
            return _open(session, actor, room, item, stream_offset_ms)
    raise Conflict("live.no_next_item", "No item after the pinned one can be pinned (off-shelf or out of stock).")


def unpin(session: Session, *, actor: Actor, room_id: int, stream_offset_ms: int | None = None) -> PinSegment | None:
    room = _live(session, actor, room_id)
    closed = _close_open(session, room, stream_offset_ms, returning=True)
    if closed is not None:
        events.record(session, "live.unpinned", aggregate="live_room", aggregate_id=room.id, actor=actor,
                      segment_id=closed.id)  # fmt: skip
        audit.record(session, action="live_pin.unpinned", object_type="live_pin", object_id=closed.id,
                     brand_id=room.brand_id, before={"item_id": closed.item_id}, after={"item_id": None})  # fmt: skip
    return closed


def ensure_pinnable(session: Session, item: LineupItem) -> None:
    code = refusal(session, item)
    if code == "live.product_off_shelf":
        raise Conflict(code, f"Product {item.product_id} is not on sale.")
    if code == "live.out_of_stock":
        raise Conflict(code, f"Product {item.product_id} is out of stock.")


def refusal(session: Session, item: LineupItem) -> str | None:
    """Why `item` cannot be pinned now (off-shelf, out of stock), or None."""
    product = session.get(Product, item.product_id)
    if product.status != "active":
        return "live.product_off_shelf"
    stock = sa.select(sa.func.coalesce(sa.func.sum(Sku.stock), 0)).where(Sku.product_id == item.product_id,
                                                                           Sku.status == "active")  # fmt: skip
    if item.sku_id is not None:
        stock = stock.where(Sku.id == item.sku_id)
    return "live.out_of_stock" if session.scalar(stock) <= 0 else None


def _live(session: Session, actor: Actor, room_id: int) -> LiveRoom:
    room = _running(session, actor, room_id)
    if room.status != "live":
        raise Conflict("live.room_not_live", f"The room is {room.status}: pins are for a live room.")
    return room


def _lineup_item(room: LiveRoom, *, item_id: int | None, product_id: int | None) -> LineupItem:
    for item in room.items:
        if item.id == item_id or (item_id is None and item.product_id == product_id):
            return item
    what = f"item {item_id}" if item_id is not None else f"product {product_id}"
    raise Invalid("live.not_in_lineup", f"The lineup of room {room.id} has no {what}.",
                  field="item_id" if item_id is not None else "product_id")  # fmt: skip


def _open_segment(session: Session, room_id: int) -> PinSegment | None:
    return session.scalar(sa.select(PinSegment).where(PinSegment.room_id == room_id, PinSegment.ended_at.is_(None)))


def _open(session: Session, actor: Actor, room: LiveRoom, item: LineupItem, offset: int | None) -> PinSegment:
    now = _close_open(session, room, offset)
    segment = PinSegment(room_id=room.id, item_id=item.id, product_id=item.product_id, sku_id=item.sku_id,
                         pinned_by=actor.user_id, started_at=now, start_offset_ms=offset)  # fmt: skip
    session.add(segment)
    session.flush()
    events.record(session, "live.pinned", aggregate="live_room", aggregate_id=room.id, actor=actor,
                  segment_id=segment.id, item_id=item.id, product_id=item.product_id)  # fmt: skip
    return segment


def _close_open(session: Session, room: LiveRoom, offset: int | None, *, returning: bool = False):
    """Close the room's open segment, if any, by one conditional UPDATE; returns the moment it closed (never
    before the last segment's bounds, so a clock stepping back cannot make segments overlap), or with
    `returning` the closed segment."""
    latest = session.scalar(sa.select(sa.func.max(sa.func.coalesce(PinSegment.ended_at, PinSegment.started_at)))
                            .where(PinSegment.room_id == room.id))  # fmt: skip
    now = _not_before(clock.now(), latest)
    closed = session.execute(
        sa.update(PinSegment).where(PinSegment.room_id == room.id, PinSegment.ended_at.is_(None))
        .values(ended_at=now, end_offset_ms=offset).returning(PinSegment.id)
        .execution_options(synchronize_session=False)
    ).scalar()  # fmt: skip
    if returning:
        return None if closed is None else session.get(PinSegment, closed, populate_existing=True)
    return now


def _not_before(now: datetime, latest: datetime | None) -> datetime:
    return now if latest is None or now >= latest else latest
