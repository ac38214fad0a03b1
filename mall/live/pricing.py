"""Live prices in the pricing pipeline, and the live quota they count against (ADR 0018).

A lineup item's live price applies to a cart line only while the room is live and only when the line's source
is LIVE and names this room. It is a promotion price, set in the pipeline's promotion step like a bundle's: the
line keeps its item price and takes the difference as a discount `live:{item_id}` (so the order line itself
says which item's quota it took, and a cancellation can give it back), and its `price_source` becomes `live`,
which a coupon template's `combinable_with` must name. Never a flash or group-buy line (priced by their
promotion, whatever live source they carry under `origin`), never a bundle's part, never a line some other
promotion priced already.

The quota: a quote prices a line at the live price only if its whole quantity fits in what is left; beyond it
the line is priced normally (not refused). A placement's quote (`PricingContext.placing`, in the placement's
transaction) takes the units by one conditional UPDATE per item (`live_sold + n <= live_quota`); a line whose
units a concurrent placement took since the read is priced normally too, so the live quota is never oversold.
A client sending the quote's `expected_payable` gets 409 `checkout.price_changed` then, as for any price change.
A cancellation (by the shopper or the unpaid timeout) gives the units back, once: it reacts to `order.cancelled`,
which a cancellation records exactly once."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.attribution import SourceType
from mall.checkout.pricing import Allocation, Discount, PricedLine, PricingContext, Quote
from mall.live.models import LineupItem, LiveRoom
from mall.orders.models import OrderLine

PRICE_SOURCE = "live"
PREFIX = "live:"
LABEL = "Live price"

# The live-priced lineup items of the quote's rooms that are live now: one statement, whatever the lines.
_LIVE_ITEMS = (
    sa.select(LineupItem.id, LineupItem.room_id, LineupItem.product_id, LineupItem.sku_id, LineupItem.live_price,
              LineupItem.currency, LineupItem.live_quota, LineupItem.live_sold)
    .join(LiveRoom, LiveRoom.id == LineupItem.room_id)
    .where(LineupItem.room_id.in_(sa.bindparam("rooms", expanding=True)), LiveRoom.status == "live",
           LineupItem.live_price.is_not(None))
)  # fmt: skip


def _room_of(line: PricedLine, ctx: PricingContext) -> int | None:
    """The room a line may take a live price from: its own source is LIVE (not a promotion's line carrying a live
    origin), it is not a bundle's part, and no promotion priced it."""
    source = line.source or {}
    if source.get("type") != SourceType.LIVE or line.bundle_id is not None or line.key in ctx.promotion_prices:
        return None
    if line.price_source != "item":
        return None
    try:
        return int(source["room_id"])
    except (KeyError, TypeError, ValueError):
        return None


def apply_live_prices(quote: Quote, ctx: PricingContext) -> None:
    """The promotion step's live prices. Reads nothing unless some line has a LIVE source; in a placement's quote,
    takes the units from the live quotas (a line whose units are gone meanwhile is priced normally)."""
    session: Session | None = ctx.session
    rooms = {line.key: room for line in quote.lines if (room := _room_of(line, ctx)) is not None}
    if not rooms or session is None:
        return
    items = session.execute(_LIVE_ITEMS, {"rooms": sorted(set(rooms.values()))}).all()
    by_sku = {(i.room_id, i.product_id, i.sku_id): i for i in items}
    left = {i.id: None if i.live_quota is None else i.live_quota - i.live_sold for i in items}
    chosen: dict[int, list[tuple[PricedLine, int]]] = defaultdict(list)  # item -> (line, live price)
    for line in quote.lines:
        if line.key not in rooms:
            continue
        room = rooms[line.key]
        item = by_sku.get((room, line.product_id, line.sku_id)) or by_sku.get((room, line.product_id, None))
        if item is None or item.currency != line.currency or item.live_price >= line.unit_price:
            continue
        if left[item.id] is not None:
            if line.quantity > left[item.id]:
                continue  # beyond the live quota: the normal price
            left[item.id] -= line.quantity
        chosen[item.id].append((line, item.live_price))
    for item_id in sorted(chosen):  # in item order: two placements never wait on each other crosswise
        lines = chosen[item_id]
        if ctx.placing and not _take(session, item_id, sum(line.quantity for line, _ in lines)):
            continue  # a concurrent placement took the last units since the read: the normal price
        allocations = []
        for line, live_price in lines:
            off = (line.unit_price - live_price) * line.quantity
            line.price_source = PRICE_SOURCE
            line.discounts[f"{PREFIX}{item_id}"] = off
            allocations.append(Allocation(line.key, off))
        quote.discounts.append(Discount("promotion_price", f"{PREFIX}{item_id}", LABEL,
                                        sum(a.amount for a in allocations), allocations))  # fmt: skip


def _take(session: Session, item_id: int, n: int) -> bool:
    """Count `n` units sold at the live price, never past the quota: one conditional UPDATE (on PostgreSQL a
    concurrent placement's waits for this one's row and re-checks the quota against what it committed)."""
    return session.connection().execute(_COUNT, {"item": item_id, "n": n}).rowcount == 1


def _units(session: Session, order_id: int) -> dict[int, int]:
    """Lineup item -> units the order's lines bought at its live price (from the lines' `live:` discounts)."""
    rows = session.execute(sa.select(OrderLine.quantity, OrderLine.discounts).where(OrderLine.order_id == order_id))
    units: dict[int, int] = defaultdict(int)
    for quantity, discounts in rows:
        for source in discounts or {}:
            if source.startswith(PREFIX):
                units[int(source[len(PREFIX) :])] += quantity
    return dict(units)


_COUNT = (
    sa.update(LineupItem)
    .where(LineupItem.id == sa.bindparam("item"),
           sa.or_(LineupItem.live_quota.is_(None), LineupItem.live_sold + sa.bindparam("n") <= LineupItem.live_quota))
    .values(live_sold=LineupItem.live_sold + sa.bindparam("n"))
)  # fmt: skip
_GIVE_BACK = (
    sa.update(LineupItem)
    .where(LineupItem.id == sa.bindparam("item"), LineupItem.live_sold >= sa.bindparam("n"))
    .values(live_sold=LineupItem.live_sold - sa.bindparam("n"))
)  # fmt: skip


def give_back(session: Session, event) -> None:
    """`order.cancelled` (recorded once per cancellation): the units go back to the items' live quotas."""
    for item_id, n in sorted(_units(session, event.aggregate_id).items()):
        session.connection().execute(_GIVE_BACK, {"item": item_id, "n": n})
