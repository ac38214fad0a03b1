"""Points an order pays with (ADR 0029): reserved at placement, spent at payment, returned on cancellation, and
re-credited, to the lots they came from, for the refunded part of a line.

- `reserve` (reaction to `order.placed`, whose payload carries the points the placement's quote applied): takes
  them from unexpired available lots, oldest expiry first, under the member's lock (`ledger.reserve`): one
  `redeem` entry and one hold per lot, `available -= n`, `reserved += n`. Not enough (a
  concurrent placement took them): 409 `points.insufficient`, and the placement rolls back.
- `spend` (reaction to `order.paid`): the holds become spent, `reserved -= n`.
- `give_back` (reaction to `order.cancelled`, the shopper's cancel and the unpaid timeout alike): the holds
  become returned, `reserved -= n`, and each lot gets a `return` entry (a lot expired meanwhile: a new
  `recredit` lot with POINTS_RECREDIT_GRACE_DAYS).
- `recredit` (reaction to `refund_lines.written`): a line's points = the order's points split over its lines by
  their points discounts (largest remainder: the lines' points sum to the order's); units k+1..k+n of Q give back
  `P*(k+n)//Q - P*k//Q` (a line refunded in any number of parts gives back exactly P), to the holds' lots,
  newest hold first, with their original expiry; key `recredit:{refund_line}:{lot}`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.members import ledger, policy
from mall.members.checkout import SOURCE
from mall.members.earning import units_before
from mall.members.points_models import PointsEntry, PointsHold
from mall.money import allocate
from mall.orders.models import Order, OrderLine, RefundLine


def reserve(session: Session, event) -> None:
    """Reaction to `order.placed`."""
    points = event.payload.get("points") or 0
    if points > 0:
        ledger.reserve(session, user_id=event.actor_id, amount=points, order_id=event.aggregate_id, now=clock.now())


def _uses_points(session: Session, order_id: int) -> Order | None:
    """The order if points paid part of it (from its discounts, loaded already: no query for the others)."""
    order = session.get(Order, order_id)
    return order if any(d.get("source") == SOURCE for d in order.discounts or ()) else None


def spend(session: Session, event) -> None:
    """Reaction to `order.paid`."""
    if order := _uses_points(session, event.aggregate_id):
        ledger.release_holds(session, order_id=order.id, user_id=order.user_id, now=clock.now(), state="spent")


def give_back(session: Session, event) -> None:
    """Reaction to `order.cancelled`."""
    if not (order := _uses_points(session, event.aggregate_id)):
        return
    now, grace = clock.now(), policy.current().recredit_grace_days
    for hold_id, lot_id, amount in ledger.release_holds(session, order_id=order.id, user_id=order.user_id, now=now,
                                                        state="returned"):  # fmt: skip
        ledger.give_back(session, lot_id=lot_id, amount=amount, kind="return", key=f"return:{hold_id}", now=now,
                         grace_days=grace, order_id=order.id, reason={"rule": "cancelled", "hold_id": hold_id})  # fmt: skip


def recredit(session: Session, event) -> None:
    """Reaction to `refund_lines.written`: the points that paid for each refunded part go back to their lots."""
    ids = sorted(event.payload.get("refund_line_ids") or [])
    if not ids:
        return
    parts = session.execute(
        sa.select(RefundLine.id, RefundLine.order_line_id, RefundLine.quantity, OrderLine.order_id,
                  OrderLine.quantity.label("line_quantity"), OrderLine.discounts)
        .join(OrderLine, OrderLine.id == RefundLine.order_line_id).where(RefundLine.id.in_(ids)).order_by(RefundLine.id)
    ).all()  # fmt: skip
    parts = [part for part in parts if (part.discounts or {}).get(SOURCE)]
    if not parts:
        return
    order_ids = sorted({part.order_id for part in parts})
    holds = session.execute(sa.select(PointsHold).where(PointsHold.order_id.in_(order_ids), PointsHold.state == "spent")
                            .order_by(PointsHold.id.desc())).scalars().all()  # fmt: skip
    if not holds:
        return
    done = set(session.scalars(sa.select(PointsEntry.refund_line_id).where(PointsEntry.refund_line_id.in_(ids),
                                                                            PointsEntry.kind == "recredit")))  # fmt: skip
    now, grace = clock.now(), policy.current().recredit_grace_days
    ledger.lock(session, sorted({hold.user_id for hold in holds}), now)
    line_points = _line_points(session, order_ids, holds)
    before = units_before(session, sorted({part.order_line_id for part in parts}))
    for part in parts:
        if part.id in done:
            continue  # a replay: this part gave its points back already
        k, q, p = before[part.id], part.line_quantity, line_points[part.order_line_id]
        due = p * (k + part.quantity) // q - p * k // q
        for hold in holds:
            if due == 0:
                break
            if hold.order_id != part.order_id or hold.recredited == hold.amount:
                continue
            back = min(due, hold.amount - hold.recredited)
            hold.recredited, hold.updated_at = hold.recredited + back, now
            due -= back
            ledger.give_back(session, lot_id=hold.lot_id, amount=back, kind="recredit", now=now, grace_days=grace,
                             key=f"recredit:{part.id}:{hold.lot_id}", order_id=hold.order_id, refund_line_id=part.id,
                             reason={"rule": "refund", "units": part.quantity, "units_refunded_before": k,
                                     "quantity": q, "line_points": p})  # fmt: skip
    session.flush()


def _line_points(session: Session, order_ids: list[int], holds: list[PointsHold]) -> dict[int, int]:
    """Order line -> the points that paid for it: each order's points split over its lines in proportion to their
    `points` discounts (whole points; the lines' shares sum to the order's)."""
    lines = session.execute(sa.select(OrderLine.id, OrderLine.order_id, OrderLine.discounts)
                            .where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.id)).all()  # fmt: skip
    found = {}
    for order_id in order_ids:
        mine = [line for line in lines if line.order_id == order_id]
        points = sum(hold.amount for hold in holds if hold.order_id == order_id)
        shares = allocate(points, [(line.discounts or {}).get(SOURCE, 0) for line in mine])
        found |= {line.id: share for line, share in zip(mine, shares, strict=True)}
    return found
