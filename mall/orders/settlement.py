"""Settlement (结算): a sub-order settles once its after-sale window has closed and no after-sale case is open.

The window closes at `after_sale_deadline` (receipt confirmed by the shopper or auto-confirmed, plus the
deployment's after-sale days). Settling writes `settled_at` and a `sub_order.settled` event on the order,
exactly once: the UPDATE requires `settled_at IS NULL` and no open case (`open_after_sales = 0`, kept on the
same row as the conditional UPDATE of an after-sale request), and only the rows it changed get an event.
Commission and points react to that event; after it nothing of the sub-order can be refunded (ADR 0011).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from mall import clock, events
from mall.orders.models import SubOrder

BATCH = 200
# What else moves with a batch of settled sub-orders, in its transaction: (session, settled ids, now), installed
# by the composition root (commission entries become available). Set-based: called once per batch.
ON_SETTLED: list[Callable[[Session, list[int], datetime], None]] = []

_SUBS = SubOrder.__table__
_SETTLEABLE = (_SUBS.c.settled_at.is_(None), _SUBS.c.open_after_sales == 0,
               _SUBS.c.after_sale_deadline <= sa.bindparam("_now"))  # fmt: skip
_DUE = (  # built once; reads the partial index ix_sub_orders_settle_due
    sa.select(_SUBS.c.id)
    .where(sa.text("sub_orders.after_sale_deadline IS NOT NULL"), *_SETTLEABLE)  # with _SETTLEABLE: the predicate
    .order_by(_SUBS.c.after_sale_deadline)
    .limit(sa.bindparam("_limit"))
    .with_for_update(skip_locked=True)  # PostgreSQL: concurrent sweeps take different rows; SQLite: ignored
)
_SETTLE = (  # built once; the WHERE is checked again on the row as it is when the row lock is taken
    _SUBS.update()
    .where(_SUBS.c.id.in_(sa.bindparam("_ids", expanding=True)), *_SETTLEABLE)
    .values(settled_at=sa.bindparam("_now"), updated_at=sa.bindparam("_now"))
    .returning(_SUBS.c.id, _SUBS.c.order_id, _SUBS.c.brand_id, _SUBS.c.payable_total, _SUBS.c.refunded_total)
)


def settle_due(session: Session, *, limit: int = BATCH) -> int:
    """One bounded batch of the sweep: settle up to `limit` sub-orders whose window has closed with no case
    open, oldest deadline first. Returns how many this call settled (another sweep's rows are not counted)."""
    now = clock.now()
    due = session.scalars(_DUE, {"_now": now, "_limit": limit}).all()
    return len(settle(session, sub_order_ids=due, now=now))


def settle(session: Session, *, sub_order_ids: list[int], now: datetime) -> list[int]:
    """Settle those of `sub_order_ids` that are still settleable at `now` (one conditional UPDATE); each one
    this call settled gets its `sub_order.settled` event. Returns their ids."""
    if not sub_order_ids:
        return []
    settled = session.execute(_SETTLE, {"_ids": sorted(sub_order_ids), "_now": now}).all()
    batch = []
    for sub_id, order_id, brand_id, payable, refunded in sorted(settled):
        loaded = session.identity_map.get(identity_key(SubOrder, sub_id))
        if loaded is not None:
            session.expire(loaded, ["settled_at", "updated_at"])
        batch.append(events.new("sub_order.settled", aggregate="order", aggregate_id=order_id, actor=None,
                                occurred_at=clock.now(), sub_order_id=sub_id, brand_id=brand_id,
                                settled_at=now.isoformat(), payable_total=payable, refunded_total=refunded,
                                settled_total=payable - refunded))  # fmt: skip
    events.write_many(session, batch)  # one statement for the batch: a round trip per event was most of a sweep
    ids = sorted(row[0] for row in settled)
    if ids:
        for hook in ON_SETTLED:
            hook(session, ids, now)
    return ids
