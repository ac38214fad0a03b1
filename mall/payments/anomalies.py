"""Payment anomalies: money that did not match what the mall expected, recorded where an operator sees it
(a row listed by `GET /admin/payment-anomalies` and an event on the order's history)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.errors import Conflict
from mall.payments.models import PaymentAnomaly


class Refused(Conflict):
    """The provider answered with a PaymentIntent that is not this order's: the payment is refused (409). The
    answer is recorded in the record step's transaction (`payments.record_intent` writes `anomaly` and marks the
    call failed), which the edge commits before it answers with this (ADR 0014)."""

    def __init__(self, code: str, detail: str, *, anomaly: dict):
        super().__init__(code, detail, order_id=anomaly["order_id"])
        self.anomaly = anomaly


_COLUMNS = ("expected_amount", "expected_currency", "received_amount", "received_currency")


def record(session: Session, *, order_id: int, kind: str, gateway: str, reference: str | None = None,
           **facts) -> PaymentAnomaly:  # fmt: skip
    """One anomaly row and its `payment.anomaly` event on the order. `facts`: the expected and received
    amount and currency (columns), anything else goes in `details`."""
    amounts = {name: facts.pop(name, None) for name in _COLUMNS}
    row = PaymentAnomaly(order_id=order_id, kind=kind, gateway=gateway, reference=reference, details=facts,
                         created_at=clock.now(), **amounts)  # fmt: skip
    session.add(row)
    session.flush()
    events.record(session, "payment.anomaly", aggregate="order", aggregate_id=order_id, anomaly_id=row.id,
                  kind=kind, reference=reference, **amounts)  # fmt: skip
    return row


def list_anomalies(session: Session, *, kind: str | None, order_id: int | None, before: int | None, limit: int):
    """Newest first; page with `before` = the last id seen."""
    query = sa.select(PaymentAnomaly).order_by(PaymentAnomaly.id.desc()).limit(limit)
    if kind:
        query = query.where(PaymentAnomaly.kind == kind)
    if order_id:
        query = query.where(PaymentAnomaly.order_id == order_id)
    if before:
        query = query.where(PaymentAnomaly.id < before)
    return list(session.scalars(query))
