"""Payment jobs: webhook processing (idempotent per stored event), and the provider calls made after a
commit (claim -> commit -> call -> record, ADR 0014) with the sweep that repeats the ones whose caller died."""

from __future__ import annotations

import logging
from datetime import timedelta

from mall import clock
from mall.errors import DomainError
from mall.payments import calls, refund_calls
from mall.payments import services as payments
from mall.payments.factory import gateway_for
from workers import runtime
from workers.runtime import unit_of_work

log = logging.getLogger(__name__)


def process_payment_webhook(webhook_event_id: int) -> str:
    with unit_of_work() as session:
        gateway = gateway_for(runtime.settings())
        return payments.process_webhook(session, gateway=gateway, webhook_event_id=webhook_event_id)


def sweep_unprocessed_webhooks() -> int:
    """Process events whose job never ran (Redis hiccup after the webhook was stored)."""
    with unit_of_work() as session:
        ids = payments.unprocessed_webhook_ids(session, older_than=clock.now() - timedelta(minutes=2))
    for event_id in ids:
        process_payment_webhook(event_id)
    return len(ids)


def send_refund(refund_id: int) -> str:
    """Take the claimed refund's lease (one transaction), call the provider with no transaction open, record
    the answer (a second one). Safe to run twice: the provider replays the key, the record is conditional."""
    with unit_of_work() as session:
        call = refund_calls.take_refund(session, refund_id=refund_id)
    if isinstance(call, str):
        return call
    gateway = gateway_for(runtime.settings())
    answer = calls.call(gateway.refund, call.request())
    with unit_of_work() as session:
        return refund_calls.record_refund(session, gateway=gateway, call=call, answer=answer)


def complete_intent_call(call_id: int) -> str:
    """The sweep's run of a PaymentIntent call whose caller died or failed: same key, so the same intent."""
    with unit_of_work() as session:
        call = payments.take_intent_call(session, call_id=call_id)
    if isinstance(call, str):
        return call
    gateway = gateway_for(runtime.settings())
    answer = calls.call(gateway.create_intent, call.request())
    with unit_of_work() as session:
        outcome = payments.record_intent(session, gateway=gateway, call=call, answer=answer)
    return outcome.code if isinstance(outcome, DomainError) else "recorded"


def sweep_gateway_calls() -> int:
    """Calls claimed and never answered whose lease ran out (the caller died after the call, its record could
    not commit, or the call failed and is due again). Each one apart: one failing stops none of the others."""
    with unit_of_work() as session:
        intents, refunds = payments.due_intent_call_ids(session), refund_calls.due_refund_ids(session)
    done = 0
    for job, ids in ((complete_intent_call, intents), (send_refund, refunds)):
        for row_id in ids:
            try:
                done += job(row_id) not in ("not_due", "retry_later")
            except Exception:  # its work rolled back; still claimed, so the next sweep tries it again
                log.exception("%s(%s) failed", job.__name__, row_id)
    return done


def send_claimed_refund(event) -> None:
    """After-commit subscriber of `refund.claimed`: send it now. A failure is the sweep's to retry, never the
    committed change's (whoever committed it has answered or moved on)."""
    try:
        send_refund(event.aggregate_id)
    except Exception:
        log.exception("refund %s: sending after commit failed; the sweep will", event.aggregate_id)
