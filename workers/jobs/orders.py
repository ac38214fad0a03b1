"""Order jobs: each re-checks state when it runs, so running it late or twice is harmless."""

from __future__ import annotations

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


def settle_sub_orders(batch: int = settlement.BATCH, max_batches: int = 50) -> int:
    """The settlement sweep: bounded batches, each its own transaction (its events released after its
    commit), until a batch comes back short or `max_batches` ran; the next run takes the rest."""
    total = 0
    for _ in range(max_batches):
        with unit_of_work() as session:
            settled = settlement.settle_due(session, limit=batch)
        total += settled
        if settled < batch:
            break
    return total
