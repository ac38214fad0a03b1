"""In-room promotions over HTTP: the host announces a flash deal or pins a coupon; viewers claim the room's
coupon while it is live (ADR 0018). The deal itself is bought at the flash sale's purchase route."""

from __future__ import annotations

from api.auth import MallBlueprint, current_actor
from api.coupons.schemas import CouponSchema
from api.extensions import db
from api.idempotency import idempotent
from api.live.routes import RUNNERS, committed
from api.live.schemas import DealCreatedSchema, DealSchema, RoomCouponSchema
from mall.identity.roles import Role
from mall.live import promotions
from workers.flash import gate

blp = MallBlueprint("live_promotions", __name__, description="Live rooms: flash deals and room coupons")


@blp.post("/live/rooms/<int:room_id>/deals")
@blp.auth(*RUNNERS)
@blp.arguments(DealSchema)
@blp.response(201, DealCreatedSchema)
def create_deal(body, room_id):
    """A live flash deal for a lineup item, while the room is live: starts after `countdown_seconds` (10-300), runs
    `duration_minutes` (1-20), with its own quota and per-viewer limit. It is a flash sale: viewers buy it at
    `POST /flash-sales/{sale_id}/items/{flash_item_id}/purchase` (422 live.deal_countdown, live.deal_duration;
    409 live.room_not_live)."""
    deal, _ = promotions.create_deal(db.session, actor=current_actor(), room_id=room_id, gate=gate(), **body)
    committed(room_id, "price", {"deal_id": deal.id, "item_id": deal.item_id, "sale_id": deal.sale_id,
                                  "flash_price": body["flash_price"], "starts_at": deal.starts_at.isoformat()})  # fmt: skip
    return deal


@blp.post("/live/rooms/<int:room_id>/coupons")
@blp.auth(*RUNNERS)
@blp.arguments(RoomCouponSchema)
@blp.response(201, RoomCouponSchema)
def pin_coupon(body, room_id):
    """Pin a coupon template of the room's brand to the room: from now on it is claimed only here, while the
    room is live (the ordinary claim refuses it: 403 coupon.not_claimable)."""
    pinned = promotions.pin_coupon(db.session, actor=current_actor(), room_id=room_id, **body)
    committed(room_id)
    return pinned


@blp.post("/live/rooms/<int:room_id>/coupons/<int:template_id>/claim")
@blp.auth(Role.SHOPPER)
@idempotent("live.coupon_claim")
@blp.response(201, CouponSchema)
def claim_coupon(room_id, template_id):
    """Needs an `Idempotency-Key`. The room's coupon, while the room is live (409 live.room_not_live), within the
    coupon's total quantity and per-shopper limit (409 coupon.sold_out, coupon.limit_reached)."""
    return promotions.claim_coupon(db.session, room_id=room_id, template_id=template_id,
                                   user_id=current_actor().user_id)  # fmt: skip
