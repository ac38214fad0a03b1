"""Allowed status moves. Anything else raises; every move is made by a conditional UPDATE and recorded."""

from __future__ import annotations

PENDING, PAID, SHIPPED, DELIVERED, COMPLETED, CANCELLED, CLOSED = (
    "pending_payment", "paid", "shipped", "delivered", "completed", "cancelled", "closed",
)  # fmt: skip

ORDER = {
    PENDING: {PAID, CANCELLED},
    PAID: {COMPLETED, CLOSED},  # completed: every sub-order completed; closed: everything refunded
    COMPLETED: {CLOSED},
}

SUB_ORDER = {
    PENDING: {PAID, CANCELLED},
    PAID: {SHIPPED, CLOSED},  # closed: fully refunded before shipping
    SHIPPED: {DELIVERED, COMPLETED, CLOSED},
    DELIVERED: {COMPLETED, CLOSED},
    COMPLETED: {CLOSED},  # after-sale inside the window can still refund everything
}


def allowed(table: dict[str, set[str]], current: str, target: str) -> bool:
    return target in table.get(current, set())
