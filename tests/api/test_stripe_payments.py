"""Stripe behind the gateway interface, against a local fake of Stripe's API; signed webhooks."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from api import create_app
from api.extensions import db
from mall.events import DomainEvent
from mall.orders.models import Order
from mall.payments.models import Payment, Refund, WebhookEvent
from tests.fakes.stripe import FakeStripe, event, sign
from tests.shop_helpers import Shop
from workers import queues, runtime
from workers.connection import get_redis

WEBHOOK_SECRET = "whsec_test_secret"
WEBHOOK = "/api/v1/payments/stripe/webhook"


@pytest.fixture(scope="module")
def fake_stripe():
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def stripe_app(settings, app, fake_stripe):
    stripe_settings = replace(settings, payment_gateway="stripe", stripe_api_key="sk_test_fake",
                              stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=fake_stripe.base_url,
                              stripe_payment_method_types=("card", "wechat_pay"))  # fmt: skip
    yield create_app(stripe_settings)
    fake_stripe.reset()
    runtime.configure(settings)


@pytest.fixture
def client(stripe_app):
    return stripe_app.test_client()


@pytest.fixture
def shop(stripe_app, client, login):
    return Shop(stripe_app, client, login)


def run_jobs(settings) -> None:
    conn = get_redis(settings)
    SimpleWorker([queues.Queue(n, connection=conn) for n in (queues.HIGH, queues.DEFAULT)], connection=conn).work(
        burst=True
    )


def placed_order(shop) -> tuple[dict, dict]:
    brand = shop.brand()
    sku = shop.sku(brand, price=2590, stock=5)
    me = shop.shopper()
    resp = shop.place(me, [shop.add(me, sku, 2)], shop.address(me))
    assert resp.status_code == 201, resp.get_json()
    return me, resp.get_json()


def succeeded(intent_id: str, amount: int, currency="cny", order_id=None, event_id=None) -> bytes:
    obj = {"id": intent_id, "object": "payment_intent", "amount": amount, "amount_received": amount,
           "currency": currency, "status": "succeeded", "metadata": {"order_id": str(order_id or "")}}  # fmt: skip
    return event("payment_intent.succeeded", obj, event_id=event_id)


def post_webhook(client, payload: bytes, secret=WEBHOOK_SECRET, **kw):
    return client.post(WEBHOOK, data=payload, headers={"Stripe-Signature": sign(payload, secret, **kw),
                                                       "Content-Type": "application/json"})  # fmt: skip


def order_row(app, order_id) -> Order:
    with app.app_context():
        order = db.session.get(Order, order_id)
        db.session.expunge(order)
        return order


def test_pay_creates_one_payment_intent_in_minor_units_with_our_ids(shop, fake_stripe):
    me, order = placed_order(shop)
    first = shop.pay(me, order["id"])
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["status"] == "pending" and body["client_secret"].startswith(body["intent_id"])
    path, params = fake_stripe.calls[0]
    assert path == "/v1/payment_intents"
    assert params["amount"] == str(order["payable_total"]) and params["currency"] == "cny"
    assert params["metadata"] == {"order_id": str(order["id"]), "order_number": order["number"]}
    assert set(params["payment_method_types"].values()) == {"card", "wechat_pay"}
    again = shop.pay(me, order["id"])  # a new Idempotency-Key: still the same intent at Stripe
    assert again.get_json()["intent_id"] == body["intent_id"]
    assert len(fake_stripe.calls) == 1


def test_signed_succeeded_webhook_marks_the_order_paid_in_a_job(shop, client, stripe_app, settings):
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    resp = post_webhook(client, succeeded(intent_id, order["payable_total"], order_id=order["id"]))
    assert resp.status_code == 200 and resp.get_json() == {"received": True, "duplicate": False}
    assert order_row(stripe_app, order["id"]).status == "pending_payment"  # processing is the job's
    run_jobs(settings)
    paid = order_row(stripe_app, order["id"])
    assert paid.status == "paid" and paid.paid_total == order["payable_total"]


@pytest.mark.parametrize("how", ["wrong_secret", "stale", "missing"])
def test_bad_or_stale_signature_is_400_and_changes_nothing(shop, client, stripe_app, how):
    me, order = placed_order(shop)
    payload = succeeded("pi_x", order["payable_total"], order_id=order["id"])
    if how == "missing":
        resp = client.post(WEBHOOK, data=payload, headers={"Content-Type": "application/json"})
    elif how == "stale":
        resp = post_webhook(client, payload, timestamp=int(time.time()) - 3600)
    else:
        resp = post_webhook(client, payload, secret="whsec_someone_else")
    assert resp.status_code == 400 and resp.get_json()["code"] == "webhook.bad_signature"
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 0


def test_amount_mismatch_does_not_mark_paid(shop, client, stripe_app, settings):
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    post_webhook(client, succeeded(intent_id, order["payable_total"] - 1, order_id=order["id"]))
    run_jobs(settings)
    assert order_row(stripe_app, order["id"]).status == "pending_payment"
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(WebhookEvent.outcome)) == "amount_mismatch"


def test_payment_failed_is_recorded_and_order_stays_payable(shop, client, stripe_app, settings):
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    obj = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": order["payable_total"],
        "currency": "cny",
        "status": "requires_payment_method",
        "last_payment_error": {"message": "Your card was declined."},
    }
    post_webhook(client, event("payment_intent.payment_failed", obj))
    run_jobs(settings)
    with stripe_app.app_context():
        payment = db.session.scalar(sa.select(Payment))
        assert (payment.status, payment.failure_reason) == ("failed", "Your card was declined.")
    assert order_row(stripe_app, order["id"]).status == "pending_payment"


def test_ten_concurrent_replays_of_one_event_move_the_order_once(shop, stripe_app, settings):
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    payload = succeeded(intent_id, order["payable_total"], order_id=order["id"], event_id="evt_same")

    def deliver(_):
        return post_webhook(stripe_app.test_client(), payload).get_json()

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(deliver, range(10)))
    run_jobs(settings)
    run_jobs(settings)
    assert sum(not a["duplicate"] for a in answers) == 1
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 1
        paid_events = sa.select(sa.func.count()).select_from(DomainEvent).filter_by(type="order.paid")
        assert db.session.scalar(paid_events) == 1
    assert order_row(stripe_app, order["id"]).paid_total == order["payable_total"]


def test_payment_arriving_after_cancellation_is_refunded_automatically(shop, client, stripe_app, settings,
                                                                      fake_stripe):  # fmt: skip
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=me).get_json()["status"] == "cancelled"
    post_webhook(client, succeeded(intent_id, order["payable_total"], order_id=order["id"]))
    run_jobs(settings)
    run_jobs(settings)
    assert order_row(stripe_app, order["id"]).status == "cancelled"
    refunds = list(fake_stripe.refunds.values())
    assert [(r["payment_intent"], r["amount"]) for r in refunds] == [(intent_id, order["payable_total"])]
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(Refund.reason)) == "paid_after_close"


def test_charge_refunded_in_the_dashboard_is_reconciled(shop, client, stripe_app, settings):
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    post_webhook(client, succeeded(intent_id, order["payable_total"], order_id=order["id"]))
    run_jobs(settings)
    charge = {"id": "ch_1", "object": "charge", "payment_intent": intent_id, "amount_refunded": 1000,
              "refunds": {"data": [{"id": "re_dash", "amount": 1000, "status": "succeeded"}]}}  # fmt: skip
    post_webhook(client, event("charge.refunded", charge))
    post_webhook(client, event("charge.refunded", charge))  # a second delivery under a new event id
    run_jobs(settings)
    refunded = order_row(stripe_app, order["id"])
    assert refunded.refunded_total == 1000
