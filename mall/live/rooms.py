"""Brand admins' room use cases: schedule, edit, cancel a room and manage its lineup.

Every change a viewer can see takes the room's row first (`lock`: one UPDATE bumping its version), so changes
to one room queue behind each other and the viewer cache can tell an older render from a newer one."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.catalog.models import Product, Sku
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity.models import User
from mall.identity.roles import Actor, Role
from mall.live.models import LineupItem, LiveLink, LiveRoom, PinSegment

ROOM_FIELDS = ("title", "cover_url", "host_user_id", "scheduled_start", "scheduled_end", "stream_ref")
ITEM_FIELDS = ("position", "live_price", "live_quota")
OPEN_STATUSES = ("scheduled", "live")


def room_not_found(room_id: int) -> NotFound:
    return NotFound("live.room_not_found", f"Live room {room_id} not found.")


def lock(session: Session, room_id: int) -> LiveRoom:
    """The room, its row held until the transaction ends and its version bumped. The UPDATE is the first
    statement of the change: on SQLite too it takes the write lock before anything is read."""
    bumped = session.execute(
        sa.update(LiveRoom).where(LiveRoom.id == room_id)
        .values(version=LiveRoom.version + 1, updated_at=clock.now()).returning(LiveRoom.id)
    ).first()  # fmt: skip
    if bumped is None:
        raise room_not_found(room_id)
    return session.get(LiveRoom, room_id, populate_existing=True)


def ensure_manages(actor: Actor, room: LiveRoom) -> None:
    ensure_manages_brand(actor, room.brand_id)


def ensure_manages_brand(actor: Actor, brand_id: int) -> None:
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("live.other_brand", "You can only manage your own brand's live rooms.")


def ensure_runs(actor: Actor, room: LiveRoom) -> None:
    """The room's own host, or an admin of its brand."""
    if actor.role == Role.HOST and actor.user_id == room.host_user_id:
        return
    if not actor.can_manage_brand(room.brand_id):
        raise Forbidden("live.not_your_room", "Only the room's host or its brand's admin runs this room.")


def managed_room(session: Session, *, actor: Actor, room_id: int, for_change: bool = False) -> LiveRoom:
    room = lock(session, room_id) if for_change else session.get(LiveRoom, room_id)
    if room is None:
        raise room_not_found(room_id)
    ensure_manages(actor, room)
    return room


def create_room(session: Session, *, actor: Actor, brand_id: int, title: str, host_user_id: int,
                scheduled_start: datetime, scheduled_end: datetime, cover_url: str = "",
                stream_ref: str | None = None, lineup: list[dict] = ()) -> LiveRoom:  # fmt: skip
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("live.other_brand", "You can only schedule your own brand's live rooms.")
    _check_host(session, host_user_id)
    _check_window(scheduled_start, scheduled_end)
    room = LiveRoom(brand_id=brand_id, title=title, host_user_id=host_user_id, scheduled_start=scheduled_start,
                    scheduled_end=scheduled_end, cover_url=cover_url, stream_ref=stream_ref)  # fmt: skip
    session.add(room)
    session.flush()
    for position, item in enumerate(lineup):
        _add_item(session, room, **{"position": position, **item})
    events.record(session, "live.room_scheduled", aggregate="live_room", aggregate_id=room.id, actor=actor)
    return room


def update_room(session: Session, *, actor: Actor, room_id: int, **changes) -> LiveRoom:
    room = managed_room(session, actor=actor, room_id=room_id, for_change=True)
    _ensure_open(room)
    if "host_user_id" in changes and changes["host_user_id"] != room.host_user_id:
        _check_host(session, changes["host_user_id"])
    start, end = changes.get("scheduled_start", room.scheduled_start), changes.get("scheduled_end", room.scheduled_end)
    _check_window(start, end)
    for name in ROOM_FIELDS:
        if name in changes:
            setattr(room, name, changes[name])
    session.flush()
    events.record(session, "live.room_updated", aggregate="live_room", aggregate_id=room.id, actor=actor,
                  fields=sorted(changes))  # fmt: skip
    return room


def cancel_room(session: Session, *, actor: Actor, room_id: int) -> LiveRoom:
    room = managed_room(session, actor=actor, room_id=room_id, for_change=True)
    if room.status != "scheduled":
        raise Conflict("live.not_cancellable", f"A {room.status} room cannot be cancelled (a live room is ended).")
    room.status = "cancelled"
    session.flush()
    events.record(session, "live.room_cancelled", aggregate="live_room", aggregate_id=room.id, actor=actor)
    return room


def list_rooms(session: Session, *, actor: Actor, brand_id: int | None, limit: int = 100) -> list[LiveRoom]:
    """A host's own rooms; a brand's rooms for its admin (a platform admin names the brand, or sees all)."""
    query = sa.select(LiveRoom).order_by(LiveRoom.scheduled_start.desc(), LiveRoom.id.desc()).limit(limit)
    if actor.role == Role.HOST:
        query = query.where(LiveRoom.host_user_id == actor.user_id)
    elif brand_id is not None:
        if not actor.can_manage_brand(brand_id):
            raise Forbidden("live.other_brand", "You can only list your own brand's live rooms.")
        query = query.where(LiveRoom.brand_id == brand_id)
    elif actor.role != Role.PLATFORM_ADMIN:
        raise Forbidden("live.other_brand", "You can only list your own brand's live rooms.")
    return list(session.scalars(query))


def add_item(session: Session, *, actor: Actor, room_id: int, **fields) -> LineupItem:
    room = managed_room(session, actor=actor, room_id=room_id, for_change=True)
    _ensure_open(room)
    if fields.get("position") is None:
        fields["position"] = max((i.position for i in room.items), default=-1) + 1
    item = _add_item(session, room, **fields)
    events.record(session, "live.lineup_changed", aggregate="live_room", aggregate_id=room.id, actor=actor,
                  added=item.id)  # fmt: skip
    return item


def update_item(session: Session, *, actor: Actor, room_id: int, item_id: int, **changes) -> LineupItem:
    room = managed_room(session, actor=actor, room_id=room_id, for_change=True)
    _ensure_open(room)
    item = _room_item(room, item_id)
    merged = {name: changes.get(name, getattr(item, name)) for name in ITEM_FIELDS}
    product, sku = _product_and_sku(session, room, item.product_id, item.sku_id)
    item.currency = _check_price(product, sku, merged["live_price"])
    for name in ITEM_FIELDS:
        setattr(item, name, merged[name])
    session.flush()
    events.record(session, "live.lineup_changed", aggregate="live_room", aggregate_id=room.id, actor=actor,
                  updated=item.id)  # fmt: skip
    return item


def remove_item(session: Session, *, actor: Actor, room_id: int, item_id: int) -> None:
    """Only an item never pinned nor linked: a pinned one is part of the room's replay and attribution, a linked
    one is what its links open."""
    room = managed_room(session, actor=actor, room_id=room_id, for_change=True)
    _ensure_open(room)
    item = _room_item(room, item_id)
    if session.scalar(sa.select(PinSegment.id).where(PinSegment.item_id == item.id).limit(1)) is not None:
        raise Conflict("live.item_was_pinned", "This item has been pinned; it stays in the lineup for the replay.")
    if session.scalar(sa.select(LiveLink.id).where(LiveLink.item_id == item.id).limit(1)) is not None:
        raise Conflict("live.item_has_links", "This item has cart links; it stays in the lineup for them.")
    session.delete(item)
    session.flush()
    session.expire(room, ["items"])
    events.record(session, "live.lineup_changed", aggregate="live_room", aggregate_id=room.id, actor=actor,
                  removed=item_id)  # fmt: skip


def _room_item(room: LiveRoom, item_id: int) -> LineupItem:
    item = next((i for i in room.items if i.id == item_id), None)
    if item is None:
        raise NotFound("live.item_not_found", f"Lineup item {item_id} is not in room {room.id}.")
    return item


def _add_item(session: Session, room: LiveRoom, *, product_id: int, sku_id: int | None = None, position: int = 0,
              live_price: int | None = None, live_quota: int | None = None) -> LineupItem:  # fmt: skip
    product, sku = _product_and_sku(session, room, product_id, sku_id)
    if any(i.product_id == product_id and i.sku_id == sku_id for i in room.items):
        raise Conflict("live.item_duplicate", "This product (and SKU) is in the lineup already.")
    item = LineupItem(product_id=product_id, sku_id=sku_id, position=position, live_price=live_price,
                      currency=_check_price(product, sku, live_price), live_quota=live_quota)  # fmt: skip
    room.items.append(item)
    session.flush()
    return item


def _product_and_sku(session: Session, room: LiveRoom, product_id: int, sku_id: int | None):
    product = session.get(Product, product_id)
    if product is None or product.brand_id != room.brand_id:
        raise Invalid("live.product_unknown", f"Product {product_id} is not this brand's.", field="product_id")
    sku = None
    if sku_id is not None:
        sku = session.get(Sku, sku_id)
        if sku is None or sku.product_id != product_id:
            raise Invalid("live.sku_unknown", f"SKU {sku_id} is not a SKU of product {product_id}.", field="sku_id")
    return product, sku


def _check_price(product: Product, sku: Sku | None, live_price: int | None) -> str | None:
    """The live price's currency (the product's); a live price never above the normal price (the SKU's, or the
    product's lowest when the item stands for all its SKUs)."""
    if live_price is None:
        return None
    normal = sku.price if sku is not None else product.price_min
    if live_price > normal:
        raise Invalid("live.price_above_normal", "A live price is at most the normal price.", field="live_price")
    return product.currency


def _ensure_open(room: LiveRoom) -> None:
    if room.status not in OPEN_STATUSES:
        raise Conflict("live.room_closed", f"The room is {room.status}; it cannot change.")


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise Invalid("live.window", "The room must end after it starts.", field="scheduled_end")


def _check_host(session: Session, user_id: int) -> None:
    user = session.get(User, user_id)
    if user is None or user.role != Role.HOST or user.status != "active":
        raise Invalid("live.host_invalid", f"User {user_id} is not an active host.", field="host_user_id")
