"""What viewers read: a room with its lineup and pinned item, and after the show its replay index. SQLAlchemy
Core selects returning plain dicts: a fixed number of statements whatever the lineup's length."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from mall import clock
from mall.catalog.models import Product, Sku
from mall.errors import Conflict
from mall.identity.models import User
from mall.live import promotions
from mall.live.lucky_bag_models import LuckyBag
from mall.live.models import LineupItem, LiveRoom, PinSegment
from mall.live.rooms import room_not_found

ROOM_COLUMNS = (LiveRoom.id, LiveRoom.brand_id, LiveRoom.title, LiveRoom.cover_url, LiveRoom.status,
                LiveRoom.scheduled_start, LiveRoom.scheduled_end, LiveRoom.started_at, LiveRoom.ended_at,
                LiveRoom.stream_ref, LiveRoom.host_user_id, LiveRoom.version, User.display_name.label("host_name"))  # fmt: skip
# The room's latest lucky bag (not cancelled), read with the room: its commitment is published on the room.
BAG_COLUMNS = (LuckyBag.id.label("bag_id"), LuckyBag.status.label("bag_status"), LuckyBag.title.label("bag_title"),
               LuckyBag.prize_type, LuckyBag.winner_count, LuckyBag.opens_at, LuckyBag.closes_at, LuckyBag.seed_hash)  # fmt: skip


def _stock():
    """Units on sale for the item: its SKU's stock, or the sum over its product's active SKUs."""
    of_sku = sa.select(Sku.stock).where(Sku.id == LineupItem.sku_id, Sku.status == "active").scalar_subquery()
    of_product = (sa.select(sa.func.coalesce(sa.func.sum(Sku.stock), 0))
                  .where(Sku.product_id == LineupItem.product_id, Sku.status == "active").scalar_subquery())  # fmt: skip
    normal = sa.select(Sku.price).where(Sku.id == LineupItem.sku_id).scalar_subquery()
    stock = sa.case((LineupItem.sku_id.is_(None), of_product), else_=sa.func.coalesce(of_sku, 0))
    price = sa.case((LineupItem.sku_id.is_(None), Product.price_min), else_=normal)
    return stock.label("stock"), price.label("price")


def room_view(session: Session, room_id: int) -> tuple[int, dict]:
    """(version, the room as viewers see it). The version is read with the room, before its lineup and pin: the
    view is at least as new as its version says, so the cache never files an older view under a newer number."""
    now = clock.now()
    has_deals = promotions.deals_running(LiveRoom.id, now).label("has_deals")
    has_coupons = promotions.coupons_pinned(LiveRoom.id).label("has_coupons")
    bags = aliased(LuckyBag)
    latest_bag = (sa.select(sa.func.max(bags.id)).where(bags.room_id == LiveRoom.id, bags.status != "cancelled")
                  .correlate(LiveRoom).scalar_subquery())  # fmt: skip
    room = session.execute(sa.select(*ROOM_COLUMNS, *BAG_COLUMNS, has_deals, has_coupons)
                           .join(User, User.id == LiveRoom.host_user_id)
                           .outerjoin(LuckyBag, LuckyBag.id == latest_bag)
                           .where(LiveRoom.id == room_id, LiveRoom.status != "cancelled")).mappings().first()  # fmt: skip
    if room is None:
        raise room_not_found(room_id)
    items = [_item(row) for row in session.execute(_lineup(room_id)).mappings()]
    # a room's deals and coupons: a statement each, only for a room that has some (ADR 0018)
    deals = promotions.deals_of(session, room_id, now) if room["has_deals"] else []
    coupons = promotions.coupons_of(session, room_id) if room["has_coupons"] else []
    pinned = None
    if room["status"] == "live":
        segment = session.execute(
            sa.select(PinSegment.id, PinSegment.item_id, PinSegment.started_at, PinSegment.start_offset_ms)
            .where(PinSegment.room_id == room_id, PinSegment.ended_at.is_(None))
        ).mappings().first()  # fmt: skip
        pinned = _pinned(segment, items)
    return room["version"], {**_room(room, pinned, items), "deals": deals, "coupons": coupons}


def _lineup(room_id: int):
    stock, price = _stock()
    return (sa.select(LineupItem.id, LineupItem.product_id, LineupItem.sku_id, LineupItem.position,
                      LineupItem.live_price, LineupItem.live_quota, LineupItem.live_sold, Product.title, Product.images,
                      Product.status, Product.currency, price, stock)
            .join(Product, Product.id == LineupItem.product_id)
            .where(LineupItem.room_id == room_id).order_by(LineupItem.position, LineupItem.id))  # fmt: skip


def _item(row) -> dict:
    live_left = None if row["live_quota"] is None else max(row["live_quota"] - row["live_sold"], 0)
    remaining = row["stock"] if live_left is None else min(row["stock"], live_left)
    return {"id": row["id"], "product_id": row["product_id"], "sku_id": row["sku_id"], "position": row["position"],
            "title": row["title"], "image": (row["images"] or [None])[0], "on_sale": row["status"] == "active",
            "price": row["price"], "live_price": row["live_price"], "currency": row["currency"],
            "live_quota": row["live_quota"], "remaining": remaining}  # fmt: skip


def _pinned(segment, items: list[dict]) -> dict | None:
    if segment is None:
        return None
    item = next((i for i in items if i["id"] == segment["item_id"]), None)
    return {"segment_id": segment["id"], "since": _iso(segment["started_at"]),
            "start_offset_ms": segment["start_offset_ms"], "item": item}  # fmt: skip


def _room(room, pinned: dict | None, items: list[dict]) -> dict:
    return {"id": room["id"], "brand_id": room["brand_id"], "title": room["title"], "cover_url": room["cover_url"],
            "status": room["status"], "scheduled_start": _iso(room["scheduled_start"]),
            "scheduled_end": _iso(room["scheduled_end"]), "started_at": _iso(room["started_at"]),
            "ended_at": _iso(room["ended_at"]), "stream_ref": room["stream_ref"],
            "host": {"id": room["host_user_id"], "name": room["host_name"]}, "pinned": pinned,
            "lineup": items, "lucky_bag": _bag(room)}  # fmt: skip


def _bag(room) -> dict | None:
    """The latest bag's summary; its entrants, seed and winners are on its own read (ADR 0020)."""
    if room["bag_id"] is None:
        return None
    return {"id": room["bag_id"], "status": room["bag_status"], "title": room["bag_title"],
            "prize_type": room["prize_type"], "winner_count": room["winner_count"], "opens_at": _iso(room["opens_at"]),
            "closes_at": _iso(room["closes_at"]), "seed_hash": room["seed_hash"]}  # fmt: skip


def replay(session: Session, room_id: int) -> dict:
    """After the show: each segment in order with its product and stream offsets, for a replay to seek to."""
    room = session.execute(sa.select(LiveRoom.id, LiveRoom.status, LiveRoom.stream_ref)
                           .where(LiveRoom.id == room_id, LiveRoom.status != "cancelled")).mappings().first()  # fmt: skip
    if room is None:
        raise room_not_found(room_id)
    if room["status"] != "ended":
        raise Conflict("live.room_not_ended", "The replay index is there once the room has ended.")
    rows = session.execute(
        sa.select(PinSegment.id, PinSegment.item_id, PinSegment.product_id, PinSegment.sku_id, Product.title,
                  PinSegment.started_at, PinSegment.ended_at, PinSegment.start_offset_ms, PinSegment.end_offset_ms)
        .join(Product, Product.id == PinSegment.product_id)
        .where(PinSegment.room_id == room_id).order_by(PinSegment.started_at, PinSegment.id)
    ).mappings()  # fmt: skip
    segments = [{**row, "started_at": _iso(row["started_at"]), "ended_at": _iso(row["ended_at"])} for row in rows]
    return {"room_id": room_id, "stream_ref": room["stream_ref"], "segments": segments}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
