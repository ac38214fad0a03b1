"""Refund accounting: which lines of an order get how much of the money a refund returns (ADR 0012).

Every path that returns money an order took (after-sale, group-buy failure and leave, a refund made in the
provider's dashboard) writes it here, per order line, before (or without) asking the gateway to move it:

- units of a line are priced by the cumulative split of what the line paid: refunding units k+1..k+n returns
  `payable * (k + n) // quantity - payable * k // quantity`, where k is the units refunded *at that moment*
  (one conditional UPDATE prices and takes them), so a line refunded in any number of parts returns exactly
  its payable, never a cent more or less;
- a sub-order's shipping fee comes back as one part of its own (a ledger row with no line);
- every part is a `refund_lines` row, and `sub_orders.refunded_total` / `orders.refunded_total` grow by the
  same sum in the same transaction: they always equal the sum of their lines' and shipping refunds;
- one `refund_lines.written` event names the rows a refund wrote, in its transaction: the hook of everything
  that follows refunds per line (guide commission reversal, points), installed by the composition root.

Refunds of one sub-order are serialised by a lock on its row (taken first), so "is everything refunded
now?" (shipping back, closing) is decided on what the others committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from mall import clock, events
from mall.errors import Conflict
from mall.orders import states
from mall.orders.models import Order, OrderLine, RefundLine, SubOrder
from mall.orders.transitions import move, move_or_conflict

NO_SHIPPING, SHIPPING_WITH_LAST_UNIT, SHIPPING_REST = "none", "with_last_unit", "rest"


@dataclass(frozen=True)
class Units:
    """`quantity` more units of a line; `held` of them come out of an open after-sale request."""

    order_line_id: int
    quantity: int
    held: int = 0


@dataclass
class Refunded:
    """What a refund returned: per line (`order_line_id`, `quantity`, `amount`) and the shipping fee."""

    lines: list[dict] = field(default_factory=list)
    shipping: int = 0

    @property
    def amount(self) -> int:
        return sum(item["amount"] for item in self.lines) + self.shipping

    def __iadd__(self, other: Refunded) -> Refunded:
        self.lines += other.lines
        self.shipping += other.shipping
        return self


def price(payable: int, quantity: int, done: int, more: int) -> int:
    """The cumulative split: what units done+1..done+more of a line of `quantity` units paying `payable` return."""
    return payable * (done + more) // quantity - payable * done // quantity


_LINES = OrderLine.__table__
_q, _held = sa.bindparam("_q", type_=sa.Integer), sa.bindparam("_held", type_=sa.Integer)
_TAKE = (  # built once: price the units on the refunded quantity of this moment and take them, in one statement
    _LINES.update()
    .where(_LINES.c.id == sa.bindparam("_line"), _LINES.c.sub_order_id == sa.bindparam("_sub"),
           _LINES.c.requested_quantity >= _held,  # units held by an open request are not anyone else's
           _LINES.c.refunded_quantity + _LINES.c.requested_quantity - _held + _q <= _LINES.c.quantity)
    .values(refunded_quantity=_LINES.c.refunded_quantity + _q,
            requested_quantity=_LINES.c.requested_quantity - _held,
            refunded_amount=_LINES.c.refunded_amount
            + _LINES.c.payable * (_LINES.c.refunded_quantity + _q) // _LINES.c.quantity
            - _LINES.c.payable * _LINES.c.refunded_quantity // _LINES.c.quantity)
    .returning(_LINES.c.refunded_quantity, _LINES.c.payable, _LINES.c.quantity)
)  # fmt: skip


def lock(session: Session, sub: SubOrder) -> SubOrder:
    """Take the sub-order's row lock (refunds of one sub-order run one after the other) and read it afresh."""
    session.execute(sa.select(SubOrder.id).where(SubOrder.id == sub.id).with_for_update())
    session.expire(sub)
    return sub


def refund_units(session: Session, *, sub: SubOrder, units: list[Units], shipping: str, reason: str,
                 reference: str) -> Refunded:  # fmt: skip
    """Refund units of `sub`'s lines (in line id order) and, by `shipping`, the rest of its shipping fee: never
    (`NO_SHIPPING`), only if these units are the last unrefunded ones (`SHIPPING_WITH_LAST_UNIT`), or now
    (`SHIPPING_REST`). Units refunded meanwhile, or held by an open after-sale request other than the one
    being approved (`Units.held`), are a conflict."""
    lock(session, sub)
    done = Refunded()
    for part in sorted(units, key=lambda u: u.order_line_id):
        if part.quantity:
            done.lines.append(_take(session, sub, part))
    if shipping == SHIPPING_REST or (shipping == SHIPPING_WITH_LAST_UNIT and _all_units_refunded(session, sub)):
        done.shipping = sub.shipping_fee - shipping_refunded(session, sub.id)
    _write(session, sub, done, reason, reference)
    return done


def refund_rest(session: Session, *, order: Order, reason: str, reference: str) -> Refunded:
    """Everything the order took and has not returned yet: every unit left on every line, every shipping fee.
    Open after-sale requests on it are closed (their units are refunded here)."""
    done = Refunded()
    for sub in sorted(order.sub_orders, key=lambda s: s.id):
        lock(session, sub)
        _supersede_open_requests(session, sub, reason)
        left = [Units(line.id, line.quantity - line.refunded_quantity, held=line.requested_quantity)
                for line in fresh_lines(session, sub)]  # fmt: skip
        done += refund_units(session, sub=sub, units=left, shipping=SHIPPING_REST, reason=reason, reference=reference)
    return done


def refundable(order: Order) -> int:
    """What the order took and has not given back (paid minus refunded: lines and shipping)."""
    return order.paid_total - order.refunded_total


def shipping_refunded(session: Session, sub_order_id: int) -> int:
    query = sa.select(sa.func.coalesce(sa.func.sum(RefundLine.amount), 0)).where(
        RefundLine.sub_order_id == sub_order_id, RefundLine.order_line_id.is_(None)
    )
    return int(session.scalar(query))  # SUM of a bigint is a numeric (Decimal) on PostgreSQL


def _take(session: Session, sub: SubOrder, part: Units) -> dict:
    row = session.execute(_TAKE, {"_line": part.order_line_id, "_sub": sub.id, "_q": part.quantity,
                                  "_held": part.held}).one_or_none()  # fmt: skip
    if row is None:
        raise Conflict("refund.units_gone", "These units were already refunded.", order_line_id=part.order_line_id)
    loaded = session.identity_map.get(identity_key(OrderLine, part.order_line_id))
    if loaded is not None:
        session.expire(loaded)
    amount = price(row.payable, row.quantity, row.refunded_quantity - part.quantity, part.quantity)
    return {"order_line_id": part.order_line_id, "quantity": part.quantity, "amount": amount}


def _all_units_refunded(session: Session, sub: SubOrder) -> bool:
    return all(line.refunded_quantity == line.quantity for line in fresh_lines(session, sub))


def fresh_lines(session: Session, sub: SubOrder) -> list[OrderLine]:
    """The sub-order's lines as the database holds them now."""
    query = sa.select(OrderLine).where(OrderLine.sub_order_id == sub.id).order_by(OrderLine.id)
    return list(session.scalars(query.execution_options(populate_existing=True)))


_INSERT_PARTS = sa.insert(RefundLine).returning(RefundLine.id)  # built once


def _write(session: Session, sub: SubOrder, done: Refunded, reason: str, reference: str) -> None:
    """The ledger rows and the totals they add up to."""
    now = clock.now()
    rows = [{"order_id": sub.order_id, "sub_order_id": sub.id, "order_line_id": item["order_line_id"],
             "quantity": item["quantity"], "amount": item["amount"], "reason": reason, "reference": reference,
             "created_at": now} for item in done.lines]  # fmt: skip
    if done.shipping:
        rows.append({"order_id": sub.order_id, "sub_order_id": sub.id, "order_line_id": None, "quantity": 0,
                     "amount": done.shipping, "reason": reason, "reference": reference, "created_at": now})  # fmt: skip
    if not rows:
        return
    ids = session.scalars(_INSERT_PARTS, rows).all()
    # What reacts to refunded lines (commission reversal, ...) reads them by these ids, in this transaction.
    events.record(session, "refund_lines.written", aggregate="order", aggregate_id=sub.order_id, sub_order_id=sub.id,
                  refund_line_ids=sorted(ids), reason=reason, reference=reference)  # fmt: skip
    for model, row_id in ((SubOrder, sub.id), (Order, sub.order_id)):
        session.execute(sa.update(model).where(model.id == row_id)
                        .values(refunded_total=model.refunded_total + done.amount),
                        execution_options={"synchronize_session": False})  # fmt: skip
    session.expire(sub)
    loaded = session.identity_map.get(identity_key(Order, sub.order_id))
    if loaded is not None:
        session.expire(loaded)


def _supersede_open_requests(session: Session, sub: SubOrder, reason: str) -> None:
    from mall.orders.after_sale import AfterSale

    closed = session.execute(
        sa.update(AfterSale).where(AfterSale.sub_order_id == sub.id, AfterSale.status == "requested")
        .values(status="rejected", decided_at=clock.now(), decision_note=f"refunded: {reason}"),
        execution_options={"synchronize_session": False},
    ).rowcount  # fmt: skip
    if closed:  # the cases no longer hold the sub-order back from settling (ADR 0011)
        session.execute(sa.update(SubOrder).where(SubOrder.id == sub.id)
                        .values(open_after_sales=SubOrder.open_after_sales - closed),
                        execution_options={"synchronize_session": False})  # fmt: skip


def close_if_fully_refunded(session: Session, sub: SubOrder, actor=None, **values) -> bool:
    """A sub-order whose every unit was refunded closes (it can no longer ship); the order closes with its last
    open sub-order. `values`: more columns the move writes (e.g. a hold lifted)."""
    session.expire(sub)
    if sub.status == states.CLOSED or not _all_units_refunded(session, sub):
        return False
    move_or_conflict(session, sub, states.CLOSED, actor=actor, **values)
    order = sub.order
    session.expire(order)
    if order.status != states.CLOSED and all(s.status == states.CLOSED for s in order.sub_orders):
        move(session, order, states.CLOSED, actor=actor)
    return True
