"""Points earned on what a line actually paid (ADR 0027): pending at payment, available at settlement, reversed
on the refunded part of a line to the point.

- `earn` (reaction to `order.paid`): each line with a positive payable (after every discount, shipping is on the
  sub-order, never on a line) earns `policy.earned(line.payable, currency, multiplier)` points (the multiplier of
  the member's level in the level table, else of the POINTS_LEVEL_MULTIPLIERS setting) as one pending lot,
  key `earn:{line}`, brand = the line's sub-order's brand, level = the member's level at payment (before the
  payment's own upgrade, ADR 0030).
- `reverse` (reaction to `refund_lines.written`, the one event every refund path records in
  mall.orders.refunds._write): refunded units k+1..k+n of a line earning E points on Q units take back
  `E*(k+n)//Q - E*k//Q` from its lot, key `clawback:{refund_line}` (the cumulative split of the refunds
  themselves, so a line refunded in any number of parts gives back exactly E).
- `settle` (settlement hook, once per sweep batch): the settled sub-orders' pending lots become available.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.members import ledger, levels, policy
from mall.members.points_models import PointsLot
from mall.orders.models import Order, OrderLine, RefundLine, SubOrder


def earn(session: Session, event) -> None:
    """Reaction to `order.paid`."""
    rules = policy.current()
    order = session.get(Order, event.aggregate_id)
    level, multiplier = levels.multiplier_of(session, order.user_id, rules.multiplier_bp)  # ADR 0030
    lines = session.execute(
        sa.select(OrderLine.id, OrderLine.sub_order_id, OrderLine.payable, OrderLine.quantity, SubOrder.brand_id)
        .join(SubOrder, SubOrder.id == OrderLine.sub_order_id)
        .where(OrderLine.order_id == order.id, OrderLine.payable > 0).order_by(OrderLine.id)
    ).all()  # fmt: skip
    now = clock.now()
    for line in lines:
        points = rules.earned(line.payable, order.currency, multiplier)
        if points <= 0:
            continue
        ledger.grant(session, user_id=order.user_id, amount=points, kind="earn", key=f"earn:{line.id}", now=now,
                     expires_at=rules.expires_at(now), state="pending", brand_id=line.brand_id,
                     order_id=order.id, sub_order_id=line.sub_order_id, order_line_id=line.id,
                     reason={"rule": "paid", "paid": line.payable, "currency": order.currency, "level": level,
                             "per_unit": rules.earn_per_unit, "multiplier_bp": multiplier})  # fmt: skip


def reverse(session: Session, event) -> None:
    """Reaction to `refund_lines.written`: each refunded part of a line that earned takes its share back."""
    ids = event.payload.get("refund_line_ids") or []
    if not ids:
        return
    parts = session.execute(
        sa.select(RefundLine.id, RefundLine.order_line_id, RefundLine.quantity, RefundLine.amount, RefundLine.reason,
                  OrderLine.quantity.label("line_quantity"), PointsLot.id.label("lot_id"), PointsLot.amount.label("earned"),
                  PointsLot.user_id)
        .join(OrderLine, OrderLine.id == RefundLine.order_line_id)
        .join(PointsLot, sa.and_(PointsLot.order_line_id == RefundLine.order_line_id, PointsLot.source == "earn"))
        .where(RefundLine.id.in_(sorted(ids))).order_by(RefundLine.id)
    ).all()  # fmt: skip
    if not parts:
        return
    before = units_before(session, sorted({part.order_line_id for part in parts}))
    now = clock.now()
    ledger.lock(session, [part.user_id for part in parts], now)
    for part in parts:
        done, total, earned = before[part.id], part.line_quantity, part.earned
        due = earned * (done + part.quantity) // total - earned * done // total
        if due:
            ledger.take_from_lot(session, lot_id=part.lot_id, amount=due, kind="clawback", key=f"clawback:{part.id}",
                                 now=now, refund_line_id=part.id,
                                 reason={"rule": "refund", "refund_reason": part.reason, "refunded_amount": part.amount,
                                         "units": part.quantity, "units_refunded_before": done, "quantity": total,
                                         "earned": earned})  # fmt: skip


def units_before(session: Session, line_ids: list[int]) -> dict[int, int]:
    """Refund line id -> units of its order line refunded by the parts before it."""
    history = session.execute(sa.select(RefundLine.id, RefundLine.order_line_id, RefundLine.quantity)
                              .where(RefundLine.order_line_id.in_(line_ids)).order_by(RefundLine.id)).all()  # fmt: skip
    before, running = {}, defaultdict(int)
    for part_id, line_id, quantity in history:
        before[part_id] = running[line_id]
        running[line_id] += quantity
    return before


def settle(session: Session, sub_order_ids: list[int], now: datetime) -> int:
    """Settlement hook: the pending lots of these just-settled sub-orders become available (set-based)."""
    return ledger.make_available(session, sub_order_ids, now)
