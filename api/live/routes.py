"""Live rooms: brand admins schedule rooms and their lineup, hosts run the show, viewers poll the room."""

from __future__ import annotations

from functools import cache

from flask import Response, current_app, request

from api.auth import MallBlueprint, acting_brand, current_actor
from api.extensions import db
from api.live.fast_path import RENDER, FastViews
from api.live.schemas import (
    LineupItemPatchSchema,
    LineupItemSchema,
    OffsetSchema,
    PinSchema,
    PinSegmentSchema,
    ReplaySchema,
    RoomPatchSchema,
    RoomsArgs,
    RoomSchema,
    RoomViewSchema,
)
from api.tx import commit, read_only
from mall.identity.roles import MERCHANT, Role
from mall.live import announce, pinning, queries, rooms
from mall.live.cache import RoomCache
from mall.live.sync import LineupSync, NoSync
from workers import runtime
from workers.connection import get_redis

blp = MallBlueprint("live", __name__, description="Live rooms, lineups and pins")

RUNNERS = (Role.HOST, Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)


@cache
def _cache_for(url_key: str) -> RoomCache:
    return RoomCache(get_redis(runtime.settings()))


def room_cache() -> RoomCache:
    return _cache_for(runtime.settings().redis_url or "embedded")


@blp.record_once
def _answer_polls_early(state) -> None:
    """Viewers' polls of a cached room are answered in front of Flask (api/live/fast_path.py)."""
    state.app.wsgi_app = FastViews(state.app, state.app.wsgi_app, prefix=state.url_prefix or "", cache=room_cache)


def lineup_sync() -> LineupSync:
    """The adapter an app was given (`app.extensions["mall.live_sync"]`); none calls no one."""
    return current_app.extensions.get("mall.live_sync") or NoSync()


def committed(room_id: int, kind: str | None = None, payload: dict | None = None) -> None:
    """Commit, then the room's new view for the next poll (and to the external platform), then (for a change
    viewers see at once) the announcement to the room's streams, at the version just rendered."""
    commit()
    version = room_cache().publish(db.session, room_id, lineup_sync())
    if kind is not None:
        announce.room_changed(room_id, kind, payload, version=version)


def _pinned(segment) -> dict:
    return {"segment_id": segment.id, "item_id": segment.item_id, "product_id": segment.product_id,
            "sku_id": segment.sku_id, "started_at": segment.started_at.isoformat()}  # fmt: skip


# Brand admins: rooms and their lineup ------------------------------------------------------------------------


@blp.post("/admin/live/rooms")
@blp.auth(*MERCHANT)
@blp.arguments(RoomSchema)
@blp.response(201, RoomSchema)
def create_room(body):
    """Schedule a room for a host (a user with the `host` role), optionally with its lineup."""
    brand_id = acting_brand(body.pop("brand_id"), code="live.brand_required")
    room = rooms.create_room(db.session, actor=current_actor(), brand_id=brand_id, lineup=body.pop("items"), **body)
    committed(room.id)
    return room


@blp.get("/admin/live/rooms")
@blp.auth(*RUNNERS)
@blp.arguments(RoomsArgs, location="query")
@blp.response(200, RoomSchema(many=True))
def list_rooms(args):
    """A host's own rooms; a brand admin's brand's rooms (a platform admin may name `brand_id`)."""
    actor = current_actor()
    brand_id = args["brand_id"] or (actor.brand_id if actor.role == Role.BRAND_ADMIN else None)
    return rooms.list_rooms(db.session, actor=actor, brand_id=brand_id)


@blp.get("/admin/live/rooms/<int:room_id>")
@blp.auth(*MERCHANT)
@blp.response(200, RoomSchema)
def get_room_admin(room_id):
    return rooms.managed_room(db.session, actor=current_actor(), room_id=room_id)


@blp.patch("/admin/live/rooms/<int:room_id>")
@blp.auth(*MERCHANT)
@blp.arguments(RoomPatchSchema)
@blp.response(200, RoomSchema)
def update_room(body, room_id):
    room = rooms.update_room(db.session, actor=current_actor(), room_id=room_id, **body)
    committed(room_id)
    return room


@blp.post("/admin/live/rooms/<int:room_id>/cancel")
@blp.auth(*MERCHANT)
@blp.response(200, RoomSchema)
def cancel_room(room_id):
    """A scheduled room only (a live one is ended). Viewers no longer find it."""
    room = rooms.cancel_room(db.session, actor=current_actor(), room_id=room_id)
    commit()
    room_cache().forget(room_id)
    announce.room_changed(room_id, "status", {"status": "cancelled"}, version=room.version)
    return room


@blp.post("/admin/live/rooms/<int:room_id>/lineup")
@blp.auth(*MERCHANT)
@blp.arguments(LineupItemSchema)
@blp.response(201, LineupItemSchema)
def add_item(body, room_id):
    item = rooms.add_item(db.session, actor=current_actor(), room_id=room_id, **body)
    committed(room_id)
    return item


@blp.patch("/admin/live/rooms/<int:room_id>/lineup/<int:item_id>")
@blp.auth(*MERCHANT)
@blp.arguments(LineupItemPatchSchema)
@blp.response(200, LineupItemSchema)
def update_item(body, room_id, item_id):
    item = rooms.update_item(db.session, actor=current_actor(), room_id=room_id, item_id=item_id, **body)
    price = {"item_id": item.id, "live_price": item.live_price, "currency": item.currency}
    committed(room_id, *(("price", price) if "live_price" in body else ()))  # viewers see a price change at once
    return item


@blp.delete("/admin/live/rooms/<int:room_id>/lineup/<int:item_id>")
@blp.auth(*MERCHANT)
@blp.response(204)
def remove_item(room_id, item_id):
    """An item never pinned (a pinned one stays, for the replay)."""
    rooms.remove_item(db.session, actor=current_actor(), room_id=room_id, item_id=item_id)
    committed(room_id)


# The host (or the brand's admin) runs the show -------------------------------------------------------------


@blp.post("/live/rooms/<int:room_id>/start")
@blp.auth(*RUNNERS)
@blp.response(200, RoomSchema)
def start(room_id):
    room = pinning.start(db.session, actor=current_actor(), room_id=room_id)
    committed(room_id, "status", {"status": "live"})
    return room


@blp.post("/live/rooms/<int:room_id>/end")
@blp.auth(*RUNNERS)
@blp.arguments(OffsetSchema, location="query")
@blp.response(200, RoomSchema)
def end(body, room_id):
    """End the show; the pinned item's segment closes (at `stream_offset_ms` when the player reports one)."""
    room = pinning.end(db.session, actor=current_actor(), room_id=room_id, **body)
    committed(room_id, "status", {"status": "ended"})
    return room


@blp.post("/live/rooms/<int:room_id>/pin")
@blp.auth(*RUNNERS)
@blp.arguments(PinSchema)
@blp.arguments(OffsetSchema, location="query")
@blp.response(200, PinSegmentSchema)
def pin(body, offset, room_id):
    """Pin a lineup item (closing the pinned one's segment): 422 live.not_in_lineup, 409 live.product_off_shelf,
    live.out_of_stock or live.room_not_live. Pinning the item already pinned answers its segment.
    `stream_offset_ms` (query): where the player is, for the replay to seek to; also every other verb's."""
    segment = pinning.pin(db.session, actor=current_actor(), room_id=room_id, **body, **offset)
    pinned = _pinned(segment)
    committed(room_id, "pin", pinned)
    return segment


@blp.post("/live/rooms/<int:room_id>/pin/next")
@blp.auth(*RUNNERS)
@blp.arguments(OffsetSchema, location="query")
@blp.response(200, PinSegmentSchema)
def pin_next(body, room_id):
    """The next item in lineup order that can be pinned (409 live.no_next_item when none)."""
    segment = pinning.pin_next(db.session, actor=current_actor(), room_id=room_id, **body)
    pinned = _pinned(segment)
    committed(room_id, "pin", pinned)
    return segment


@blp.post("/live/rooms/<int:room_id>/unpin")
@blp.auth(*RUNNERS)
@blp.arguments(OffsetSchema, location="query")
@blp.response(204)
def unpin(body, room_id):
    closed = pinning.unpin(db.session, actor=current_actor(), room_id=room_id, **body)
    unpinned = None if closed is None else {"segment_id": closed.id, "product_id": closed.product_id}
    committed(room_id, "unpin" if closed is not None else None, unpinned)


# Viewers ---------------------------------------------------------------------------------------------------


@blp.get("/live/rooms/<int:room_id>")
@blp.response(200, RoomViewSchema, description="The room; `ETag` is a digest of the body")
@blp.alt_response(304, description="Unchanged since the `If-None-Match` ETag")
def view_room(room_id):
    """What every viewer polls: status, pinned item with live price and what is left, the lineup. Send the
    last `ETag` as `If-None-Match`: 304 while nothing changed. Answered from one cache read; the remaining
    stock may lag by up to 5 seconds."""
    held = None if request.environ.get(RENDER) else room_cache().get(room_id)  # the fast path asked already
    if held is None:
        read_only()
        held = room_cache().fill(db.session, room_id)
    etag, body = held
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(body, status=200, headers=headers, content_type="application/json")


@blp.get("/live/rooms/<int:room_id>/replay")
@blp.response(200, ReplaySchema)
def replay(room_id):
    """After the room has ended (409 live.room_not_ended before): each pin segment in order with its product
    and stream offsets, for a replay to seek to."""
    read_only()
    return queries.replay(db.session, room_id)
