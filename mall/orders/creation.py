"""Writing a new order, its sub-orders and lines with plain INSERTs.

Placement is the hottest write path: the ORM's unit of work (dependency sort, per-object state, an
UPDATE for the order number after the INSERT that gives the id) cost more than the database did. Here
the rows go in with one INSERT per table (on PostgreSQL the order number is computed from the id by the
same statement), and the Order, SubOrder and OrderLine objects the callers and the response read are
built from what was written and attached to the session as already persistent: nothing is read back and
nothing is written twice. On PostgreSQL the stock the order takes, the cart lines it empties and its
`order.placed` event go in the same statement as the order (each statement cost the placement more Python
than the database spent on it).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from mall import clock, events
from mall.cart import services as cart_services
from mall.db import as_loaded
from mall.guides import binding
from mall.inventory import services as inventory
from mall.live import attribution as live
from mall.orders import states
from mall.orders.models import Order, OrderLine, SubOrder
from mall.orders.policy import OrderPolicy


def number_of(day: datetime, order_id: int) -> str:
    """The order number shoppers quote: the placement date and the id, zero-padded."""
    return f"{day:%Y%m%d}{order_id:010d}"


def insert_order(
    session: Session, *, shopper_id: int, quote, address: dict, policy: OrderPolicy, actor,
    stock: dict[int, int] | None = None, from_cart: tuple[int, list[int]] | None = None, **event_data,
) -> Order:  # fmt: skip
    """The new order, and its `order.placed` event (by `actor`; the payable, the payment deadline and
    `event_data` in its payload). `stock`: the SKU quantities it takes (inventory.reserve: all or nothing);
    `from_cart`: (cart id, line ids), the lines it empties from the cart (cart.remove_lines: all of them or a
    conflict). Either failing raises its error, with nothing written that the caller's rollback does not undo."""
    now = clock.now()
    order_values = {
        "user_id": shopper_id, "status": states.PENDING, "currency": quote.currency,
        "items_total": quote.items_total, "discount_total": quote.discount_total,
        "shipping_total": quote.shipping_total, "payable_total": quote.payable, "paid_total": 0, "refunded_total": 0,
        "address": address, "expires_at": now + policy.unpaid_timeout, "paid_at": None, "cancelled_at": None,
        "cancel_reason": None, "created_at": now, "updated_at": now,
        "discounts": [{"step": d.step, "source": d.source, "amount": d.amount} for d in quote.discounts],
    }  # fmt: skip
    brand_ids = list(quote.brands)
    sub_rows = []
    for brand_id in brand_ids:
        lines = quote.lines_of(brand_id)
        sub_rows.append({
            "brand_id": brand_id, "status": states.PENDING, "fulfilment_hold": None,
            "items_total": sum(ln.subtotal for ln in lines), "discount_total": sum(ln.discount_total for ln in lines),
            "shipping_fee": quote.brands[brand_id].shipping_fee, "refunded_total": 0,
            "payable_total": sum(ln.payable for ln in lines) + quote.brands[brand_id].shipping_fee,
            "carrier": None, "tracking_number": None, "shipped_at": None, "delivered_at": None, "completed_at": None,
            "auto_confirm_at": None, "after_sale_deadline": None, "open_after_sales": 0, "settled_at": None,
            "created_at": now, "updated_at": now,
        })  # fmt: skip
    quoted = [(brand_id, ln) for brand_id in brand_ids for ln in quote.lines_of(brand_id)]
    live_columns = live.line_columns(session, shopper_id=shopper_id, lines=[(b, ln.source) for b, ln in quoted],
                                     now=now)  # fmt: skip
    guide_columns = binding.line_columns(session, shopper_id=shopper_id, brand_ids=brand_ids, now=now,
                                         unbound=quote.facts.get("guide_bound") is False)  # fmt: skip
    line_rows = [  # (brand, row): the sub-order a line belongs to is known once that sub-order has its id
        (brand_id, {"sku_id": ln.sku_id, "product_id": ln.product_id, "title": ln.title, "specs": ln.specs,
                    "unit_price": ln.unit_price, "quantity": ln.quantity, "subtotal": ln.subtotal,
                    "discount_total": ln.discount_total, "payable": ln.payable, "discounts": dict(ln.discounts),
                    "source": ln.source, "refunded_quantity": 0, "refunded_amount": 0, "requested_quantity": 0,
                    "bundle_id": ln.bundle_id, "bundle_quantity": ln.bundle_quantity, **live_row,
                    **guide_columns.get(brand_id, binding.NO_GUIDE)})
        for (brand_id, ln), live_row in zip(quoted, live_columns, strict=True)
    ]  # fmt: skip
    placed = events.new("order.placed", aggregate="order", aggregate_id=None, actor=actor, occurred_at=now,
                        payable=quote.payable, expires_at=order_values["expires_at"].isoformat(), **event_data)  # fmt: skip
    one_statement = session.get_bind().dialect.name == "postgresql" and _fits_one_statement(
        order_values, sub_rows, line_rows
    )
    if one_statement:
        order_id, number, sub_ids, line_ids = _write_in_one(session, order_values, sub_rows, line_rows, now,
                                                            stock, from_cart, placed)  # fmt: skip
    else:
        if stock:
            inventory.reserve(session, stock)
        order_id, number, sub_ids, line_ids = _write_table_by_table(session, order_values, sub_rows, line_rows, now)
        if from_cart:
            cart_services.remove_lines(session, cart_id=from_cart[0], line_ids=from_cart[1])
    placed.aggregate_id = order_id

    order = as_loaded(Order, {"id": order_id, "number": number, **order_values})
    subs = [as_loaded(SubOrder, {"id": sub_id, "order_id": order_id, **row})
            for sub_id, row in zip(sub_ids, sub_rows, strict=True)]  # fmt: skip
    sub_of = dict(zip(brand_ids, subs, strict=True))
    lines = []
    for line_id, (brand_id, row) in zip(line_ids, line_rows, strict=True):
        sub = sub_of[brand_id]
        line = as_loaded(OrderLine, {"id": line_id, "order_id": order_id, "sub_order_id": sub.id, **row})
        set_committed_value(line, "order", order)
        set_committed_value(line, "sub_order", sub)
        lines.append(line)
    subs.sort(key=lambda sub: sub.id)
    lines.sort(key=lambda line: line.id)

    # The collections as a load would give them (ordered by id); each line already points at its parents.
    set_committed_value(order, "sub_orders", subs)
    set_committed_value(order, "lines", lines)
    for sub in subs:
        set_committed_value(sub, "order", order)
        set_committed_value(sub, "lines", [line for line in lines if line.sub_order_id == sub.id])
    session.add(order)  # cascades to the sub-orders and lines: persistent, nothing to flush
    if one_statement:
        events.recorded(session, placed)  # written with the order
    else:
        events.write(session, placed)
    return order


def _write_table_by_table(session: Session, order_values: dict, sub_rows: list[dict], line_rows: list, now):
    """One INSERT per table (SQLite): the order, then its sub-orders, then its lines, each with its parent's id."""
    order_id, number = _insert_order_row(session, order_values, now)
    sub_ids = _insert_many(session, SubOrder, [{"order_id": order_id, **row} for row in sub_rows])
    sub_of = {row["brand_id"]: sub_id for row, sub_id in zip(sub_rows, sub_ids, strict=True)}
    rows = [{"order_id": order_id, "sub_order_id": sub_of[brand_id], **row} for brand_id, row in line_rows]
    return order_id, number, sub_ids, _insert_many(session, OrderLine, rows)


def _write_in_one(
    session: Session, order_values: dict, sub_rows: list[dict], line_rows: list, now, stock, from_cart, placed
):  # fmt: skip
    """PostgreSQL: the order, its sub-orders, its lines and its event in one statement (data-modifying CTEs),
    with the stock taken and the cart lines removed if asked, so a placement writes in one round trip. The order is
    written only if every SKU was taken and every line removed; otherwise nothing of it is, and the check of
    the part that failed raises. Sub-orders come back by brand, lines by (sub-order, SKU, bundle): an order holds
    one sub-order per brand and one line per SKU bought alone or per part of a bundle (a cart merges a SKU, or a
    bundle, into one line; a bundle lists each SKU once)."""
    params = {
        "day": f"{now:%Y%m%d}", "order": _json(order_values),
        "subs": _json([{"ord": i, **row} for i, row in enumerate(sub_rows)]),
        "lines": _json([{"ord": i, "_brand": brand_id, **row} for i, (brand_id, row) in enumerate(line_rows)]),
        **events.insert_params(placed),
    }  # fmt: skip
    if stock:
        params |= {**inventory.reserve_params(stock, now), "n_taken": len(stock)}
    if from_cart:
        params |= {**cart_services.removal_params(*from_cart, now), "n_removed": len(set(from_cart[1]))}
    order_id = number = removed = None
    sub_by_brand, line_by_key, taken = {}, {}, []
    for kind, row_id, text, parent, sku_id, bundle_id in session.execute(
        _write_all(bool(stock), bool(from_cart)), params
    ):
        if kind == "order":
            order_id, number = row_id, text
        elif kind == "sub":
            sub_by_brand[parent] = row_id
        elif kind == "line":
            line_by_key[parent, sku_id, bundle_id] = row_id
        elif kind == "taken":
            taken.append(row_id)
        else:
            removed = row_id
    if order_id is None:
        if stock:
            inventory.check_taken(stock, taken)
        if from_cart:
            cart_services.check_removed(from_cart[1], removed)
        raise RuntimeError("the order was not written, yet its stock and cart lines were")  # a bug: never expected
    sub_ids = [sub_by_brand[row["brand_id"]] for row in sub_rows]
    line_ids = [line_by_key[sub_by_brand[brand_id], row["sku_id"], row["bundle_id"]] for brand_id, row in line_rows]
    return order_id, number, sub_ids, line_ids


def _json(value) -> str:
    return json.dumps(value, default=datetime.isoformat)


def _fits_one_statement(order_values: dict, sub_rows: list[dict], line_rows: list) -> bool:
    """Whether `_WRITE_ALL` writes exactly these rows: lines are told apart by (brand, SKU), and no JSON column is
    given None (the statement, reading the rows from JSON, would write a JSON null where the table-by-table path
    writes SQL NULL)."""
    if len({(brand_id, row["sku_id"], row["bundle_id"]) for brand_id, row in line_rows}) != len(line_rows):
        return False  # two lines of one SKU (not of two bundles): not from a cart, which merges them
    order_json, sub_json, line_json = _json_columns()
    return (
        _json_given(order_values, order_json)
        and all(_json_given(row, sub_json) for row in sub_rows)
        and all(_json_given(row, line_json) for _, row in line_rows)
    )


def _json_given(row: dict, json_columns: tuple[str, ...]) -> bool:
    return all(row[name] is not None for name in json_columns)


@functools.cache
def _json_columns() -> tuple[tuple[str, ...], ...]:
    """The JSON columns of orders, sub-orders and lines a placement writes (found once, on first use: a foreign
    key column has its type only once the table it refers to is known)."""
    return tuple(
        tuple(c for c in WRITTEN[t.name] if isinstance(t.c[c].type.dialect_impl(_PG), postgresql.JSONB))
        for t in _TABLES
    )


# The columns a placement writes, per table: the one list both paths take. `insert_order` builds rows with exactly
# these keys, the table-by-table path inserts them as they are, and the PostgreSQL statement below is generated
# from these lists and the tables' column types. Not listed: what the database or the parent row gives (the ids,
# the order number, the parents' ids). tests/test_order_columns.py fails if a column of a table is in neither.
GENERATED = {
    "orders": ("id", "number"),
    "sub_orders": ("id", "order_id"),
    "order_lines": ("id", "order_id", "sub_order_id"),
}
ORDER_COLUMNS = ("user_id", "status", "currency", "items_total", "discount_total", "shipping_total", "payable_total",
                 "paid_total", "refunded_total", "address", "discounts", "expires_at", "paid_at", "cancelled_at",
                 "cancel_reason", "created_at", "updated_at")  # fmt: skip
SUB_ORDER_COLUMNS = ("brand_id", "status", "fulfilment_hold", "items_total", "discount_total", "shipping_fee",
                     "payable_total", "refunded_total", "carrier", "tracking_number", "shipped_at", "delivered_at",
                     "completed_at", "auto_confirm_at", "after_sale_deadline", "open_after_sales", "settled_at", "created_at",
                     "updated_at")  # fmt: skip
LINE_COLUMNS = ("sku_id", "product_id", "title", "specs", "unit_price", "quantity", "subtotal", "discount_total",
                "payable", "discounts", "source", "refunded_quantity", "refunded_amount", "requested_quantity", "bundle_id",
                "bundle_quantity", "live_room_id", "live_host_id", "live_segment_id", "live_link_id", "live_touch",
                "guide_id", "guide_binding_id")  # fmt: skip
WRITTEN = {"orders": ORDER_COLUMNS, "sub_orders": SUB_ORDER_COLUMNS, "order_lines": LINE_COLUMNS}


def _record(table: sa.Table, columns: tuple[str, ...], *extra: str) -> str:
    """The column definitions of a jsonb_to_record(set) giving `columns` of `table` (PostgreSQL types), after
    `extra` ("name type")."""
    return ", ".join([*extra, *(f"{name} {table.c[name].type.compile(dialect=_PG)}" for name in columns)])


@functools.cache
def _write_order_sql() -> str:
    """The CTEs that write the order (o), its sub-orders (s) and lines (l) from :order, :subs and :lines (JSON of
    the rows, sub-orders and lines with their position `ord`, lines with their brand `_brand`). The order's id comes
    from the sequence inside the statement, so its number (:day and the zero-padded id) goes in with the row.
    Sub-orders and lines go in in the order they were given (`ord`), so their ids follow it. Built once, on first
    use."""
    o, s, l = (table.name for table in _TABLES)  # noqa: E741
    cols = {name: ", ".join(WRITTEN[name]) for name in (o, s, l)}
    given = {name: ", ".join(f"u.{c}" for c in WRITTEN[name]) for name in (o, s, l)}
    orders, subs, lines = _TABLES
    return f"""
o AS (
    INSERT INTO {o} (id, number, {cols[o]})
    SELECT n.id, CAST(:day AS text) || lpad(n.id::text, 10, '0'), {given[o]}
    FROM (SELECT nextval(pg_get_serial_sequence('{o}', 'id')) AS id) AS n
    CROSS JOIN jsonb_to_record(CAST(:order AS jsonb)) AS u({_record(orders, ORDER_COLUMNS)})
    WHERE {{condition}}
    RETURNING id, number
), s AS (
    INSERT INTO {s} (order_id, {cols[s]})
    SELECT o.id, {given[s]}
    FROM o CROSS JOIN jsonb_to_recordset(CAST(:subs AS jsonb))
        AS u({_record(subs, SUB_ORDER_COLUMNS, "ord integer")})
    ORDER BY u.ord
    RETURNING id, brand_id
), l AS (
    INSERT INTO {l} (order_id, sub_order_id, {cols[l]})
    SELECT o.id, s.id, {given[l]}
    FROM o CROSS JOIN jsonb_to_recordset(CAST(:lines AS jsonb))
        AS u({_record(lines, LINE_COLUMNS, "ord integer", "_brand integer")})
    JOIN s ON s.brand_id = u._brand
    ORDER BY u.ord
    RETURNING id, sub_order_id, sku_id, bundle_id
)"""


_PG = postgresql.dialect()
_TABLES = (Order.__table__, SubOrder.__table__, OrderLine.__table__)
_WRITTEN = """
SELECT 'order', o.id, o.number, NULL::integer, NULL::integer, NULL::integer FROM o
UNION ALL SELECT 'sub', s.id, NULL, s.brand_id, NULL, NULL FROM s
UNION ALL SELECT 'line', l.id, NULL, l.sub_order_id, l.sku_id, l.bundle_id FROM l"""


@functools.cache
def _write_all(take_stock: bool, remove_lines: bool) -> sa.TextClause:
    """The statement `_write_in_one` runs: (kind, id, number, parent, sku, bundle) rows for what it wrote, and the ids
    of the SKUs taken and the count of lines removed when it does those. Built once per shape."""
    parts, conditions, results = [], ["true"], [_WRITTEN]
    if take_stock:
        parts.append(inventory.TAKE_STOCK)
        conditions.append("(SELECT count(*) FROM taken) = :n_taken")
        results.append("UNION ALL SELECT 'taken', taken.id, NULL, NULL, NULL, NULL FROM taken")
    if remove_lines:
        parts.append(cart_services.REMOVE_LINES)
        conditions.append("(SELECT removed FROM emptied) = :n_removed")
        results.append("UNION ALL SELECT 'removed', emptied.removed::integer, NULL, NULL, NULL, NULL FROM emptied")
    parts.append(_write_order_sql().format(condition=" AND ".join(conditions)))
    parts.append(events.insert_cte("e", "o"))
    return sa.text("WITH " + ",".join(parts) + "\n".join(results))


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
