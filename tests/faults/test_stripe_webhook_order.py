"""Stripe webhooks arriving twice, late or out of order. What already had a test (tests/api/test_stripe_payments.py):
one event delivered ten times at once moves the order once; a payment arriving after the order was cancelled is
refunded (ADR 0004); the provider's refund event arriving before our record of the refund
(tests/api/test_gateway_calls.py). Here: the events of one payment in the wrong order."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.payments.models import Payment, Refund, WebhookEvent
from tests.api import test_stripe_payments as stripe_tests
from tests.api.test_stripe_payments import order_row, placed_order, post_webhook, run_jobs, succeeded
from tests.fakes.stripe import event
from workers.jobs import payments as payment_jobs

fake_stripe, stripe_app, client, shop = (stripe_tests.fake_stripe, stripe_tests.stripe_app, stripe_tests.client,
                                         stripe_tests.shop)  # fmt: skip
pytestmark = pytest.mark.refund_audit


def declined(intent_id: str, amount: int) -> bytes:
    obj = {"id": intent_id, "object": "payment_intent", "amount": amount, "currency": "cny",
           "status": "requires_payment_method", "last_payment_error": {"message": "Your card was declined."}}  # fmt: skip
    return event("payment_intent.payment_failed", obj)


def refunded_in_dashboard(intent_id: str, refund_id: str, amount: int) -> bytes:
    charge = {"id": "ch_1", "object": "charge", "payment_intent": intent_id, "amount_refunded": amount,
              "refunds": {"data": [{"id": refund_id, "amount": amount, "status": "succeeded", "metadata": {}}]}}  # fmt: skip
    return event("charge.refunded", charge)


def test_a_declined_attempt_reported_after_the_success_leaves_the_order_paid(shop, client, stripe_app, settings):
    """Guards payment_failed's state check (mall.payments.services.payment_failed: only a pending payment
    fails): a first card declined, a second one taken, and Stripe delivers the decline last."""
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    post_webhook(client, succeeded(intent_id, order["payable_total"], order_id=order["id"]))
    post_webhook(client, declined(intent_id, order["payable_total"]))
    run_jobs(settings)

    assert order_row(stripe_app, order["id"]).status == "paid"
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(Payment.status)) == "succeeded"
        outcomes = db.session.execute(sa.select(WebhookEvent.type, WebhookEvent.outcome).order_by(WebhookEvent.id))
        assert list(outcomes) == [("payment_intent.succeeded", "paid"), ("payment_intent.payment_failed", "ignored")]


def test_a_refund_reported_before_the_payment_is_booked_once_the_payment_is(shop, client, stripe_app, settings):
    """Guards the webhook job's retry (workers.jobs.payments.sweep_unprocessed_webhooks, behind an event whose
    processing failed and rolled back): a dashboard refund of the whole payment whose event overtakes the
    payment's. The refund is booked once the payment is, on every line, once."""
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    total = order["payable_total"]
    post_webhook(client, refunded_in_dashboard(intent_id, "re_early", total))
    run_jobs(settings)
    with stripe_app.app_context():
        early = db.session.scalar(sa.select(WebhookEvent))
        assert (early.outcome, early.processed_at) == ("waiting_for_payment", None)  # not dropped as done
    post_webhook(client, succeeded(intent_id, total, order_id=order["id"]))
    run_jobs(settings)
    clock.advance(timedelta(minutes=3))
    payment_jobs.sweep_unprocessed_webhooks()
    payment_jobs.sweep_unprocessed_webhooks()

    assert stripe_tests.payment_refunded(stripe_app, order["id"]) == total
    assert stripe_tests.line_refund(stripe_app, order["id"]) == (2, total, total)
    assert order_row(stripe_app, order["id"]).status == "closed"
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).where(WebhookEvent.processed_at.is_(None))) == 0


def test_a_refund_of_a_payment_never_booked_does_not_wait_for_it(shop, client, stripe_app, settings):
    """The other side of the wait above (mall.payments.services._never_booked): a payment of another amount is
    an anomaly and never booked, so a refund of it is processed at once (its anomaly row is the record)."""
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    post_webhook(client, succeeded(intent_id, order["payable_total"] - 1, order_id=order["id"]))
    run_jobs(settings)
    post_webhook(client, refunded_in_dashboard(intent_id, "re_mismatch", order["payable_total"] - 1))
    run_jobs(settings)

    with stripe_app.app_context():
        rows = db.session.execute(sa.select(WebhookEvent.outcome, WebhookEvent.processed_at).order_by(WebhookEvent.id))
        assert [(outcome, at is not None) for outcome, at in rows] == [("amount_mismatch", True), ("reconciled", True)]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0
    assert order_row(stripe_app, order["id"]).status == "pending_payment"
