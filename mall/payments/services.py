"""Collecting and returning money: payments, refunds and provider webhooks."""

from __future__ import annotations

import functools
import logging
import secrets
from dataclasses import replace
from datetime import UTC

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.db import insert_on_conflict
from mall.errors import Conflict, DomainError
from mall.orders import services as orders
from mall.orders import states
from mall.orders.models import Order
from mall.payments import anomalies, calls
from mall.payments.calls import IntentCall
from mall.payments.gateway import Intent, PaymentGateway, RefundResult, WebhookPayload
from mall.payments.models import CLAIMED, GatewayCall, Installation, Payment, PaymentAnomaly, Refund, WebhookEvent

log = logging.getLogger(__name__)
WAITING = "waiting_for_payment"  # a webhook outcome: to be processed again later (not marked processed)


def claim_intent(session: Session, *, gateway: PaymentGateway, shopper_id: int, order_id: int) -> Payment | IntentCall:
    """Step 1 of paying (claim -> commit -> call -> record, ADR 0014): the order's succeeded payment if it is
    paid already, else the PaymentIntent to create. For a provider behind a network (`gateway.remote`) the
    call is claimed in `gateway_calls` under its idempotency key (`intent_key`); the caller commits that
    before making the call, so a call whose answer is lost is repeated by the sweep with the same key."""
    order = orders.get_order(session, order_id=order_id, shopper_id=shopper_id, with_lines=True)  # paying reads them
    if order.status != states.PENDING:
        paid = _payment_of(session, order.id, status="succeeded")
        if paid is not None:
            return paid
        raise Conflict("order.not_payable", f"A {order.status} order cannot be paid.")
    if order.expires_at <= clock.now():
        raise Conflict("order.expired", "The payment window of this order has closed.")
    installation = installation_id(session)
    intent = IntentCall(order_id=order.id, key=intent_key(order, installation), amount=order.payable_total,
                        currency=order.currency, metadata=intent_metadata(order, installation))  # fmt: skip
    if getattr(gateway, "remote", True):
        return _claim_call(session, gateway, intent)
    return replace(intent, loaded=order)  # one transaction: the record uses the order as loaded here


def _claim_call(session: Session, gateway: PaymentGateway, intent: IntentCall) -> IntentCall:
    """The claim row, taken for this call (a retry of the same key takes it over: the provider replays)."""
    now = clock.now()
    values = {"kind": "payment_intent", "order_id": intent.order_id, "gateway": gateway.name,
              "idempotency_key": intent.key, "amount": intent.amount, "currency": intent.currency,
              "details": {k: str(v) for k, v in intent.metadata.items()}, "status": CLAIMED, "attempts": 1,
              "retry_at": now + calls.LEASE, "created_at": now, "updated_at": now}  # fmt: skip
    row = insert_on_conflict(session, GatewayCall, index_elements=["idempotency_key"], values=values)
    if row is None:
        row = session.scalar(sa.select(GatewayCall).filter_by(idempotency_key=intent.key))
        row.attempts, row.retry_at = row.attempts + 1, now + calls.LEASE
        session.flush()
    return replace(intent, call_id=row.id)


def take_intent_call(session: Session, *, call_id: int) -> IntentCall | str:
    """The sweep's claim on a PaymentIntent call whose caller died or failed: the same call, same key."""
    if not calls.take(session, GatewayCall, call_id):
        return "not_due"
    row = session.get(GatewayCall, call_id, populate_existing=True)
    return IntentCall(order_id=row.order_id, key=row.idempotency_key, amount=row.amount, currency=row.currency,
                      metadata=dict(row.details), call_id=row.id)  # fmt: skip


def record_intent(session: Session, *, gateway: PaymentGateway, call: IntentCall, answer) -> Payment | DomainError:
    """Step 3: the provider's answer (an Intent, or the error the call ended with), in a second transaction.
    Returns the payment, or the error to answer with once this transaction has committed (a failed call is
    noted for a retry; an intent that is not this order's is refused and recorded as an anomaly)."""
    row = session.get(GatewayCall, call.call_id) if call.call_id is not None else None
    if isinstance(answer, DomainError):
        if row is not None:
            calls.note_failure(session, row, answer)
        return answer
    order = call.loaded or orders.get_order(session, order_id=call.order_id, with_lines=True)
    refused = _foreign_intent(gateway, answer, order, call.metadata)
    if row is not None and row.status == CLAIMED:
        row.status, row.reference = ("failed", None) if refused else ("done", answer.intent_id)
        row.last_error = refused.code if refused else None
    if refused:
        anomalies.record(session, **refused.anomaly)
        return refused
    succeeded = answer.status == "succeeded"
    payment, written = _record_payment(session, gateway.name, answer.intent_id, order, answer.client_secret,
                                       status="succeeded" if succeeded else "pending")  # fmt: skip
    if succeeded and written:  # the row went in as succeeded, for the order's exact amount
        _money_in(session, gateway, payment)
    elif succeeded:  # a retry meets the row an earlier attempt wrote
        payment_succeeded(session, gateway=gateway, payment=payment, amount=payment.amount, currency=payment.currency)
    return payment


def pay(session: Session, *, gateway: PaymentGateway, shopper_id: int, order_id: int) -> Payment:
    """Claim, call and record in the caller's transaction: for a gateway with no provider behind it (offline),
    where there is no call to lose. The HTTP edge and the jobs run the steps themselves for a remote one."""
    if getattr(gateway, "remote", True):
        raise ValueError(f"{gateway.name}: claim, commit, then call (ADR 0014); pay() is for offline gateways")
    claimed = claim_intent(session, gateway=gateway, shopper_id=shopper_id, order_id=order_id)
    if isinstance(claimed, Payment):
        return claimed
    outcome = record_intent(session, gateway=gateway, call=claimed, answer=calls.call(gateway.create_intent,
                                                                                       claimed.request()))  # fmt: skip
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def installation_id(session: Session) -> str:
    """This database's random id (models.Installation), written by the first caller that needs it."""
    query = sa.select(Installation.installation_id).filter_by(id=1)
    found = session.scalar(query)
    if found is None:
        insert_on_conflict(session, Installation.__table__, index_elements=["id"],
                           values={"id": 1, "installation_id": secrets.token_hex(16), "created_at": clock.now()})  # fmt: skip
        found = session.scalar(query)
    return found


def intent_key(order: Order, installation: str) -> str:
    """The PaymentIntent's idempotency key: this installation, the order (its id and the moment it was placed,
    so a restored copy's new order of the same id differs) and what is asked (amount, currency)."""
    placed = order.created_at.astimezone(UTC)
    return f"{installation}-order-{order.id}-{placed:%Y%m%d%H%M%S%f}-{order.payable_total}-{order.currency}"


def intent_metadata(order: Order, installation: str) -> dict:
    return {"order_id": order.id, "order_number": order.number, "installation": installation}


def _foreign_intent(gateway: PaymentGateway, intent: Intent, order: Order, sent: dict) -> anomalies.Refused | None:
    """An intent the provider answered with whose metadata does not name what was sent (another order, another
    installation): the refusal to answer with, carrying the anomaly to record."""
    ours = {k: str(v) for k, v in sent.items()}
    theirs = {k: str(intent.metadata.get(k)) for k in ours}
    if theirs == ours:
        return None
    log.error("order %s: the gateway answered with intent %s of %s", order.id, intent.intent_id, theirs)
    return anomalies.Refused("payment.foreign_intent", "The payment provider answered with a payment of "
                             "another order; nothing was charged for this one. Try again later.",
                             anomaly={"order_id": order.id, "kind": "foreign_intent", "gateway": gateway.name,
                                      "reference": intent.intent_id, "metadata": theirs})  # fmt: skip


def _payment_of(session: Session, order_id: int, *, status: str) -> Payment | None:
    return session.scalar(sa.select(Payment).filter_by(order_id=order_id, status=status).limit(1))


def _record_payment(
    session: Session, gateway: str, intent_id: str, order: Order, client_secret=None, status="pending"
) -> tuple[Payment, bool]:
    """The payment row of this intent, and whether it was written now (False: a retry found the one written
    before, whatever its status)."""
    written = insert_on_conflict(session, Payment, index_elements=["gateway", "intent_id"],
        values={"order_id": order.id, "gateway": gateway, "intent_id": intent_id, "amount": order.payable_total,
                "currency": order.currency, "status": status, "refunded_amount": 0, "client_secret": client_secret,
                "created_at": clock.now(), "updated_at": clock.now()})  # fmt: skip
    if written is not None:
        return written, True
    query = sa.select(Payment).filter_by(gateway=gateway, intent_id=intent_id)
    return session.scalar(query.execution_options(populate_existing=True)), False


def payment_succeeded(session: Session, *, gateway: PaymentGateway, payment: Payment, amount: int, currency: str):
    """Money arrived. A payment for an order that was cancelled meanwhile is refunded, not kept."""
    if payment.status == "succeeded":
        return "duplicate"
    if (amount, currency) != (payment.amount, payment.currency):
        log.error(
            "payment %s: got %s %s, expected %s %s", payment.id, amount, currency, payment.amount, payment.currency
        )
        anomalies.record(session, order_id=payment.order_id, kind="amount_mismatch", gateway=gateway.name,
                         reference=payment.intent_id, expected_amount=payment.amount,
                         expected_currency=payment.currency, received_amount=amount, received_currency=currency)  # fmt: skip
        return "amount_mismatch"
    payment.status = "succeeded"
    session.flush()
    return _money_in(session, gateway, payment)


def _money_in(session: Session, gateway: PaymentGateway, payment: Payment) -> str:
    """A succeeded payment of the order's amount: the order is paid, or (closed meanwhile, or paid twice)
    the money goes back."""
    outcome = orders.mark_paid(session, order_id=payment.order_id, amount=payment.amount, currency=payment.currency,
                               reference=f"{payment.gateway}:{payment.intent_id}")  # fmt: skip
    if outcome == "late" or (outcome == "already_paid" and _other_success(session, payment)):
        refund(session, gateway=gateway, payment=payment, amount=payment.amount, reason="paid_after_close",
               key=f"late-{payment.gateway}-{payment.intent_id}")  # fmt: skip
        return "refunded_late_payment"
    return outcome


def _other_success(session: Session, payment: Payment) -> bool:
    """A second successful payment for one order (two intents both paid) is refunded too."""
    query = sa.select(Payment.id).where(
        Payment.order_id == payment.order_id, Payment.status == "succeeded", Payment.id != payment.id
    )
    return session.scalar(query.limit(1)) is not None


def payment_failed(session: Session, *, payment: Payment, reason: str) -> str:
    if payment.status != "pending":
        return "ignored"
    payment.status, payment.failure_reason = "failed", reason[:255]
    events.record(session, "payment.failed", aggregate="order", aggregate_id=payment.order_id, reason=reason[:255])
    return "failed"


def refund(session: Session, *, gateway: PaymentGateway, payment: Payment, amount: int, reason: str, key: str):
    """Return `amount` of a payment, once per key. Never more than was paid (conditional update).

    The payment's side only: which order lines the money was for (and so the order's `refunded_total`) is
    written by the caller through `mall.orders.refunds` (ADR 0012); money the order never took (a payment
    that arrived too late) touches no line.

    This is the claim (ADR 0014): the refund row is written in the caller's transaction, and for a provider
    behind a network (`gateway.remote`) the row is `claimed`: after the commit `send_refund`
    (workers.jobs.payments, on the `refund.claimed` announcement) calls the provider and records its answer,
    and the sweep repeats the call with the same key if that never happened. A gateway with no provider
    behind it (offline, or a refund the provider already made) answers at once."""
    existing = session.scalar(sa.select(Refund).filter_by(idempotency_key=key))
    if existing is not None:
        return existing
    moved = session.execute(
        sa.update(Payment)
        .where(
            Payment.id == payment.id, Payment.status == "succeeded", Payment.refunded_amount + amount <= Payment.amount
        )
        .values(refunded_amount=Payment.refunded_amount + amount),
        execution_options={"synchronize_session": False},
    )
    if moved.rowcount != 1:
        raise Conflict("refund.exceeds_payment", "This refund would return more than was paid.")
    remote = getattr(gateway, "remote", True)
    row = Refund(payment_id=payment.id, order_id=payment.order_id, amount=amount, currency=payment.currency,
                 reason=reason, idempotency_key=key, status=CLAIMED if remote else "pending",
                 retry_at=clock.now() if remote else None, attempts=0)  # fmt: skip
    session.add(row)
    session.flush()
    if remote:
        events.announce(session, "refund.claimed", aggregate_id=row.id)
    else:
        result = gateway.refund(intent_id=payment.intent_id, amount=amount, idempotency_key=refund_key(session, payment, key),
                                metadata={"order_id": payment.order_id, "refund_id": row.id})  # fmt: skip
        row.status, row.gateway_refund_id = result.status, result.refund_id
    events.record(session, "payment.refunded", aggregate="order", aggregate_id=payment.order_id,
                  amount=amount, reason=reason, refund_id=row.id)  # fmt: skip
    session.refresh(payment)
    return row


def refund_key(session: Session, payment: Payment, key: str) -> str:
    """The refund's idempotency key at the gateway: this installation, the payment and the mall's own key
    (`after-sale-{id}` alone repeats in every database)."""
    return f"{installation_id(session)}-{payment.intent_id}-{key}"


def due_intent_call_ids(session: Session, *, limit: int = 200) -> list[int]:
    return calls.due(session, GatewayCall, limit=limit)


def receive_webhook(session: Session, *, gateway: PaymentGateway, body: bytes, signature: str | None):
    """Verify and store an event once by its provider id. Returns (row, is_new)."""
    event: WebhookPayload = gateway.parse_webhook(body, signature)
    inserted = insert_on_conflict(session, WebhookEvent.__table__, index_elements=["provider", "event_id"], values={
        "provider": gateway.name, "event_id": event.event_id, "type": event.type, "payload": event.data,
        "received_at": clock.now()})  # fmt: skip
    row = session.scalar(sa.select(WebhookEvent).filter_by(provider=gateway.name, event_id=event.event_id))
    return row, inserted is not None


def process_webhook(session: Session, *, gateway: PaymentGateway, webhook_event_id: int) -> str:
    """The job behind the webhook endpoint; running it twice changes nothing the second time."""
    row = session.get(WebhookEvent, webhook_event_id, with_for_update=True)
    if row is None or row.processed_at is not None:
        return "already_processed"
    handler = _HANDLERS.get(row.type)
    row.outcome = handler(session, gateway, row.payload) if handler else "ignored"
    if row.outcome != WAITING:  # a waiting event stays unprocessed: the sweep of unprocessed events runs it again
        row.processed_at = clock.now()
    return row.outcome


def unprocessed_webhook_ids(session: Session, *, older_than, limit: int = 500) -> list[int]:
    """Events stored but never processed (their job was lost): for the periodic sweep."""
    query = (
        sa.select(WebhookEvent.id)
        .where(WebhookEvent.processed_at.is_(None), WebhookEvent.received_at <= older_than)
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _intent_payment(session: Session, gateway: PaymentGateway, intent: dict) -> Payment | None:
    """The payment of an intent: its row, or one written now for an intent of ours whose row is missing. An
    intent of another installation on the same account (its metadata names another) is not ours."""
    payment = session.scalar(sa.select(Payment).filter_by(gateway=gateway.name, intent_id=intent["id"]))
    metadata = intent.get("metadata") or {}
    if payment is None and metadata.get("order_id") and metadata.get("installation") == installation_id(session):
        order = session.get(Order, int(metadata["order_id"]))
        payment = _record_payment(session, gateway.name, intent["id"], order)[0] if order else None
    return payment


def _on_succeeded(session: Session, gateway: PaymentGateway, intent: dict) -> str:
    payment = _intent_payment(session, gateway, intent)
    if payment is None:
        return "unknown_intent"
    amount, currency = int(intent.get("amount_received") or intent["amount"]), intent["currency"].upper()
    return payment_succeeded(session, gateway=gateway, payment=payment, amount=amount, currency=currency)


def _on_failed(session: Session, gateway: PaymentGateway, intent: dict) -> str:
    payment = _intent_payment(session, gateway, intent)
    if payment is None:
        return "unknown_intent"
    error = intent.get("last_payment_error") or {}
    return payment_failed(session, payment=payment, reason=error.get("message") or error.get("code") or "failed")


def _on_charge_refunded(session: Session, gateway: PaymentGateway, charge: dict) -> str:
    """Reconcile: our refunds the provider confirms become succeeded; refunds made outside the mall
    (e.g. in the Stripe dashboard) are written per order line or parked for an operator (`external`)."""
    from mall.payments import external

    payment = session.scalar(sa.select(Payment).filter_by(gateway=gateway.name, intent_id=charge.get("payment_intent")))
    if payment is None:
        return "unknown_intent"
    if payment.status != "succeeded" and not _never_booked(session, payment):
        log.warning("payment %s: a refund event came before the payment's success; waiting for it", payment.id)
        return WAITING  # events overtake each other: book the refund once the payment is
    for item in (charge.get("refunds") or {}).get("data", []):
        ours = _our_refund(session, payment, item)
        if ours is not None:
            ours.gateway_refund_id = ours.gateway_refund_id or item["id"]
            ours.status = "succeeded" if item.get("status") == "succeeded" else ours.status
        elif item.get("status") == "succeeded":
            amount = int(item["amount"])
            external.record(session, payment=payment, refund_id=item["id"], amount=amount,
                            record_refund=functools.partial(refund, session, gateway=_Recorded(item["id"]),
                                                            payment=payment, amount=amount))  # fmt: skip
    return "reconciled"


def _never_booked(session: Session, payment: Payment) -> bool:
    """The payment's success came with another amount: its anomaly row is the record, nothing will book it."""
    query = sa.select(PaymentAnomaly.id).filter_by(kind="amount_mismatch", reference=payment.intent_id).limit(1)
    return session.scalar(query) is not None


def _our_refund(session: Session, payment: Payment, item: dict) -> Refund | None:
    """The refund row of a provider refund: by its id, or, for one claimed whose answer is not recorded yet
    (the event can come first), by the row id we sent in its metadata, on this payment and for its amount."""
    ours = session.scalar(sa.select(Refund).filter_by(gateway_refund_id=item["id"]))
    sent = str((item.get("metadata") or {}).get("refund_id") or "")
    if ours is None and sent.isdigit():
        ours = session.scalar(sa.select(Refund).filter_by(id=int(sent), payment_id=payment.id, status=CLAIMED,
                                                          amount=int(item["amount"])))  # fmt: skip
    return ours


class _Recorded:
    """Stands in for the gateway when a refund already happened at the provider and only needs recording."""

    name = "recorded"
    remote = False  # nothing to call: the answer is known

    def __init__(self, refund_id: str):
        self.refund_id = refund_id

    def refund(self, *, intent_id, amount, idempotency_key, metadata):
        return RefundResult(refund_id=self.refund_id, status="succeeded", intent_id=intent_id)


_HANDLERS = {
    "payment_intent.succeeded": _on_succeeded,
    "payment_intent.payment_failed": _on_failed,
    "charge.refunded": _on_charge_refunded,
}


def handle_webhooks(handlers: dict) -> None:
    """More event types for the provider's webhook (the composition root: `transfer.*` for guide payouts). Each is
    (session, gateway, data.object) -> outcome, run once per stored event by the same job."""
    _HANDLERS.update(handlers)


def webhook_types() -> list[str]:
    return sorted(_HANDLERS)
