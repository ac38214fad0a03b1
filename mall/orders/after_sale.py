"""After-sale (售后): a shopper asks to refund some lines of a sub-order; the brand approves or rejects.

Refunds are computed per line from the amount actually paid for it (its allocated payable), with a
cumulative split priced at approval on the units refunded by then (mall.orders.refunds, ADR 0012), so that
refunding a line in any number of requests returns exactly its payable, never more or less.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.util import identity_key

from mall import audit, clock, events
from mall.db import Base, JSONType, Timestamped
from mall.errors import Conflict, Invalid, NotFound
from mall.identity.roles import Actor, Role
from mall.inventory import services as inventory
from mall.orders import refunds, states
from mall.orders.models import OrderLine, SubOrder
from mall.orders.services import brand_sub_order

OPEN = ("requested",)
REFUNDABLE = (states.PAID, states.SHIPPED, states.DELIVERED, states.COMPLETED)


class AfterSale(Timestamped, Base):
    __tablename__ = "after_sales"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    sub_order_id: Mapped[int] = mapped_column(sa.ForeignKey("sub_orders.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="requested")  # requested|rejected|refunded
    reason: Mapped[str] = mapped_column(sa.String(200))
    return_goods: Mapped[bool] = mapped_column(default=False)
    lines: Mapped[list] = mapped_column(JSONType)  # [{"order_line_id", "quantity", "amount"}]
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(sa.String(200))


def refund_amount(line: OrderLine, quantity: int) -> int:
    """The estimate shown when `quantity` more units of `line` are asked for: the cumulative split after the
    units already refunded or held by open requests. The refund itself is priced at approval (`approve`)."""
    return refunds.price(line.payable, line.quantity, line.refunded_quantity + line.requested_quantity, quantity)


def request(session: Session, *, shopper_id: int, sub_order_id: int, reason: str, return_goods: bool,
            lines: list[dict]) -> AfterSale:  # fmt: skip
    """Ask for a refund of some units. The units are taken into the request by one conditional UPDATE per line
    (never read, decide, write): units already in another open request are a conflict, even when that
    request is being made at this very moment."""
    sub = session.get(SubOrder, sub_order_id)
    if sub is None or sub.order.user_id != shopper_id:
        raise NotFound("sub_order.not_found", f"Sub-order {sub_order_id} not found.")
    if sub.status not in REFUNDABLE:
        raise Conflict("after_sale.not_refundable", f"A {sub.status} sub-order cannot be refunded.")
    if sub.settled_at is not None:
        raise _settled()
    if sub.after_sale_deadline is not None and clock.now() > sub.after_sale_deadline:
        raise Conflict("after_sale.window_closed", "The after-sale window of this sub-order has closed.")
    wanted = _wanted({line.id: line for line in sub.lines}, lines)
    priced = [{"order_line_id": line.id, "quantity": quantity, "amount": refund_amount(line, quantity)}
              for line, quantity in wanted]  # fmt: skip
    _take_units(session, wanted)
    _count_case(session, sub.id, +1)
    case = AfterSale(order_id=sub.order_id, sub_order_id=sub.id, user_id=shopper_id, reason=reason,
                     return_goods=return_goods, lines=priced, amount=sum(i["amount"] for i in priced))  # fmt: skip
    session.add(case)
    session.flush()
    events.record(session, "after_sale.requested", aggregate="order", aggregate_id=sub.order_id,
                  actor=Actor(shopper_id, Role.SHOPPER), after_sale_id=case.id, amount=case.amount)  # fmt: skip
    return case


def _wanted(by_id: dict[int, OrderLine], items: list[dict]) -> list[tuple[OrderLine, int]]:
    """(line, units) per line asked for, in line id order (two requests never wait on each other's lines)."""
    totals: dict[int, int] = {}
    for item in items:
        if item["order_line_id"] not in by_id:
            raise Invalid("after_sale.line_unknown", "That line is not in this sub-order.", field="lines")
        totals[item["order_line_id"]] = totals.get(item["order_line_id"], 0) + item["quantity"]
    for line_id, quantity in totals.items():
        line = by_id[line_id]
        if quantity > line.quantity - line.refunded_quantity:
            raise Invalid("after_sale.quantity_exceeds", "More units than are left to refund.", field="lines")
    return [(by_id[line_id], quantity) for line_id, quantity in sorted(totals.items())]


_LINES = OrderLine.__table__
_TAKE_UNITS = (  # built once
    _LINES.update()
    .where(_LINES.c.id == sa.bindparam("_line"),
           _LINES.c.refunded_quantity + _LINES.c.requested_quantity + sa.bindparam("_qty") <= _LINES.c.quantity)
    .values(requested_quantity=_LINES.c.requested_quantity + sa.bindparam("_qty"))
)  # fmt: skip


def _take_units(session: Session, wanted: list[tuple[OrderLine, int]]) -> None:
    """Take the units into the open request; units another open request holds are a conflict."""
    for line, quantity in wanted:
        if session.execute(_TAKE_UNITS, {"_line": line.id, "_qty": quantity}).rowcount != 1:
            raise Conflict("after_sale.units_requested", "Some of these units are already in an open after-sale "
                           "request; wait for its decision.", order_line_id=line.id)  # fmt: skip
        session.expire(line, ["requested_quantity"])


_SUBS = SubOrder.__table__
_OPEN_CASE = (  # built once; the settlement sweep settles only at 0, and only while settled_at is NULL
    _SUBS.update()
    .where(_SUBS.c.id == sa.bindparam("_sub"), _SUBS.c.settled_at.is_(None))
    .values(open_after_sales=_SUBS.c.open_after_sales + sa.bindparam("_delta"))
)


def _count_case(session: Session, sub_order_id: int, delta: int) -> None:
    """A case opens (+1) or is decided (-1) on the sub-order's row. Opening is refused once the sub-order is
    settled: the settlement sweep's UPDATE and this one meet on the row lock, so either the case opens and the
    sweep (which needs 0 open cases) skips the sub-order, or the sweep settles it and the request is refused.
    Taken after the lines' rows, in the order approval takes them (no deadlock between the two)."""
    if session.execute(_OPEN_CASE, {"_sub": sub_order_id, "_delta": delta}).rowcount != 1:
        raise _settled()  # a decision never meets this: a sub-order with an open case does not settle
    loaded = session.identity_map.get(identity_key(SubOrder, sub_order_id))
    if loaded is not None:
        session.expire(loaded, ["open_after_sales", "settled_at"])


def _settled() -> Conflict:
    return Conflict("after_sale.settled", "This sub-order is settled: its after-sale window has closed.")


def _brand_case(session: Session, actor: Actor, after_sale_id: int) -> AfterSale:
    case = session.get(AfterSale, after_sale_id)
    if case is None:
        raise NotFound("after_sale.not_found", f"After-sale {after_sale_id} not found.")
    brand_sub_order(session, actor=actor, sub_order_id=case.sub_order_id)
    return case


def _decide(session: Session, case: AfterSale, status: str, note: str | None) -> None:
    """The sub-order's refund lock first, as every refund takes it (a group-buy failure closing this request
    waits for the decision, never deadlocks against it)."""
    refunds.lock(session, session.get(SubOrder, case.sub_order_id))
    moved = session.execute(
        sa.update(AfterSale).where(AfterSale.id == case.id, AfterSale.status == "requested")
        .values(status=status, decided_at=clock.now(), decision_note=note),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    if moved.rowcount != 1:
        raise Conflict("after_sale.already_decided", "This request was already decided.")
    session.expire(case)


def reject(session: Session, *, actor: Actor, after_sale_id: int, note: str | None) -> AfterSale:
    """The units go back to the line: they may be asked for again."""
    case = _brand_case(session, actor, after_sale_id)
    _decide(session, case, "rejected", note)
    for item in sorted(case.lines, key=lambda i: i["order_line_id"]):
        _give_back_units(session, item)
    _count_case(session, case.sub_order_id, -1)
    events.record(session, "after_sale.rejected", aggregate="order", aggregate_id=case.order_id, actor=actor,
                  after_sale_id=case.id)  # fmt: skip
    _audit(session, case, {"status": "rejected", "decision_note": note})
    return case


def approve(session: Session, *, actor: Actor, after_sale_id: int, gateway, note: str | None) -> AfterSale:
    """Refund the units, priced now on what the line has refunded by now (the cumulative split: two requests
    on one line return exactly what it paid), send that through the gateway (idempotently), restock returned
    goods. The shipping fee comes back with the last unit of a sub-order that has not shipped."""
    from mall.payments import services as payments
    from mall.payments.models import Payment

    case = _brand_case(session, actor, after_sale_id)
    _decide(session, case, "refunded", note)
    sub = session.get(SubOrder, case.sub_order_id)  # locked by _decide
    units = [refunds.Units(item["order_line_id"], item["quantity"], held=item["quantity"]) for item in case.lines]
    shipping = refunds.SHIPPING_WITH_LAST_UNIT if sub.status == states.PAID else refunds.NO_SHIPPING
    done = refunds.refund_units(session, sub=sub, units=units, shipping=shipping, reason="after_sale",
                                reference=f"after-sale-{case.id}")  # fmt: skip
    case.lines, case.amount = done.lines, done.amount - done.shipping  # what was really refunded
    payment = session.scalar(sa.select(Payment).filter_by(order_id=case.order_id, status="succeeded").limit(1))
    if done.amount:
        payments.refund(session, gateway=gateway, payment=payment, amount=done.amount, reason="after_sale",
                        key=f"after-sale-{case.id}")  # fmt: skip
    restock = _restock(session, case, sub)
    _count_case(session, sub.id, -1)
    refunds.close_if_fully_refunded(session, sub, actor)
    events.record(session, "after_sale.refunded", aggregate="order", aggregate_id=case.order_id, actor=actor,
                  after_sale_id=case.id, amount=done.amount, restocked=restock)  # fmt: skip
    _audit(session, case, {"status": "refunded", "decision_note": note, "refunded": done.amount})
    return case


def _audit(session: Session, case: AfterSale, after: dict) -> None:
    """The staff decision in the audit log (the case's status moves by a conditional UPDATE, not the ORM)."""
    audit.record(session, action=f"after_sale.{after['status']}", object_type="after_sale", object_id=case.id,
                 brand_id=session.get(SubOrder, case.sub_order_id).brand_id, before={"status": "requested"},
                 after=after)  # fmt: skip


def _restock(session: Session, case: AfterSale, sub: SubOrder) -> dict[int, int]:
    """Returned goods, or goods that never left, go back to stock."""
    restock: dict[int, int] = {}
    if case.return_goods or sub.status == states.PAID:
        for item in case.lines:
            line = session.get(OrderLine, item["order_line_id"])
            restock[line.sku_id] = restock.get(line.sku_id, 0) + item["quantity"]
    inventory.release(session, restock)
    return restock


def _give_back_units(session: Session, item: dict) -> None:
    """A rejected request's units leave `requested_quantity`: they may be asked for again."""
    quantity = item["quantity"]
    moved = session.execute(
        _LINES.update().where(_LINES.c.id == item["order_line_id"], _LINES.c.requested_quantity >= quantity)
        .values(requested_quantity=_LINES.c.requested_quantity - quantity)
    )  # fmt: skip
    if moved.rowcount != 1:
        raise Conflict("after_sale.quantity_exceeds", "These units were already refunded.")
    loaded = session.identity_map.get(identity_key(OrderLine, item["order_line_id"]))
    if loaded is not None:
        session.expire(loaded)
