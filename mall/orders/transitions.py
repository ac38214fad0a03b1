"""Status changes as conditional UPDATEs (a concurrent change makes them fail, never double-apply),
each recorded as an order event with its actor."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from mall import clock, events
from mall.db import hold_written
from mall.errors import Conflict
from mall.orders import states
from mall.orders.models import Order, SubOrder


def move(session: Session, obj: Order | SubOrder, target: str, *, actor=None, **values) -> bool:
    """Move `obj` from its current status to `target`. False if someone else moved it first."""
    table = states.ORDER if isinstance(obj, Order) else states.SUB_ORDER
    current = obj.status
    if not states.allowed(table, current, target):
        kind = type(obj).__name__.lower()
        raise Conflict("order.invalid_transition", f"A {current} {kind} cannot become {target}.")
    changes = {"status": target, **values, "updated_at": clock.now()}
    statement = _conditional_update(type(obj).__table__, tuple(changes))
    params = {"_row_id": obj.id, "_row_status": current, **{f"_{k}": v for k, v in changes.items()}}
    result = session.execute(statement, params)
    if result.rowcount != 1:
        session.expire(obj)  # someone else moved it: read what they did
        return False
    hold_written(obj, changes)
    if isinstance(obj, Order):
        _record(session, "order", obj.id, actor, current, target, values)
    else:
        _record(session, "sub_order", obj.order_id, actor, current, target,
                {"sub_order_id": obj.id, "brand_id": obj.brand_id, **values})  # fmt: skip
    return True


@functools.cache
def _conditional_update(table: sa.Table, columns: tuple[str, ...]) -> sa.Update:
    """UPDATE … SET columns WHERE id = :_row_id AND status = :_row_status, built once per table and columns."""
    return (
        table.update().where(table.c.id == sa.bindparam("_row_id"), table.c.status == sa.bindparam("_row_status"))
        .values({name: sa.bindparam(f"_{name}") for name in columns})
    )  # fmt: skip


_SUBS = SubOrder.__table__
_MOVE_SUB_ORDERS = (  # built once
    _SUBS.update().where(_SUBS.c.order_id == sa.bindparam("_order"), _SUBS.c.status == sa.bindparam("_from"))
    .values(status=sa.bindparam("_to"), updated_at=sa.bindparam("_now")).returning(_SUBS.c.id, _SUBS.c.brand_id)
)  # fmt: skip


def move_sub_orders(session: Session, order: Order, current: str, target: str, *, actor=None) -> None:
    """Every sub-order of `order` still in `current` moves to `target`, in one UPDATE (paying or cancelling
    an order moves all its sub-orders together); each move is recorded like `move` records it."""
    if not states.allowed(states.SUB_ORDER, current, target):
        raise Conflict("order.invalid_transition", f"A {current} sub_order cannot become {target}.")
    changes = {"status": target, "updated_at": clock.now()}
    moved = session.execute(_MOVE_SUB_ORDERS, {"_order": order.id, "_from": current, "_to": target,
                                               "_now": changes["updated_at"]}).all()  # fmt: skip
    for sub_id, brand_id in sorted(moved):
        loaded = session.identity_map.get(identity_key(SubOrder, sub_id))
        if loaded is not None:
            hold_written(loaded, changes)
        _record(session, "sub_order", order.id, actor, current, target, {"sub_order_id": sub_id, "brand_id": brand_id})


def _record(session: Session, kind: str, order_id: int, actor, current: str, target: str, values: dict) -> None:
    events.record(
        session, f"{kind}.{target}", aggregate="order", aggregate_id=order_id, actor=actor, from_status=current,
        to_status=target, **{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()},
    )  # fmt: skip


def move_or_conflict(session: Session, obj, target: str, *, actor=None, **values) -> None:
    if not move(session, obj, target, actor=actor, **values):
        raise Conflict("order.changed", "The order changed meanwhile; reload it and try again.")
