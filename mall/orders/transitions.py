"""Status changes as conditional UPDATEs (a concurrent change makes them fail, never double-apply),
each recorded as an order event with its actor."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

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
    model = type(obj)
    changes = {"status": target, **values, "updated_at": clock.now()}
    result = session.execute(
        sa.update(model).where(model.id == obj.id, model.status == current).values(**changes),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:
        session.expire(obj)  # someone else moved it: read what they did
        return False
    hold_written(obj, changes)
    order_id = obj.id if isinstance(obj, Order) else obj.order_id
    sub = {} if isinstance(obj, Order) else {"sub_order_id": obj.id, "brand_id": obj.brand_id}
    events.record(
        session, f"{'order' if isinstance(obj, Order) else 'sub_order'}.{target}", aggregate="order",
        aggregate_id=order_id, actor=actor, from_status=current, to_status=target, **sub,
        **{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()},
    )  # fmt: skip
    return True


def move_or_conflict(session: Session, obj, target: str, *, actor=None, **values) -> None:
    if not move(session, obj, target, actor=actor, **values):
        raise Conflict("order.changed", "The order changed meanwhile; reload it and try again.")
