"""The refund audit (ADR 0012): after a refund test, every order's refund columns must be the sums of its ledger.

Applied after every test marked `refund_audit` (module `pytestmark` or per test; the autouse fixture in
conftest runs it before the tables are emptied), and callable directly: `assert audit(session) == []`.
"""

from __future__ import annotations

import sqlalchemy as sa

from mall.invariants import refund_audit as audit  # noqa: F401 (the SQL lives there: `flask mall audit` runs it too)


def refund_facts(session, order_id: int) -> dict:
    """An order's refund columns and ledger, for readable assertions."""
    order = session.execute(sa.text("SELECT refunded_total, paid_total, status FROM orders WHERE id = :id"),
                            {"id": order_id}).one()  # fmt: skip
    ledger = session.execute(sa.text("SELECT order_line_id, quantity, amount, reason FROM refund_lines "
                                     "WHERE order_id = :id ORDER BY id"), {"id": order_id}).all()  # fmt: skip
    return {"refunded_total": order.refunded_total, "paid_total": order.paid_total, "status": order.status,
            "ledger": [tuple(row) for row in ledger]}  # fmt: skip
