"""The refund audit (ADR 0012): after a refund test, every order's refund columns must be the sums of its ledger.

Applied after every test marked `refund_audit` (module `pytestmark` or per test; the autouse fixture in
conftest runs it before the tables are emptied), and callable directly: `assert audit(session) == []`.
"""

from __future__ import annotations

import sqlalchemy as sa

_CHECKS = {
    # a line's refunded quantity and amount are the sums of its ledger rows
    "line_ledger": """
        SELECT l.id FROM order_lines l
        LEFT JOIN (SELECT order_line_id, SUM(quantity) AS q, SUM(amount) AS a FROM refund_lines
                   WHERE order_line_id IS NOT NULL GROUP BY order_line_id) r ON r.order_line_id = l.id
        WHERE l.refunded_quantity <> COALESCE(r.q, 0) OR l.refunded_amount <> COALESCE(r.a, 0)""",
    # and the cumulative split of what the line paid: k units refunded return payable * k // quantity
    "line_split": """
        SELECT id FROM order_lines WHERE refunded_amount <> payable * refunded_quantity / quantity""",
    # a sub-order's refunded total is its lines' refunds plus its shipping refunds, shipping never beyond the fee
    "sub_order_total": """
        SELECT s.id FROM sub_orders s
        LEFT JOIN (SELECT sub_order_id, SUM(refunded_amount) AS a FROM order_lines GROUP BY sub_order_id) l
               ON l.sub_order_id = s.id
        LEFT JOIN (SELECT sub_order_id, SUM(amount) AS a FROM refund_lines WHERE order_line_id IS NULL
                   GROUP BY sub_order_id) sh ON sh.sub_order_id = s.id
        WHERE s.refunded_total <> COALESCE(l.a, 0) + COALESCE(sh.a, 0) OR COALESCE(sh.a, 0) > s.shipping_fee""",
    # an order's refunded total is its sub-orders'
    "order_total": """
        SELECT o.id FROM orders o
        LEFT JOIN (SELECT order_id, SUM(refunded_total) AS a FROM sub_orders GROUP BY order_id) s ON s.order_id = o.id
        WHERE o.refunded_total <> COALESCE(s.a, 0)""",
    # what the payments returned is the orders' refunds, the parked dashboard refunds, and payments the
    # order never took (late or second payments)
    "payments": """
        SELECT o.id FROM orders o
        JOIN (SELECT order_id, SUM(refunded_amount) AS a FROM payments GROUP BY order_id) p ON p.order_id = o.id
        LEFT JOIN (SELECT order_id, SUM(amount) AS a FROM unassigned_refunds WHERE status = 'open'
                   GROUP BY order_id) u ON u.order_id = o.id
        LEFT JOIN (SELECT order_id, SUM(amount) AS a FROM refunds WHERE reason IN ('paid_after_close', 'external_not_taken')
                   GROUP BY order_id) n ON n.order_id = o.id
        WHERE p.a <> o.refunded_total + COALESCE(u.a, 0) + COALESCE(n.a, 0)""",
    # a sub-order whose every unit came back is closed: it can no longer ship
    "fully_refunded_open": """
        SELECT s.id FROM sub_orders s WHERE s.status <> 'closed' AND NOT EXISTS (
            SELECT 1 FROM order_lines l WHERE l.sub_order_id = s.id AND l.refunded_quantity < l.quantity)""",
}


def audit(session) -> list[str]:
    """`check: ids` for each check some rows fail; [] when the refund truth holds everywhere."""
    found = []
    for name, query in _CHECKS.items():
        ids = list(session.scalars(sa.text(query)))
        if ids:
            found.append(f"{name}: {sorted(ids)}")
    return found


def refund_facts(session, order_id: int) -> dict:
    """An order's refund columns and ledger, for readable assertions."""
    order = session.execute(sa.text("SELECT refunded_total, paid_total, status FROM orders WHERE id = :id"),
                            {"id": order_id}).one()  # fmt: skip
    ledger = session.execute(sa.text("SELECT order_line_id, quantity, amount, reason FROM refund_lines "
                                     "WHERE order_id = :id ORDER BY id"), {"id": order_id}).all()  # fmt: skip
    return {"refunded_total": order.refunded_total, "paid_total": order.paid_total, "status": order.status,
            "ledger": [tuple(row) for row in ledger]}  # fmt: skip
