"""In-room promotions (ADR 0018): a live flash deal, sold through the flash sale's own admission, and a room
coupon, claimable only through its room while the room is live.

Both are room changes viewers see, so both start with the room's version bump (`rooms.lock`): the route's
`publish` after the commit re-renders the viewer cache."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.catalog.models import Sku
from mall.errors import Conflict, Invalid, NotFound
from mall.identity.roles import Actor
from mall.live import rooms
from mall.live.models import LineupItem, LiveFlashDeal, LiveRoom, RoomCoupon
from mall.promotions.coupons import services as coupons
from mall.promotions.coupons.models import ROOM_ONLY, Coupon, CouponTemplate
from mall.promotions.flash_sale import services as flash_sales
from mall.promotions.flash_sale.admission import Gate
from mall.promotions.flash_sale.models import FlashItem

COUNTDOWN_SECONDS = (10, 300)  # from the announcement to the deal's start
DURATION_MINUTES = (1, 20)  # how long it runs
CLAIM_SOURCE = "live"


def _ensure_live(room: LiveRoom, what: str) -> None:
    if room.status != "live":
        raise Conflict("live.room_not_live", f"{what} only while the room is live (it is {room.status}).")


def _item(room: LiveRoom, item_id: int) -> LineupItem:
    item = next((i for i in room.items if i.id == item_id), None)
    if item is None:
        raise NotFound("live.item_not_found", f"Lineup item {item_id} is not in room {room.id}.")
    return item


def create_deal(session: Session, *, actor: Actor, room_id: int, item_id: int, flash_price: int, quota: int,
                countdown_seconds: int, duration_minutes: int, per_viewer_limit: int = 1, sku_id: int | None = None,
                gate: Gate | None = None) -> tuple[LiveFlashDeal, object]:  # fmt: skip
    """A flash deal for a lineup item, announced now, starting after the countdown and running for the duration:
    a flash sale of the room's brand (its own quota and per-viewer limit, bought through the flash purchase and its
    admission gate) linked to the room. The room's host or its brand's admin, while the room is live."""
    if not COUNTDOWN_SECONDS[0] <= countdown_seconds <= COUNTDOWN_SECONDS[1]:
        raise Invalid("live.deal_countdown", "The countdown is 10 to 300 seconds.", field="countdown_seconds")
    if not DURATION_MINUTES[0] <= duration_minutes <= DURATION_MINUTES[1]:
        raise Invalid("live.deal_duration", "A live deal runs 1 to 20 minutes.", field="duration_minutes")
    room = rooms.lock(session, room_id)
    rooms.ensure_runs(actor, room)
    _ensure_live(room, "Flash deals are announced")
    item = _item(room, item_id)
    if item.sku_id is not None and sku_id not in (None, item.sku_id):
        raise Invalid("live.sku_unknown", f"Lineup item {item_id} is SKU {item.sku_id}.", field="sku_id")
    sku_id = item.sku_id or sku_id
    if sku_id is None:
        raise Invalid("live.deal_sku_required", "Name the SKU of the product the deal sells.", field="sku_id")
    sku = session.get(Sku, sku_id)
    if sku is None or sku.product_id != item.product_id:
        raise Invalid("live.sku_unknown", f"SKU {sku_id} is not a SKU of product {item.product_id}.", field="sku_id")
    starts_at = clock.now() + timedelta(seconds=countdown_seconds)
    ends_at = starts_at + timedelta(minutes=duration_minutes)
    sale = flash_sales.create(
        session, actor=actor, brand_id=room.brand_id, name=f"Live: {room.title}"[:100], starts_at=starts_at,
        ends_at=ends_at, gate=gate,
        items=[{"sku_id": sku_id, "flash_price": flash_price, "quota": quota, "per_shopper_limit": per_viewer_limit}],
    )  # fmt: skip
    deal = LiveFlashDeal(room_id=room.id, item_id=item.id, sale_id=sale.id, flash_item_id=sale.items[0].id,
                         created_by=actor.user_id, starts_at=starts_at, ends_at=ends_at)  # fmt: skip
    session.add(deal)
    session.flush()
    events.record(session, "live.deal_announced", aggregate="live_room", aggregate_id=room.id, actor=actor,
                  deal_id=deal.id, sale_id=sale.id)  # fmt: skip
    return deal, sale


def pin_coupon(session: Session, *, actor: Actor, room_id: int, template_id: int) -> RoomCoupon:
    """Attach a coupon template of the room's brand to the room (its host or brand admin, before or during the
    show). From then on it is claimed only through the room, while the room is live."""
    room = rooms.lock(session, room_id)
    rooms.ensure_runs(actor, room)
    if room.status not in rooms.OPEN_STATUSES:
        raise Conflict("live.room_closed", f"The room is {room.status}; it cannot change.")
    template = coupons.get_template(session, template_id)
    if template.brand_id != room.brand_id:
        raise Invalid("live.coupon_other_brand", "A room coupon is a coupon of the room's brand.", field="template_id")
    pinned = session.get(RoomCoupon, template_id)
    if pinned is not None:
        if pinned.room_id != room.id:
            raise Conflict("live.coupon_in_other_room", "This coupon is pinned to another room.")
        return pinned
    if template.auto_grant is not None:
        raise Conflict("live.coupon_not_claimable", "A coupon granted automatically cannot be pinned to a room.")
    template.auto_grant = ROOM_ONLY
    pinned = RoomCoupon(template_id=template_id, room_id=room.id, pinned_by=actor.user_id, pinned_at=clock.now())
    session.add(pinned)
    session.flush()
    events.record(session, "live.coupon_pinned", aggregate="live_room", aggregate_id=room.id, actor=actor,
                  template_id=template_id)  # fmt: skip
    return pinned


def claim_coupon(session: Session, *, room_id: int, template_id: int, user_id: int) -> Coupon:
    """A viewer claims the room's coupon: only this room's, only while it is live; then the coupons capability's
    own issue with its limits (total quantity, per-shopper limit, audience, window)."""
    room = session.get(LiveRoom, room_id)
    if room is None or room.status == "cancelled":
        raise rooms.room_not_found(room_id)
    pinned = session.get(RoomCoupon, template_id)
    if pinned is None or pinned.room_id != room_id:
        raise NotFound("live.coupon_not_in_room", f"Coupon {template_id} is not pinned to room {room_id}.")
    _ensure_live(room, "Room coupons are claimed")
    template = coupons.get_template(session, template_id)
    return coupons.issue(session, template=template, user_id=user_id, source=CLAIM_SOURCE)


def deals_running(room_id, now):
    """A SQL condition: the room has a deal not over yet (read with the room's row by the viewer's render)."""
    return sa.exists().where(LiveFlashDeal.room_id == room_id, LiveFlashDeal.ends_at > now)


def coupons_pinned(room_id):
    return sa.exists().where(RoomCoupon.room_id == room_id)


def deals_of(session: Session, room_id: int, now) -> list[dict]:
    """The room's deals not over yet, soonest first, as viewers see them."""
    rows = session.execute(
        sa.select(LiveFlashDeal.id, LiveFlashDeal.item_id, LiveFlashDeal.sale_id, LiveFlashDeal.flash_item_id,
                  LiveFlashDeal.starts_at, LiveFlashDeal.ends_at, FlashItem.sku_id, FlashItem.flash_price,
                  FlashItem.quota, FlashItem.per_shopper_limit)
        .join(FlashItem, FlashItem.id == LiveFlashDeal.flash_item_id)
        .where(LiveFlashDeal.room_id == room_id, LiveFlashDeal.ends_at > now).order_by(LiveFlashDeal.starts_at)
    ).mappings()  # fmt: skip
    return [{**d, "starts_at": d["starts_at"].isoformat(), "ends_at": d["ends_at"].isoformat()} for d in rows]


def coupons_of(session: Session, room_id: int) -> list[dict]:
    """The coupon templates pinned to the room, as viewers see them."""
    rows = session.execute(
        sa.select(CouponTemplate.id, CouponTemplate.name, CouponTemplate.value_type, CouponTemplate.amount,
                  CouponTemplate.threshold, CouponTemplate.percent_bp, CouponTemplate.currency)
        .join(RoomCoupon, RoomCoupon.template_id == CouponTemplate.id)
        .where(RoomCoupon.room_id == room_id).order_by(RoomCoupon.pinned_at, CouponTemplate.id)
    ).mappings()  # fmt: skip
    return [dict(row) for row in rows]
