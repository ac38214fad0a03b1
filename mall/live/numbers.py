"""A live room's numbers, per room and per pin segment ("what sold while X was on screen"), computed on read
from order lines, the refund ledger, visits and cart adds (ADR 0017): nothing is counted in a counter that could
drift, and a payment shows in the next read.

- A line belongs to the segment named in its live source: the one pinned when the shopper opened the link.
  Lines whose link was opened with nothing pinned count in the room's totals only.
- Only paid orders' lines with a touch count (direct or indirect): a line placed after the brand's indirect
  window keeps its room id but is not the room's sale.
- paid_gmv: what those lines paid; refunds: their `refund_lines` (shipping refunds are not a line's); net_gmv =
  paid_gmv - refunds; direct_gmv + indirect_gmv = net_gmv. orders: distinct orders.
- viewers: distinct shoppers who opened the room (per segment: who opened it while the segment was pinned);
  cart_adds: adds to the cart with the room's source (per segment: the source's segment).
- conversion: orders / viewers (0 without viewers)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.catalog.models import Product
from mall.identity.roles import Actor
from mall.live.models import LineupItem, LiveRoom, PinSegment
from mall.live.rooms import ensure_runs, room_not_found
from mall.live.tracking import LiveCartAdd, RoomVisit
from mall.orders.models import Order, OrderLine, RefundLine

ZERO = {"viewers": 0, "cart_adds": 0, "orders": 0, "paid_gmv": 0, "refunds": 0, "net_gmv": 0, "conversion": 0.0,
        "direct_gmv": 0, "indirect_gmv": 0}  # fmt: skip


def room_numbers(session: Session, *, actor: Actor, room_id: int, default_currency: str = "CNY") -> dict:
    """The room's host or its brand's admin (403 live.not_your_room otherwise); a cancelled room too."""
    room = session.get(LiveRoom, room_id)
    if room is None:
        raise room_not_found(room_id)
    ensure_runs(actor, room)
    now = clock.now()
    segments = session.execute(
        sa.select(PinSegment.id, PinSegment.product_id, Product.title, PinSegment.started_at, PinSegment.ended_at)
        .join(Product, Product.id == PinSegment.product_id)
        .where(PinSegment.room_id == room_id).order_by(PinSegment.started_at, PinSegment.id)
    ).all()  # fmt: skip
    totals = _sales(session, room_id, by_segment=False).get(None, {})
    by_segment = _sales(session, room_id, by_segment=True)
    adds = dict(session.execute(
        sa.select(LiveCartAdd.segment_id, sa.func.count()).where(LiveCartAdd.room_id == room_id)
        .group_by(LiveCartAdd.segment_id)
    ).all())  # fmt: skip
    viewers = dict(session.execute(_SEGMENT_VIEWERS, {"room_id": room_id, "now": now}).all())
    return {
        "room_id": room_id,
        "currency": totals.get("currency") or _currency(session, room_id) or default_currency,
        "totals": _numbers(totals, viewers=_viewers(session, room_id), cart_adds=sum(adds.values())),
        "segments": [
            {"segment_id": s.id, "product_id": s.product_id, "title": s.title, "started_at": s.started_at,
             "ended_at": s.ended_at,
             **_numbers(by_segment.get(s.id, {}), viewers=viewers.get(s.id, 0), cart_adds=adds.get(s.id, 0))}
            for s in segments
        ],
    }  # fmt: skip


def _sales(session: Session, room_id: int, *, by_segment: bool) -> dict:
    """Paid, touched lines of the room: orders, paid, refunded, and net by touch; per segment or in all."""
    refunded = (
        sa.select(sa.func.coalesce(sa.func.sum(RefundLine.amount), 0))
        .where(RefundLine.order_line_id == OrderLine.id).scalar_subquery()
    )  # fmt: skip
    lines = (
        sa.select(OrderLine.live_segment_id, OrderLine.order_id, OrderLine.payable, OrderLine.live_touch,
                  Order.currency, refunded.label("refunded"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.live_room_id == room_id, OrderLine.live_touch.is_not(None), Order.paid_at.is_not(None))
    ).subquery()  # fmt: skip
    net = lines.c.payable - lines.c.refunded
    key = lines.c.live_segment_id if by_segment else sa.literal(None)
    query = sa.select(
        key.label("segment_id"), sa.func.count(sa.distinct(lines.c.order_id)), sa.func.sum(lines.c.payable),
        sa.func.sum(lines.c.refunded), sa.func.sum(sa.case((lines.c.live_touch == "direct", net), else_=0)),
        sa.func.sum(sa.case((lines.c.live_touch == "indirect", net), else_=0)), sa.func.max(lines.c.currency),
    )  # fmt: skip
    if by_segment:
        query = query.where(lines.c.live_segment_id.is_not(None)).group_by(lines.c.live_segment_id)
    found = {}
    for segment_id, orders, paid, refunds, direct, indirect, currency in session.execute(query):
        if orders:
            found[segment_id] = {"orders": orders, "paid_gmv": int(paid or 0), "refunds": int(refunds or 0),
                                 "direct_gmv": int(direct or 0), "indirect_gmv": int(indirect or 0),
                                 "currency": currency}  # fmt: skip
    return found


def _viewers(session: Session, room_id: int) -> int:
    query = sa.select(sa.func.count(sa.distinct(RoomVisit.user_id))).where(RoomVisit.room_id == room_id)
    return session.scalar(query) or 0


# Distinct visitors per segment, who opened the room while it was pinned (one statement for all segments).
_SEGMENT_VIEWERS = (
    sa.select(PinSegment.id, sa.func.count(sa.distinct(RoomVisit.user_id)))
    .join(RoomVisit, sa.and_(
        RoomVisit.room_id == PinSegment.room_id, RoomVisit.visited_at >= PinSegment.started_at,
        RoomVisit.visited_at < sa.func.coalesce(PinSegment.ended_at, sa.bindparam("now", type_=PinSegment.started_at.type))))
    .where(PinSegment.room_id == sa.bindparam("room_id")).group_by(PinSegment.id)
)  # fmt: skip


def _numbers(sales: dict, *, viewers: int, cart_adds: int) -> dict:
    found = {**ZERO, **{k: v for k, v in sales.items() if k in ZERO}, "viewers": viewers, "cart_adds": cart_adds}
    found["net_gmv"] = found["paid_gmv"] - found["refunds"]
    found["conversion"] = round(found["orders"] / viewers, 4) if viewers else 0.0
    return found


def _currency(session: Session, room_id: int) -> str | None:
    """A room without sales: its lineup's currency."""
    return session.scalar(
        sa.select(Product.currency).join(LineupItem, LineupItem.product_id == Product.id)
        .where(LineupItem.room_id == room_id).order_by(LineupItem.position, LineupItem.id).limit(1)
    )  # fmt: skip
