"""Refunds made outside the mall (the provider's dashboard), reported by a `charge.refunded` webhook: written
per order line by one rule (ADR 0012), never as an order-level total only.

- The refund returns everything the order still holds (what it took, less what was refunded, less refunds
  parked before): every unit left on every line and every shipping fee is refunded (the cumulative split),
  the parked refunds with it, and the sub-orders close.
- Anything else (a part of the money): the provider says nothing about which units it was for, so it is
  parked as an `UnassignedRefund` for an operator, who assigns it to units (and shipping fees) whose price
  is exactly its amount (`assign`). Until then the payment counts it, the order's lines and totals do not.
- A refund of a payment the order never took (it arrived after the order closed) touches no line; one of a
  payment never booked (a payment anomaly: another amount than the order's) is left to its anomaly row.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.errors import Conflict, Invalid, NotFound
from mall.identity.roles import Actor
from mall.orders import refunds
from mall.orders.models import Order, OrderLine, SubOrder
from mall.payments.models import Payment, Refund, UnassignedRefund

REASON = "external"


def record(session: Session, *, payment: Payment, refund_id: str, amount: int, record_refund) -> str:
    """One succeeded refund the provider made without us. `record_refund(reason, key)` writes the payment's
    side (`payments.refund` through a gateway that only records; called with `reason` and `key`). Returns what
    was done with it."""
    key = f"external-{refund_id}"
    if session.scalar(sa.select(Refund.id).filter_by(idempotency_key=key)) is not None:
        return "known"
    if payment.status != "succeeded":  # never booked (an amount mismatch): its anomaly row is the record
        return "payment_not_succeeded"
    order = session.get(Order, payment.order_id, populate_existing=True)
    if not _order_took(session, order, payment):
        record_refund(reason="external_not_taken", key=key)
        return "not_taken"
    row = record_refund(reason=REASON, key=key)
    parked = _open(session, order.id)
    if amount + sum(p.amount for p in parked) == refunds.refundable(order):
        _refund_rest(session, order, key, parked)
        return "refunded_rest"
    _park(session, order, payment, row)
    return "parked"


def _order_took(session: Session, order: Order, payment: Payment) -> bool:
    late = sa.select(Refund.id).filter_by(payment_id=payment.id, reason="paid_after_close")
    return order.paid_at is not None and session.scalar(late.limit(1)) is None


def _open(session: Session, order_id: int) -> list[UnassignedRefund]:
    query = sa.select(UnassignedRefund).filter_by(order_id=order_id, status="open").order_by(UnassignedRefund.id)
    return list(session.scalars(query.with_for_update()))


def _refund_rest(session: Session, order: Order, key: str, parked: list[UnassignedRefund]) -> None:
    done = refunds.refund_rest(session, order=order, reason=REASON, reference=key)
    for row in parked:
        _claim(session, row, {"rest_of_order": key}, actor=None)
    for sub in order.sub_orders:
        refunds.close_if_fully_refunded(session, sub, fulfilment_hold=None)
    events.record(session, "refund.external", aggregate="order", aggregate_id=order.id, reference=key,
                  amount=done.amount, lines=done.lines, shipping=done.shipping)  # fmt: skip


def _park(session: Session, order: Order, payment: Payment, refund: Refund) -> None:
    row = UnassignedRefund(order_id=order.id, payment_id=payment.id, refund_id=refund.id, amount=refund.amount,
                           currency=refund.currency, status="open", created_at=clock.now())  # fmt: skip
    session.add(row)
    session.flush()
    events.record(session, "refund.unassigned", aggregate="order", aggregate_id=order.id, unassigned_refund_id=row.id,
                  amount=row.amount, reference=refund.gateway_refund_id)  # fmt: skip


def _claim(session: Session, row: UnassignedRefund, assignment: dict, actor: Actor | None) -> None:
    """open -> assigned by one conditional UPDATE: of two assignments at once, one books it, the other is 409."""
    claimed = session.execute(
        sa.update(UnassignedRefund).where(UnassignedRefund.id == row.id, UnassignedRefund.status == "open")
        .values(status="assigned", assignment=assignment, assigned_at=clock.now(),
                assigned_by=actor.user_id if actor else None),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    if claimed.rowcount != 1:
        raise Conflict("refund.already_assigned", "This refund was already assigned.")
    session.expire(row)


def list_unassigned(session: Session, *, status: str | None, order_id: int | None, before: int | None, limit: int):
    """Newest first; page with `before` = the last id seen."""
    query = sa.select(UnassignedRefund).order_by(UnassignedRefund.id.desc()).limit(limit)
    if status:
        query = query.where(UnassignedRefund.status == status)
    if order_id:
        query = query.where(UnassignedRefund.order_id == order_id)
    if before:
        query = query.where(UnassignedRefund.id < before)
    return list(session.scalars(query))


def assign(session: Session, *, actor: Actor, unassigned_refund_id: int, lines: list[dict],
           shipping_sub_order_ids: list[int]) -> UnassignedRefund:  # fmt: skip
    """The operator says which units (and which sub-orders' remaining shipping fees) a parked refund was for.
    They are priced like any refund (the cumulative split, on what each line has refunded by now); the sum must
    be the parked amount exactly (409 `refund.assignment_mismatch` names both), else nothing changes."""
    row = session.get(UnassignedRefund, unassigned_refund_id)
    if row is None:
        raise NotFound("refund.unassigned_not_found", f"Unassigned refund {unassigned_refund_id} not found.")
    _claim(session, row, {"lines": lines, "shipping_sub_order_ids": shipping_sub_order_ids}, actor)
    order = session.get(Order, row.order_id)
    by_sub = _units_by_sub_order(session, order, lines, shipping_sub_order_ids)
    reference, total, subs = f"external-{row.refund_id}", 0, []
    for sub_id, units in sorted(by_sub.items()):
        sub = session.get(SubOrder, sub_id)
        shipping = refunds.SHIPPING_REST if sub_id in shipping_sub_order_ids else refunds.NO_SHIPPING
        total += refunds.refund_units(session, sub=sub, units=units, shipping=shipping, reason=REASON,
                                      reference=reference).amount  # fmt: skip
        subs.append(sub)
    if total != row.amount:
        raise Conflict("refund.assignment_mismatch", f"Those units and fees return {total}, the refund was "
                       f"{row.amount}.", assigned=total, refund_amount=row.amount)  # fmt: skip
    for sub in subs:
        refunds.close_if_fully_refunded(session, sub, actor, fulfilment_hold=None)
    events.record(session, "refund.assigned", aggregate="order", aggregate_id=order.id, actor=actor,
                  unassigned_refund_id=row.id, amount=total)  # fmt: skip
    return row


def _units_by_sub_order(session: Session, order: Order, lines: list[dict], shipping_ids: list[int]):
    by_sub: dict[int, list[refunds.Units]] = {sub_id: [] for sub_id in shipping_ids}
    known_subs = {sub.id for sub in order.sub_orders}
    if not set(shipping_ids) <= known_subs:
        raise Invalid("refund.sub_order_unknown", "That sub-order is not in this order.", field="shipping")
    totals: dict[int, int] = {}
    for item in lines:
        totals[item["order_line_id"]] = totals.get(item["order_line_id"], 0) + item["quantity"]
    for line_id, quantity in sorted(totals.items()):
        line = session.get(OrderLine, line_id)
        if line is None or line.order_id != order.id:
            raise Invalid("refund.line_unknown", "That line is not in this order.", field="lines")
        by_sub.setdefault(line.sub_order_id, []).append(refunds.Units(line_id, quantity))
    return by_sub
