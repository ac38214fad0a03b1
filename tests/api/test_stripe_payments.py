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
from mall.payments import services as payments
from mall.payments.models import Installation, Payment, PaymentAnomaly, Refund, WebhookEvent
from tests.fakes.stripe import FakeStripe, event, sign
from tests.refund_audit import refund_facts
from tests.shop_helpers import Shop
from workers import queues, runtime
from workers.connection import get_redis

pytestmark = pytest.mark.refund_audit  # every order's refunds add up after each test (ADR 0012)

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


def installation(app) -> str:
    with app.app_context():
        return db.session.scalar(sa.select(Installation.installation_id))


def test_pay_creates_one_payment_intent_in_minor_units_with_our_ids(shop, fake_stripe):
    me, order = placed_order(shop)
    first = shop.pay(me, order["id"])
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["status"] == "pending" and body["client_secret"].startswith(body["intent_id"])
    path, params = fake_stripe.calls[0]
    assert path == "/v1/payment_intents"
    assert params["amount"] == str(order["payable_total"]) and params["currency"] == "cny"
    assert params["metadata"] == {"order_id": str(order["id"]), "order_number": order["number"],
                                  "installation": installation(shop.app)}  # fmt: skip
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
        # money the order never took: the payment's refund only, no line of the order was paid or refunded
        facts = refund_facts(db.session, order["id"])
        assert (facts["paid_total"], facts["refunded_total"], facts["ledger"]) == (0, 0, [])


def dashboard_refund(client, settings, intent_id: str, *refunds: tuple, metadata=None) -> None:
    """A `charge.refunded` event listing `refunds` (id, amount) on the intent's charge, processed by its job."""
    charge = {"id": "ch_1", "object": "charge", "payment_intent": intent_id,
              "amount_refunded": sum(amount for _, amount in refunds),
              "refunds": {"data": [{"id": rid, "amount": amount, "status": "succeeded", "metadata": metadata or {}}
                                   for rid, amount in refunds]}}  # fmt: skip
    assert post_webhook(client, event("charge.refunded", charge)).status_code == 200
    run_jobs(settings)


def unassigned(client, login, **query) -> list[dict]:
    resp = client.get("/api/v1/admin/unassigned-refunds", query_string=query, headers=login("platform_admin"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def assign(client, login, row_id: int, **body):
    return client.post(f"/api/v1/admin/unassigned-refunds/{row_id}/assign", json=body,
                       headers=login("platform_admin"))  # fmt: skip


def line_refund(app, order_id) -> tuple[int, int, int]:
    """(refunded units, refunded amount, order refunded total) of the order's one line."""
    with app.app_context():
        order = db.session.get(Order, order_id)
        return order.lines[0].refunded_quantity, order.lines[0].refunded_amount, order.refunded_total


def payment_refunded(app, order_id) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Payment.refunded_amount).filter_by(order_id=order_id))


def test_a_partial_dashboard_refund_is_parked_for_an_operator_not_booked_on_the_order(shop, client, stripe_app,
                                                                                     settings, login):  # fmt: skip
    me, order, intent_id = paid_by_stripe(shop, client, settings)
    dashboard_refund(client, settings, intent_id, ("re_dash", 1000))
    dashboard_refund(client, settings, intent_id, ("re_dash", 1000))  # a second delivery under a new event id

    assert payment_refunded(stripe_app, order["id"]) == 1000  # the money is gone from the payment, once
    assert line_refund(stripe_app, order["id"]) == (0, 0, 0)  # no line says which units: not the order's yet
    [parked] = unassigned(client, login)
    assert (parked["order_id"], parked["amount"], parked["status"]) == (order["id"], 1000, "open")
    assert "refund.unassigned" in [e["type"] for e in order_events(client, me, order["id"])]
    # 1000 is no set of units: one unit paid 2590; the operator's wrong guess changes nothing
    line_id = order["sub_orders"][0]["lines"][0]["id"]
    wrong = assign(client, login, parked["id"], lines=[{"order_line_id": line_id, "quantity": 1}])
    assert wrong.status_code == 409 and wrong.get_json()["code"] == "refund.assignment_mismatch", wrong.get_json()
    assert (wrong.get_json()["assigned"], wrong.get_json()["refund_amount"]) == (2590, 1000)
    assert line_refund(stripe_app, order["id"]) == (0, 0, 0)
    assert unassigned(client, login)[0]["status"] == "open"


def test_an_operator_assigns_a_dashboard_refund_to_the_units_it_paid_for(shop, client, stripe_app, settings, login):
    me, order, intent_id = paid_by_stripe(shop, client, settings)
    dashboard_refund(client, settings, intent_id, ("re_one_unit", 2590))
    [parked] = unassigned(client, login)
    line_id = order["sub_orders"][0]["lines"][0]["id"]

    resp = assign(client, login, parked["id"], lines=[{"order_line_id": line_id, "quantity": 1}])

    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "assigned" and resp.get_json()["assignment"]["lines"][0]["quantity"] == 1
    assert line_refund(stripe_app, order["id"]) == (1, 2590, 2590)
    assert order_row(stripe_app, order["id"]).status == "paid"  # one unit left: still shippable
    again = assign(client, login, parked["id"], lines=[{"order_line_id": line_id, "quantity": 1}])
    assert again.status_code == 409 and again.get_json()["code"] == "refund.already_assigned"
    assert unassigned(client, login) == []  # none open


def test_a_dashboard_refund_of_everything_left_refunds_every_line_and_closes_the_order(shop, client, stripe_app,
                                                                                      settings, login, fake_stripe):  # fmt: skip
    me, order, intent_id = paid_by_stripe(shop, client, settings)
    assert approve(client, shop, order, ask_refund(client, me, order)).status_code == 200  # 1 unit: 2590, ours
    ours = next(iter(fake_stripe.refunds))
    dashboard_refund(client, settings, intent_id, ("re_parked", 1000))  # parked first
    dashboard_refund(client, settings, intent_id, (ours, 2590), ("re_parked", 1000), ("re_rest", 1590))

    assert line_refund(stripe_app, order["id"]) == (2, 5180, 5180)  # the parked 1000 went with the rest
    assert payment_refunded(stripe_app, order["id"]) == 5180
    closed = order_row(stripe_app, order["id"])
    assert closed.status == "closed"
    assert unassigned(client, login, status="assigned")[0]["assignment"] == {"rest_of_order": "external-re_rest"}
    sub_id = order["sub_orders"][0]["id"]
    ship = client.post(f"/api/v1/admin/sub-orders/{sub_id}/ship", json={"carrier": "SF", "tracking_number": "1"},
                       headers=shop.merchant(order["sub_orders"][0]["brand_id"]))  # fmt: skip
    assert ship.status_code == 409  # a fully refunded sub-order never ships


def anomalies(client, login, **query) -> list[dict]:
    resp = client.get("/api/v1/admin/payment-anomalies", query_string=query, headers=login("platform_admin"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def order_events(client, me, order_id) -> list[dict]:
    return client.get(f"/api/v1/orders/{order_id}/events", headers=me).get_json()


def foreign_intent(order_id, amount, **metadata) -> dict:
    return {"id": "pi_elsewhere", "object": "payment_intent", "amount": amount, "currency": "cny",
            "status": "succeeded", "client_secret": "pi_elsewhere_secret_y",
            "metadata": {"order_id": str(order_id), **metadata}}  # fmt: skip


def test_another_database_on_the_same_account_never_gets_this_orders_intent_back(shop, fake_stripe):
    """Another environment (or a restored copy) paid its own order of the same id, amount and currency within
    Stripe's 24 hours: the key it used then is not ours, so this order gets its own intent."""
    me, order = placed_order(shop)
    fake_stripe.seed(f"order-{order['id']}-{order['payable_total']}-CNY",
                     foreign_intent(order["id"], order["payable_total"], order_number="20260101" + "0" * 9 + "1"))  # fmt: skip
    paid = shop.pay(me, order["id"])
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["intent_id"] != "pi_elsewhere" and paid.get_json()["status"] == "pending"
    assert fake_stripe.intents[paid.get_json()["intent_id"]]["metadata"]["order_id"] == str(order["id"])


def test_the_intent_key_is_this_installations_own(shop, stripe_app, fake_stripe):
    """The same order in a database with another installation id asks Stripe with another key."""
    me, order = placed_order(shop)
    first = shop.pay(me, order["id"]).get_json()
    with stripe_app.app_context():
        db.session.execute(sa.update(Installation).values(installation_id="0" * 32))
        db.session.commit()
    second = shop.pay(me, order["id"]).get_json()
    assert len(set(fake_stripe.keys)) == 2 and all(installation(stripe_app) in k for k in fake_stripe.keys[1:])
    assert first["intent_id"] != second["intent_id"]


def test_an_intent_of_another_order_is_refused_and_recorded(shop, client, login, stripe_app, fake_stripe):
    """Whatever the key, an intent whose metadata names another order (or installation) is not taken for this
    order's: 409, nothing recorded as this order's payment, an anomaly for the operator."""
    me, order = placed_order(shop)
    with stripe_app.app_context():
        row = db.session.get(Order, order["id"])
        key = payments.intent_key(row, payments.installation_id(db.session))
        db.session.commit()
    fake_stripe.seed(key, foreign_intent(order["id"], order["payable_total"], order_number=order["number"],
                                         installation="someone-else"))  # fmt: skip
    resp = shop.pay(me, order["id"])
    assert resp.status_code == 409 and resp.get_json()["code"] == "payment.foreign_intent", resp.get_json()
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
    assert order_row(stripe_app, order["id"]).status == "pending_payment"
    [seen] = anomalies(client, login)
    assert (seen["order_id"], seen["kind"], seen["reference"]) == (order["id"], "foreign_intent", "pi_elsewhere")
    assert "payment.anomaly" in [e["type"] for e in order_events(client, me, order["id"])]


def test_a_succeeded_event_of_another_installation_does_not_pay_an_order_of_the_same_id(shop, client, stripe_app,
                                                                                        settings):  # fmt: skip
    """Stripe sends every endpoint of the account every event: another environment's intent for its order 1
    is not a payment of our order 1."""
    me, order = placed_order(shop)
    payload = event("payment_intent.succeeded", foreign_intent(order["id"], order["payable_total"],
                                                               installation="someone-else"))  # fmt: skip
    assert post_webhook(client, payload).status_code == 200
    run_jobs(settings)
    assert order_row(stripe_app, order["id"]).status == "pending_payment"
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(WebhookEvent.outcome)) == "unknown_intent"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0


def test_a_signed_event_paying_another_amount_is_an_anomaly_operators_see(shop, client, login, stripe_app, settings):
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    post_webhook(client, succeeded(intent_id, order["payable_total"] - 1, order_id=order["id"]))
    run_jobs(settings)

    assert order_row(stripe_app, order["id"]).status == "pending_payment"
    [seen] = anomalies(client, login)
    assert seen["order_id"] == order["id"] and seen["kind"] == "amount_mismatch" and seen["reference"] == intent_id
    assert (seen["expected_amount"], seen["expected_currency"]) == (order["payable_total"], "CNY")
    assert (seen["received_amount"], seen["received_currency"]) == (order["payable_total"] - 1, "CNY")
    assert anomalies(client, login, kind="foreign_intent") == []
    assert [a["id"] for a in anomalies(client, login, order_id=order["id"])] == [seen["id"]]
    [noted] = [e for e in order_events(client, me, order["id"]) if e["type"] == "payment.anomaly"]
    assert noted["payload"]["anomaly_id"] == seen["id"] and noted["payload"]["kind"] == "amount_mismatch"
    brand_admin = login("brand_admin", brand_id=order["sub_orders"][0]["brand_id"])
    for headers in (me, brand_admin):
        assert client.get("/api/v1/admin/payment-anomalies", headers=headers).status_code == 403
    post_webhook(client, succeeded(intent_id, order["payable_total"] - 1, order_id=order["id"]))  # again
    run_jobs(settings)
    assert order_row(stripe_app, order["id"]).status == "pending_payment"
    with stripe_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PaymentAnomaly)) == 2


def paid_by_stripe(shop, client, settings) -> tuple[dict, dict, str]:
    me, order = placed_order(shop)
    intent_id = shop.pay(me, order["id"]).get_json()["intent_id"]
    post_webhook(client, succeeded(intent_id, order["payable_total"], order_id=order["id"]))
    run_jobs(settings)
    return me, order, intent_id


def ask_refund(client, me, order) -> dict:
    sub = order["sub_orders"][0]
    resp = client.post(f"/api/v1/sub-orders/{sub['id']}/after-sales", headers=me,
                       json={"reason": "no", "lines": [{"order_line_id": sub["lines"][0]["id"], "quantity": 1}]})  # fmt: skip
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def approve(client, shop, order, case):
    return client.post(f"/api/v1/admin/after-sales/{case['id']}/approve", json={},
                       headers=shop.merchant(order["sub_orders"][0]["brand_id"]))  # fmt: skip


def test_a_refund_key_another_database_used_does_not_swallow_this_refund(shop, client, settings, fake_stripe):
    me, order, intent_id = paid_by_stripe(shop, client, settings)
    case = ask_refund(client, me, order)
    fake_stripe.seed(f"after-sale-{case['id']}", {"id": "re_elsewhere", "object": "refund", "amount": case["amount"],
                                                  "payment_intent": "pi_elsewhere", "status": "succeeded"})  # fmt: skip
    assert approve(client, shop, order, case).status_code == 200
    assert [(r["payment_intent"], r["amount"]) for r in fake_stripe.refunds.values()] == [(intent_id, case["amount"])]


def test_a_refund_of_another_payment_is_not_taken_for_this_one_and_operators_see_it(shop, client, login, stripe_app,
                                                                                    settings, fake_stripe):  # fmt: skip
    """The approval commits before the provider is called (ADR 0014), so it stands; an answer that is another
    payment's refund is not recorded as this one's: the refund is failed, and the operator sees an anomaly."""
    me, order, intent_id = paid_by_stripe(shop, client, settings)
    case = ask_refund(client, me, order)
    with stripe_app.app_context():
        payment = db.session.scalar(sa.select(Payment))
        key = payments.refund_key(db.session, payment, f"after-sale-{case['id']}")
    fake_stripe.seed(key, {"id": "re_elsewhere", "object": "refund", "amount": case["amount"],
                           "payment_intent": "pi_elsewhere", "status": "succeeded"})  # fmt: skip
    resp = approve(client, shop, order, case)
    assert resp.status_code == 200, resp.get_json()
    with stripe_app.app_context():
        row = db.session.scalar(sa.select(Refund))
        assert (row.status, row.gateway_refund_id, row.last_error) == ("failed", None, "refund.foreign_refund")
    [seen] = anomalies(client, login)
    assert (seen["kind"], seen["reference"], seen["details"]["refund_of"]) == ("foreign_refund", "re_elsewhere",
                                                                              "pi_elsewhere")  # fmt: skip
    assert "payment.refund_failed" in [e["type"] for e in order_events(client, me, order["id"])]


def test_a_refund_of_ours_whose_answer_was_not_recorded_yet_is_not_taken_for_a_dashboard_refund(
    shop, client, stripe_app, settings, login
):
    me, order, intent_id = paid_by_stripe(shop, client, settings)
    case = ask_refund(client, me, order)
    assert approve(client, shop, order, case).status_code == 200
    with stripe_app.app_context():  # as if the process died after the provider's call, before recording it
        row = db.session.scalar(sa.select(Refund).filter_by(reason="after_sale"))
        row.gateway_refund_id, row.status, refund_id = None, "claimed", row.id
        db.session.commit()

    dashboard_refund(client, settings, intent_id, ("re_unrecorded", 2590), metadata={"refund_id": str(refund_id)})

    assert unassigned(client, login) == []  # recognised as ours by the id we sent: not parked, not doubled
    assert payment_refunded(stripe_app, order["id"]) == 2590
    assert line_refund(stripe_app, order["id"]) == (1, 2590, 2590)
    with stripe_app.app_context():
        seen = db.session.get(Refund, refund_id)
        assert (seen.status, seen.gateway_refund_id) == ("succeeded", "re_unrecorded")
