"""Commission earned, reversed and settled (ADR 0022): the ledger's reactions to orders, and what guides and
brand admins read of it.

- `earn` (reaction to `order.paid`): each paid line with a guide snapshot (`order_lines.guide_id`) gets one `earn`
  entry, key `earn:{line}`: `pending` (or `on_hold` when `holds.hold_reason` says so) for what the rate card in
  force gives on the line's payable; amount 0 and `void` with the reason ("no_rate_card", "campaign_line_excluded",
  "zero") when it earns nothing, so "why not credited" has a row to read.
- `reverse` (reaction to `refund_lines.written`, recorded by every refund path in mall.orders.refunds._write): each
  refunded part of a guided line reverses, key `reverse:{refund_line}`, the same cumulative split of the line's
  commission as the refund's split of its payable: units k+1..k+n reverse `C*(k+n)//Q - C*k//Q`, so a line refunded
  in any number of parts reverses exactly C. The reversal takes the state the earn entry has then: pending before
  settlement, available (a negative available amount) after it.
- `settle` (settlement hook, once per sweep batch): the settled sub-orders' pending entries become available, one
  UPDATE for the batch (`ledger.move`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.catalog.models import Category, Product
from mall.errors import NotFound
from mall.guides import holds, ledger, rates
from mall.guides.hold_models import HoldSettings
from mall.guides.ledger_models import CommissionEntry as Entry
from mall.guides.models import Binding, BindingEvent, Guide
from mall.guides.services import own_guide
from mall.identity.models import User
from mall.identity.roles import Actor, Role
from mall.orders.models import Order, OrderLine, RefundLine, SubOrder

EARN, REVERSE = "earn", "reverse"


# The paid order's guided lines with what deciding needs: brand, category, guide, hold thresholds and the buyer's
# account age; built once (building it per payment cost more Python than running it).
_GUIDED_LINES = (
    sa.select(OrderLine, SubOrder.brand_id, Category.path, Guide, HoldSettings,
              sa.select(User.created_at).where(User.id == sa.bindparam("buyer")).scalar_subquery())
    .join(SubOrder, SubOrder.id == OrderLine.sub_order_id)
    .join(Product, Product.id == OrderLine.product_id)
    .join(Category, Category.id == Product.category_id)
    .join(Guide, Guide.id == OrderLine.guide_id)
    .outerjoin(HoldSettings, HoldSettings.brand_id == Guide.brand_id)
    .where(OrderLine.order_id == sa.bindparam("order"))
    .order_by(OrderLine.id)
)  # fmt: skip


def earn(session: Session, event) -> None:
    """Reaction to `order.paid`: the guided lines' earn entries (none for an order without a guide)."""
    order = session.get(Order, event.aggregate_id)  # in the session already: the payment just moved it
    if not any(line.guide_id is not None for line in order.lines):
        return  # no guide: nothing more read (paying loads the lines anyway)
    rows = session.execute(_GUIDED_LINES, {"order": order.id, "buyer": order.user_id}).all()
    paid_at = order.paid_at or clock.now()
    cards = rates.in_force(session, {row[1] for row in rows}, paid_at)
    by_guide: dict[int, list] = defaultdict(list)
    for row in rows:
        by_guide[row[0].guide_id].append(row)
    now = clock.now()
    for guide_id, guided in sorted(by_guide.items()):
        _, _, _, guide, settings, since = guided[0]
        hold = holds.hold_reason(session, guide=guide, order=order, lines=[row[0] for row in guided],
                                 limits=holds.of_row(settings), buyer_since=since)  # fmt: skip
        for line, brand_id, path, *_ in guided:
            decision = rates.decide(cards, line=line, brand_id=brand_id, currency=order.currency,
                                    category_path=path, grade=guide.grade)  # fmt: skip
            reason = {**decision.reason, "binding_id": line.guide_binding_id}
            if decision.amount <= 0:
                state = "void"
                if decision.reason["rule"] == "rate_card":
                    reason["rule"] = "zero"  # a card applied but the line paid too little to earn a cent
            elif hold is not None:
                state, reason["hold"] = "on_hold", hold
            else:
                state = "pending"
            ledger.post(session, guide_id=guide_id, brand_id=brand_id, currency=order.currency,
                        amount=max(decision.amount, 0), kind=EARN, state=state, key=f"earn:{line.id}", reason=reason,
                        now=now, order_id=order.id, sub_order_id=line.sub_order_id, order_line_id=line.id,
                        rate_card_id=decision.card.id if decision.card else None)  # fmt: skip


def reverse(session: Session, event) -> None:
    """Reaction to `refund_lines.written`: each refunded part of a guided line reverses its share of the earn."""
    ids = event.payload.get("refund_line_ids") or []
    if not ids:
        return
    parts = session.execute(
        sa.select(RefundLine.id, RefundLine.order_line_id, RefundLine.quantity, RefundLine.amount, RefundLine.reason,
                  OrderLine.quantity.label("line_quantity"))
        .join(OrderLine, OrderLine.id == RefundLine.order_line_id)
        .where(RefundLine.id.in_(sorted(ids)), OrderLine.guide_id.is_not(None))
        .order_by(RefundLine.id)
    ).all()  # fmt: skip
    if not parts:
        return
    line_ids = sorted({part.order_line_id for part in parts})
    earned = {e.order_line_id: e for e in ledger.entries_of_lines(session, line_ids) if e.kind == EARN}
    history = session.execute(sa.select(RefundLine.id, RefundLine.order_line_id, RefundLine.quantity)
                              .where(RefundLine.order_line_id.in_(line_ids)).order_by(RefundLine.id)).all()  # fmt: skip
    before, running = {}, defaultdict(int)  # units of the line refunded before each part
    for part_id, line_id, quantity in history:
        before[part_id] = running[line_id]
        running[line_id] += quantity
    for part in parts:
        entry = earned.get(part.order_line_id)
        if entry is None or entry.amount <= 0 or entry.state == "void":
            continue  # nothing was earned on the line: nothing to reverse
        done, total = before[part.id], part.line_quantity
        amount = entry.amount * (done + part.quantity) // total - entry.amount * done // total
        if amount == 0:
            continue
        ledger.post(session, guide_id=entry.guide_id, brand_id=entry.brand_id, currency=entry.currency, amount=-amount,
                    kind=REVERSE, state=entry.state, key=f"reverse:{part.id}",
                    reason={"rule": "refund", "refund_reason": part.reason, "refunded_amount": part.amount,
                            "units": part.quantity, "units_refunded_before": done, "quantity": total,
                            "earned": entry.amount, "earn_entry_id": entry.id},
                    order_id=entry.order_id, sub_order_id=entry.sub_order_id, order_line_id=entry.order_line_id,
                    refund_line_id=part.id, rate_card_id=entry.rate_card_id)  # fmt: skip


def settle(session: Session, sub_order_ids: list[int], now: datetime) -> int:
    """Settlement hook: the pending entries of these just-settled sub-orders become available (one UPDATE)."""
    return ledger.move(session, from_state="pending", to_state="available", sub_order_ids=sub_order_ids, now=now)


# --- reading -------------------------------------------------------------------------------------------------


def _guide_for(session: Session, actor: Actor, guide_id: int | None) -> Guide:
    """A guide reads their own; a brand admin a guide of their brand (a platform admin any); anyone else 404."""
    if actor.role == Role.GUIDE:
        return own_guide(session, actor)
    guide = session.get(Guide, guide_id) if guide_id is not None else None
    if guide is None or not actor.can_manage_brand(guide.brand_id):
        raise NotFound("guides.guide_not_found", f"Guide {guide_id} not found.")
    return guide


def entries(session: Session, *, actor: Actor, state: str | None = None, guide_id: int | None = None,
            before_id: int | None = None, limit: int = 50) -> tuple[list[Entry], int | None]:  # fmt: skip
    """A guide's entries (a guide: their own; a brand admin: a guide of the brand), newest first, `limit` a page;
    the next page starts before the returned id (None: no more)."""
    guide = _guide_for(session, actor, guide_id)
    query = sa.select(Entry).where(Entry.guide_id == guide.id)
    if state is not None:
        query = query.where(Entry.state == state)
    if before_id is not None:
        query = query.where(Entry.id < before_id)
    rows = list(session.scalars(query.order_by(Entry.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def balances(session: Session, *, actor: Actor) -> tuple[Guide, list[dict]]:
    guide = own_guide(session, actor)
    currencies = session.scalars(sa.text("SELECT currency FROM guide_balances WHERE guide_id = :g ORDER BY currency"),
                                 {"g": guide.id}).all()  # fmt: skip
    return guide, [{"currency": c, **ledger.balance(session, guide.id, c)._asdict()} for c in currencies]


def why(session: Session, *, actor: Actor, order_line_id: int) -> dict:
    """Why an order line was (not) credited: the binding snapshot taken at placement (and its events) and the
    ledger's entries for it, with a one-word `verdict`. A guide sees lines credited to them and lines of shoppers
    whose binding history up to the order names them (to read why another guide got it, without that guide's
    name); a brand admin the brand's lines; anyone else 404."""
    line = session.get(OrderLine, order_line_id)
    if line is None:
        raise _no_line(order_line_id)
    sub, order = session.get(SubOrder, line.sub_order_id), session.get(Order, line.order_id)
    events_query = (sa.select(BindingEvent)
                    .where(BindingEvent.shopper_id == order.user_id, BindingEvent.brand_id == sub.brand_id,
                           BindingEvent.created_at <= order.created_at)
                    .order_by(BindingEvent.id))  # fmt: skip
    guide = own_guide(session, actor) if actor.role == Role.GUIDE else None
    if guide is None:
        if not actor.can_manage_brand(sub.brand_id):
            raise _no_line(order_line_id)
        mine = True
    else:
        if guide.brand_id != sub.brand_id:
            raise _no_line(order_line_id)
        events_query = events_query.where(BindingEvent.guide_id == guide.id)
        mine = line.guide_id == guide.id
    history = list(session.scalars(events_query))
    if not mine and not history:
        raise _no_line(order_line_id)
    binding = session.get(Binding, line.guide_binding_id) if line.guide_binding_id and mine else None
    ledger_rows = ledger.entries_of_lines(session, [line.id]) if mine else []
    return {
        "order_line_id": line.id, "order_id": line.order_id, "sub_order_id": line.sub_order_id,
        "brand_id": sub.brand_id, "guide_id": line.guide_id if mine else None,
        "verdict": _verdict(line, guide, order, ledger_rows),
        "binding": {"id": binding.id, "guide_id": binding.guide_id, "since": binding.since, "until": binding.until,
                    "reason": binding.reason} if binding else None,
        "binding_events": history, "entries": ledger_rows,
    }  # fmt: skip


def _verdict(line: OrderLine, guide: Guide | None, order: Order, rows: list[Entry]) -> str:
    if line.guide_id is None:
        return "not_bound_at_placement"
    if guide is not None and line.guide_id != guide.id:
        return "bound_to_another_guide"
    earned = next((row for row in rows if row.kind == EARN), None)
    if earned is None:
        return "not_paid" if order.paid_at is None else "not_recorded"
    if earned.state == "void":
        return earned.reason.get("rule", "void")
    if line.refunded_quantity == line.quantity:
        return "refunded"
    return {"pending": "pending_settlement", "available": "credited", "on_hold": "held_for_review"}[earned.state]


def _no_line(order_line_id: int) -> NotFound:
    return NotFound("guides.order_line_not_found", f"Order line {order_line_id} not found.")
