"""The invariants a quiet deployment must hold, checked in the database (and Redis): `flask mall audit`, and the
soak's verdict (soak/). Each check is a query returning the ids that break it, so a check cannot pass by
accident: `tests/test_audit.py` plants a violation of each and expects it reported.

Run it when nothing is in flight (after a soak's load has stopped and the workers drained their queues; on a
live deployment a purchase between two reads can look like a difference for a moment): stock and flash counters
move inside request transactions, and a message being sent is `sending` for a moment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session


@dataclass
class Check:
    name: str
    description: str
    violations: list = field(default_factory=list)  # the ids (or tuples) that break it
    figure: str = ""  # what was counted, for the report

    @property
    def ok(self) -> bool:
        return not self.violations


# The refund truth (ADR 0012): every refund column is the sum of its ledger (tests/refund_audit.py applies it
# after every refund test).
REFUND_CHECKS = {
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


def refund_audit(session: Session) -> list[str]:
    """`check: ids` for each refund check some rows fail; [] when the refund truth holds everywhere."""
    found = []
    for name, query in REFUND_CHECKS.items():
        ids = list(session.scalars(sa.text(query)))
        if ids:
            found.append(f"{name}: {sorted(ids)}")
    return found


_SQL = {
    "order_totals": (
        "order totals equal their lines: line payable = price x qty - discounts; sub-order and order totals = sums",
        """
        SELECT l.order_id FROM order_lines l
        WHERE l.subtotal <> l.unit_price * l.quantity OR l.payable <> l.subtotal - l.discount_total
        UNION
        SELECT s.order_id FROM sub_orders s
        JOIN (SELECT sub_order_id, SUM(subtotal) AS items, SUM(discount_total) AS off FROM order_lines
              GROUP BY sub_order_id) l ON l.sub_order_id = s.id
        WHERE s.items_total <> l.items OR s.discount_total < l.off
           OR s.payable_total <> s.items_total - s.discount_total + s.shipping_fee
        UNION
        SELECT o.id FROM orders o
        JOIN (SELECT order_id, SUM(items_total) AS items, SUM(discount_total) AS off, SUM(shipping_fee) AS ship,
                     SUM(payable_total) AS payable FROM sub_orders GROUP BY order_id) s ON s.order_id = o.id
        WHERE o.items_total <> s.items OR o.discount_total <> s.off OR o.shipping_total <> s.ship
           OR o.payable_total <> s.payable
        UNION
        SELECT o.id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM sub_orders s WHERE s.order_id = o.id)""",
    ),
    "payments_cover_orders": (
        "a paid order took exactly its payable; payments and refunds: refunded never above paid",
        """
        SELECT o.id FROM orders o WHERE o.paid_at IS NOT NULL AND o.paid_total <> o.payable_total
        UNION
        SELECT o.id FROM orders o WHERE o.refunded_total > o.paid_total
        UNION
        SELECT p.order_id FROM payments p WHERE p.refunded_amount > p.amount OR p.refunded_amount < 0
        UNION
        SELECT p.order_id FROM payments p
        LEFT JOIN (SELECT payment_id, SUM(amount) AS a FROM refunds GROUP BY payment_id) r ON r.payment_id = p.id
        WHERE p.status = 'succeeded' AND COALESCE(r.a, 0) > p.amount""",
    ),
    "paid_orders_settled": (
        "every paid order is fulfilled, refunded or waiting: no paid order pending or cancelled, every sub-order of "
        "a paid order paid (waiting), shipped, delivered, completed or closed (refunded); a payment on an order "
        "that never took it is refunded",
        """
        SELECT o.id FROM orders o
        WHERE o.paid_at IS NOT NULL AND o.status NOT IN ('paid', 'completed', 'closed')
        UNION
        SELECT s.order_id FROM sub_orders s JOIN orders o ON o.id = s.order_id
        WHERE o.paid_at IS NOT NULL AND s.status NOT IN ('paid', 'shipped', 'delivered', 'completed', 'closed')
        UNION
        SELECT o.id FROM orders o WHERE o.status = 'closed' AND o.refunded_total <> o.paid_total
        UNION
        SELECT p.order_id FROM payments p JOIN orders o ON o.id = p.order_id
        WHERE p.status = 'succeeded' AND o.paid_at IS NULL AND p.refunded_amount <> p.amount""",
    ),
    "flash_quota": (
        "flash quota matches orders: sold = the active flash orders' units <= quota; each buyer's units within the "
        "limit; every active flash order's order is not cancelled",
        """
        SELECT i.id FROM flash_items i
        LEFT JOIN (SELECT item_id, SUM(quantity) AS q FROM flash_orders WHERE status = 'active' GROUP BY item_id) f
               ON f.item_id = i.id
        WHERE i.sold <> COALESCE(f.q, 0) OR i.sold > i.quota
        UNION
        SELECT f.item_id FROM flash_orders f JOIN flash_items i ON i.id = f.item_id
        WHERE f.status = 'active' GROUP BY f.item_id, f.user_id, i.per_shopper_limit
        HAVING SUM(f.quantity) > i.per_shopper_limit
        UNION
        SELECT f.item_id FROM flash_orders f JOIN orders o ON o.id = f.order_id
        WHERE (f.status = 'active') = (o.status = 'cancelled')""",
    ),
    "coupon_counts": (
        "coupon counts match: issued_count = coupons issued <= total_quantity; a used coupon's order was paid, a "
        "locked one's still awaits payment",
        """
        SELECT t.id FROM coupon_templates t
        LEFT JOIN (SELECT template_id, COUNT(*) AS n FROM coupons GROUP BY template_id) c ON c.template_id = t.id
        WHERE t.issued_count <> COALESCE(c.n, 0) OR t.issued_count > COALESCE(t.total_quantity, t.issued_count)
        UNION
        SELECT c.template_id FROM coupons c LEFT JOIN orders o ON o.id = c.order_id
        WHERE (c.status = 'used' AND (o.id IS NULL OR o.paid_at IS NULL))
           OR (c.status = 'locked' AND (o.id IS NULL OR o.status <> 'pending_payment'))
           OR (c.status = 'available' AND c.order_id IS NOT NULL AND o.status IN ('pending_payment', 'paid'))""",
    ),
    "messages_once": (
        "no message sent twice: a message consumed at most one subscription grant, and a sent message was sent once",
        """
        SELECT message_id FROM subscription_grants WHERE message_id IS NOT NULL
        GROUP BY message_id HAVING COUNT(*) > 1
        UNION
        SELECT id FROM messages WHERE status = 'sent' AND sent_at IS NULL""",
    ),
}

_STOCK_SOLD = """
    SELECT l.sku_id, SUM(l.quantity) AS q FROM order_lines l JOIN orders o ON o.id = l.order_id
    WHERE o.status <> 'cancelled' GROUP BY l.sku_id"""


def _stock(session: Session, baseline: Mapping[int, int]) -> Check:
    """Each SKU's stock is what it started with, less the units of orders not cancelled, plus the units refunded
    that came back (returned, or refunded before their sub-order shipped: mall.orders.after_sale._restock)."""
    from mall.catalog.models import Sku

    sold = {sku: int(q) for sku, q in session.execute(sa.text(_STOCK_SOLD))}
    returned: dict[int, int] = {}
    # goods come back with a return, or never left: the sub-order had not shipped when the refund was decided
    cases = session.execute(
        sa.text("""
        SELECT a.lines FROM after_sales a JOIN sub_orders s ON s.id = a.sub_order_id
        WHERE a.status = 'refunded' AND (a.return_goods OR s.shipped_at IS NULL OR s.shipped_at > a.decided_at)""")
    )
    line_skus = dict(session.execute(sa.text("SELECT id, sku_id FROM order_lines WHERE refunded_quantity > 0")).all())
    for (lines,) in cases:
        for item in json.loads(lines) if isinstance(lines, str) else lines:  # raw SQL: SQLite hands JSON as text
            sku = line_skus.get(item["order_line_id"])
            if sku is not None:
                returned[sku] = returned.get(sku, 0) + int(item["quantity"])
    now = dict(session.execute(sa.select(Sku.id, Sku.stock).where(Sku.id.in_(sorted(baseline)))).all())
    wrong = sorted(sku for sku, start in baseline.items()
                   if now.get(sku) != start - sold.get(sku, 0) + returned.get(sku, 0))  # fmt: skip
    description = (
        "stock matches orders: start - units ordered (not cancelled) + units refunded back (returned or unshipped)"
    )
    return Check(
        "stock", description, wrong, f"{len(baseline)} SKUs, {sum(sold.get(s, 0) for s in baseline)} units ordered"
    )


def _ledgers(session: Session) -> list[Check]:
    from mall.guides import ledger as commission
    from mall.members import ledger as points

    entries = session.scalar(sa.text("SELECT COUNT(*) FROM guide_commission_entries"))
    lots = session.scalar(sa.text("SELECT COUNT(*) FROM points_entries"))
    return [
        Check("commission_ledger", "commission balances = the sums of their entries", commission.audit(session),
              f"{entries} commission entries"),
        Check("points_ledger", "points lots and balances = the sums of their entries; reserved = held holds",
              points.audit(session), f"{lots} points entries"),
    ]  # fmt: skip


def _flash_counters(session: Session, gate) -> Check:
    """The flash gate's Redis counters equal the database's, for every item whose counters Redis holds."""
    from mall.promotions.flash_sale import services as flash

    items = session.scalars(sa.text("SELECT id FROM flash_items ORDER BY id")).all()
    compared = [flash.compare(session, gate, item_id=i) for i in items]
    held = [c for c in compared if c["redis_remaining"] is not None]
    wrong = [c["item_id"] for c in held if not c["agree"]]
    return Check("redis_counters", "Redis flash counters (remaining, buyers) = the database's", wrong,
                 f"{len(held)} of {len(items)} items' counters in Redis")  # fmt: skip


def run(session: Session, *, gate=None, stock_baseline: Mapping[int, int] | None = None) -> list[Check]:
    """Every check, read-only (the caller rolls back). `gate`: the flash admission gate on Redis, to compare its
    counters; `stock_baseline`: {sku_id: stock before any order}, to check stock (the database keeps no stock
    ledger, so stock can only be checked against a known start)."""
    checks = []
    if stock_baseline is not None:
        checks.append(_stock(session, stock_baseline))
    for name, (description, query) in _SQL.items():
        checks.append(Check(name, description, sorted(set(session.scalars(sa.text(query))))))
    checks.append(Check("refund_ledger", "refund columns = the sums of their ledger (ADR 0012)", refund_audit(session)))
    checks += _ledgers(session)
    if gate is not None:
        checks.append(_flash_counters(session, gate))
    _figures(session, checks)
    return checks


def _figures(session: Session, checks: list[Check]) -> None:
    counts = session.execute(sa.text("""
        SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM orders WHERE paid_at IS NOT NULL),
               (SELECT COUNT(*) FROM refunds), (SELECT COUNT(*) FROM coupons),
               (SELECT COUNT(*) FROM flash_orders), (SELECT COUNT(*) FROM messages WHERE status = 'sent')""")).one()  # fmt: skip
    orders, paid, refunds, coupons, flash_orders, sent = counts
    figures = {"order_totals": f"{orders} orders", "payments_cover_orders": f"{paid} paid orders",
               "paid_orders_settled": f"{paid} paid orders", "refund_ledger": f"{refunds} refunds",
               "coupon_counts": f"{coupons} coupons", "flash_quota": f"{flash_orders} flash orders",
               "messages_once": f"{sent} messages sent"}  # fmt: skip
    for check in checks:
        check.figure = check.figure or figures.get(check.name, "")
