"""Order jobs: each re-checks state when it runs, so running it late or twice is harmless."""

from __future__ import annotations

import time

from mall.orders import services as orders
from mall.orders import settlement
from workers import runtime
from workers.runtime import unit_of_work


def expire_unpaid_order(order_id: int) -> bool:
    """Scheduled at placement for the end of the payment window."""
    with unit_of_work() as session:
        return orders.expire_unpaid(session, order_id=order_id)


def sweep_unpaid_orders() -> int:
    """Periodic back-up for timeouts whose job was lost (e.g. Redis was down at placement)."""
    with unit_of_work() as session:
        ids = orders.expired_unpaid_ids(session)
    return sum(expire_unpaid_order(order_id) for order_id in ids)


def auto_confirm_receipts() -> int:
    with unit_of_work() as session:
        return orders.auto_confirm_due(session, policy=runtime.settings().order_policy)


_seconds = time.monotonic  # the job's own clock (a test moves it without touching anything else's)


def settle_sub_orders(batch: int = settlement.BATCH, max_seconds: float = 240.0) -> int:
    """The settlement sweep: bounded batches, each its own transaction (its events released after its
    commit), until a batch comes back short or `max_seconds` have passed (the cron runs it every 10 minutes:
    a backlog of a million sub-orders drains in a few runs, and a run ends well before the next one starts;
    two at once would still take different rows)."""
    total, started = 0, _seconds()
    while _seconds() - started < max_seconds:
        with unit_of_work() as session:
            settled = settlement.settle_due(session, limit=batch)
        total += settled
        if settled < batch:
            break
    return total
