"""Writing a new order, its sub-orders and lines with plain INSERTs.

Placement is the hottest write path: the ORM's unit of work (dependency sort, per-object state, an
UPDATE for the order number after the INSERT that gives the id) cost more than the database did. Here
the rows go in with one INSERT per table (on PostgreSQL the order number is computed from the id by the
same statement), and the Order, SubOrder and OrderLine objects the callers and the response read are
built from what was written and attached to the session as already persistent: nothing is read back and
nothing is written twice.
"""

from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, make_transient_to_detached

from mall import clock
from mall.orders import states
from mall.orders.models import Order, OrderLine, SubOrder
from mall.orders.policy import OrderPolicy


def number_of(day: datetime, order_id: int) -> str:
    """The order number shoppers quote: the placement date and the id, zero-padded."""
    return f"{day:%Y%m%d}{order_id:010d}"


def insert_order(session: Session, *, shopper_id: int, quote, address: dict, policy: OrderPolicy) -> Order:
    now = clock.now()
    order_values = {
        "user_id": shopper_id, "status": states.PENDING, "currency": quote.currency,
        "items_total": quote.items_total, "discount_total": quote.discount_total,
        "shipping_total": quote.shipping_total, "payable_total": quote.payable, "paid_total": 0, "refunded_total": 0,
        "address": address, "expires_at": now + policy.unpaid_timeout, "paid_at": None, "cancelled_at": None,
        "cancel_reason": None, "created_at": now, "updated_at": now,
        "discounts": [{"step": d.step, "source": d.source, "amount": d.amount} for d in quote.discounts],
    }  # fmt: skip
    order_id, number = _insert_order_row(session, order_values, now)
    order = Order(id=order_id, number=number, **order_values)

    brand_ids = list(quote.brands)
    sub_rows = []
    for brand_id in brand_ids:
        lines = quote.lines_of(brand_id)
        sub_rows.append({
            "order_id": order_id, "brand_id": brand_id, "status": states.PENDING, "fulfilment_hold": None,
            "items_total": sum(ln.subtotal for ln in lines), "discount_total": sum(ln.discount_total for ln in lines),
            "shipping_fee": quote.brands[brand_id].shipping_fee, "refunded_total": 0,
            "payable_total": sum(ln.payable for ln in lines) + quote.brands[brand_id].shipping_fee,
            "carrier": None, "tracking_number": None, "shipped_at": None, "delivered_at": None, "completed_at": None,
            "auto_confirm_at": None, "after_sale_deadline": None, "created_at": now, "updated_at": now,
        })  # fmt: skip
    sub_ids = _insert_many(session, SubOrder, sub_rows)
    subs = [SubOrder(id=sub_id, **row) for sub_id, row in zip(sub_ids, sub_rows, strict=True)]

    line_rows = [
        {"order_id": order_id, "sub_order_id": sub_id, "sku_id": ln.sku_id, "product_id": ln.product_id,
         "title": ln.title, "specs": ln.specs, "unit_price": ln.unit_price, "quantity": ln.quantity,
         "subtotal": ln.subtotal, "discount_total": ln.discount_total, "payable": ln.payable,
         "discounts": dict(ln.discounts), "source": ln.source, "refunded_quantity": 0, "refunded_amount": 0}
        for brand_id, sub_id in zip(brand_ids, sub_ids, strict=True) for ln in quote.lines_of(brand_id)
    ]  # fmt: skip
    line_ids = _insert_many(session, OrderLine, line_rows)
    lines = [OrderLine(id=line_id, **row) for line_id, row in zip(line_ids, line_rows, strict=True)]

    # The relationships as a load would give them (ordered by id); back_populates fills the other sides.
    order.sub_orders = subs
    order.lines = lines
    for sub in subs:
        sub.lines = [line for line in lines if line.sub_order_id == sub.id]
    for obj in (order, *subs, *lines):
        make_transient_to_detached(obj)  # what it holds counts as loaded from its row, not as changes
    session.add(order)  # cascades to the sub-orders and lines: persistent, nothing to flush
    return order


def _insert_order_row(session: Session, values: dict, now: datetime) -> tuple[int, str]:
    table = Order.__table__
    if session.get_bind().dialect.name == "postgresql":
        params = {"_day": f"{now:%Y%m%d}", **{f"_{c}": v for c, v in values.items()}}
        order_id, number = session.execute(_insert_numbered(tuple(values)), params).one()
        return order_id, number
    order_id = session.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one()
    number = number_of(now, order_id)
    session.execute(sa.update(table).where(table.c.id == order_id).values(number=number))
    return order_id, number


@functools.cache
def _insert_numbered(columns: tuple[str, ...]) -> sa.Insert:
    """PostgreSQL: the order's INSERT takes its id from the sequence in the statement itself, so the number
    that embeds it (:_day and the zero-padded id) goes in with the row instead of by a second UPDATE.
    Built once; the values are the parameters :_<column>."""
    table = Order.__table__
    new_id = sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence("orders", "id")).label("id")).subquery()
    number = sa.bindparam("_day", type_=sa.Text) + sa.func.lpad(sa.cast(new_id.c.id, sa.Text), 10, "0")
    select = sa.select(new_id.c.id, number, *(sa.bindparam(f"_{c}", type_=table.c[c].type) for c in columns))
    return sa.insert(table).from_select(["id", "number", *columns], select).returning(table.c.id, table.c.number)


def _insert_many(session: Session, model, rows: list[dict]) -> list[int]:
    """One INSERT for all rows; their ids in the order of `rows`."""
    return list(session.execute(_insert_returning_ids(model.__table__), rows).scalars())


@functools.cache
def _insert_returning_ids(table: sa.Table) -> sa.Insert:
    return sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
