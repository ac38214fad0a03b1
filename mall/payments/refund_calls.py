"""Sending a claimed refund (ADR 0014): the lease, then (after the provider call, made by the caller with no
transaction open) the record of its answer. The claim itself is `services.refund`, in the transaction that
decides to return the money."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from mall import events
from mall.errors import DomainError
from mall.payments import anomalies, calls
from mall.payments.calls import RefundCall
from mall.payments.gateway import PaymentGateway
from mall.payments.models import CLAIMED, Payment, Refund
from mall.payments.services import refund_key

log = logging.getLogger(__name__)


def take_refund(session: Session, *, refund_id: int) -> RefundCall | str:
    """The sender's (or the sweep's) lease on a claimed refund: what to call the provider with."""
    if not calls.take(session, Refund, refund_id):
        return "not_due"
    row = session.get(Refund, refund_id, populate_existing=True)
    payment = session.get(Payment, row.payment_id)
    return RefundCall(refund_id=row.id, order_id=row.order_id, payment_id=payment.id, intent_id=payment.intent_id,
                      amount=row.amount, key=refund_key(session, payment, row.idempotency_key),
                      attempt=row.attempts)  # fmt: skip


def record_refund(session: Session, *, gateway: PaymentGateway, call: RefundCall, answer) -> str:
    """Step 3: the provider's answer to a refund call, written while the row is still claimed. A failed call
    is retried later or given up; a refund of another payment, or a refund given up, is an anomaly for the
    operator (the money is owed to the shopper and did not leave)."""
    row = session.get(Refund, call.refund_id, populate_existing=True)
    if row is None or row.status != CLAIMED:
        return "already_recorded"
    if isinstance(answer, DomainError):
        outcome = calls.note_failure(session, row, answer)
        if outcome == "failed":
            _refund_not_made(session, gateway, row, kind="refund_failed", reference=None, error=row.last_error)
        return outcome
    if answer.intent_id != call.intent_id:
        log.error("refund %s: the gateway answered with refund %s of %s", row.id, answer.refund_id, answer.intent_id)
        row.status, row.last_error = "failed", "refund.foreign_refund"
        _refund_not_made(session, gateway, row, kind="foreign_refund", reference=answer.refund_id,
                         refund_of=answer.intent_id, expected_refund_of=call.intent_id)  # fmt: skip
        return "foreign_refund"
    row.status, row.gateway_refund_id, row.last_error = answer.status, answer.refund_id, None
    return answer.status


def _refund_not_made(session: Session, gateway: PaymentGateway, row: Refund, *, kind: str, reference, **facts):
    anomalies.record(session, order_id=row.order_id, kind=kind, gateway=gateway.name, reference=reference,
                     refund_id=row.id, amount=row.amount, **facts)  # fmt: skip
    events.record(session, "payment.refund_failed", aggregate="order", aggregate_id=row.order_id, refund_id=row.id,
                  amount=row.amount, kind=kind)  # fmt: skip


def due_refund_ids(session: Session, *, limit: int = 200) -> list[int]:
    return calls.due(session, Refund, limit=limit)
