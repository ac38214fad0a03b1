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
