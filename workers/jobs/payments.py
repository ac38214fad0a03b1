"""Webhook processing runs here, off the request path; it is idempotent per stored event."""

from __future__ import annotations

from mall.payments import services as payments
from mall.payments.factory import gateway_for
from workers import runtime
from workers.runtime import unit_of_work


def process_payment_webhook(webhook_event_id: int) -> str:
    with unit_of_work() as session:
        gateway = gateway_for(runtime.settings())
        return payments.process_webhook(session, gateway=gateway, webhook_event_id=webhook_event_id)


def sweep_unprocessed_webhooks() -> int:
    """Process events whose job never ran (Redis hiccup after the webhook was stored)."""
    from datetime import timedelta

    from mall import clock

    with unit_of_work() as session:
        ids = payments.unprocessed_webhook_ids(session, older_than=clock.now() - timedelta(minutes=2))
    for event_id in ids:
        process_payment_webhook(event_id)
    return len(ids)
