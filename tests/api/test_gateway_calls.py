"""Payment provider calls are claim -> commit -> call -> record (ADR 0014), against the fake Stripe with
faults injected: the gateway times out, the process dies after the call and before the record, the record's
commit fails, a claimed refund is never sent. A sweep completes each with the same idempotency key: one
intent, one refund at the provider, never a second."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.extensions import db
from mall import clock
from mall.db import engine_url
from mall.events import DomainEvent
from mall.orders.models import Order
from mall.payments import refund_calls
from mall.payments import services as payments
from mall.payments.models import GatewayCall, Payment, Refund
from mall.payments.stripe_gateway import StripeGateway
from tests.api import test_stripe_payments as stripe_tests
from tests.api.test_group_buy import NOW, campaign, key, shopper
from tests.api.test_stripe_payments import (
    WEBHOOK_SECRET,
    approve,
    ask_refund,
    order_row,
    paid_by_stripe,
    placed_order,
    post_webhook,
    run_jobs,
    succeeded,
)
from tests.fakes.stripe import event
from workers.jobs import group_buy as group_jobs
from workers.jobs import payments as payment_jobs

# The Stripe app, its client and shop, and the fake Stripe, as in test_stripe_payments.
fake_stripe, stripe_app, client, shop = (stripe_tests.fake_stripe, stripe_tests.stripe_app, stripe_tests.client,
                                         stripe_tests.shop)  # fmt: skip
INTENTS, REFUNDS = "/v1/payment_intents", "/v1/refunds"
AFTER_LEASE = timedelta(minutes=6)


@pytest.fixture
def gateway(stripe_app, fake_stripe, monkeypatch) -> StripeGateway:
    """The app's and the jobs' Stripe gateway, with a short timeout and no client-side retries."""
    quick = StripeGateway(api_key="sk_test_fake", webhook_secret=WEBHOOK_SECRET, api_base=fake_stripe.base_url,
                          payment_method_types=["card"], timeout=0.5, retries=0)  # fmt: skip
    monkeypatch.setitem(stripe_app.extensions, "mall.gateway", quick)
    monkeypatch.setattr(payment_jobs, "gateway_for", lambda settings: quick)
    monkeypatch.setattr(group_jobs, "gateway_for", lambda settings: quick)
    return quick


@pytest.fixture
def fail_commit_after(monkeypatch):
    """`fail_commit_after(module, name)`: the wrapped function runs, then the commit of its transaction fails."""
    armed = []

    def boom(session):
        if session.info.pop("fail_commit", False):
            raise RuntimeError("injected: the record's commit fails")

    sa.event.listen(Session, "before_commit", boom)

    def arm(module, name):
        original = getattr(module, name)

        def wrapped(session, **kwargs):
            result = original(session, **kwargs)
            if not armed:
                armed.append(True)
                session.info["fail_commit"] = True
            return result

        monkeypatch.setattr(module, name, wrapped)

    yield arm
    sa.event.remove(Session, "before_commit", boom)


def die_after_the_call(monkeypatch, module, name):
    """The call was made; the process dies before its answer is recorded (once)."""
    original, died = getattr(module, name), []

    def dying(session, **kwargs):
        if not died:
            died.append(True)
            raise RuntimeError("injected: the process dies after the call")
        return original(session, **kwargs)

    monkeypatch.setattr(module, name, dying)


def rows(app, model) -> list:
    with app.app_context():
        found = list(db.session.scalars(sa.select(model).order_by(model.id)))
        db.session.expunge_all()
        return found


def test_pay_commits_its_claim_first_and_holds_no_transaction_during_the_call(shop, stripe_app, gateway, settings):
    me, order = placed_order(shop)
    seen = {}
    other = sa.create_engine(engine_url(settings.database_url))
    original = gateway.create_intent

    def spying(**kwargs):
        seen["request_in_transaction"] = db.session().in_transaction()
        with other.connect() as conn:  # another connection sees the claim: it committed before the call
            seen["claims"] = conn.execute(sa.text("SELECT status, idempotency_key FROM gateway_calls")).all()
        return original(**kwargs)

    gateway.create_intent = spying
    resp = shop.pay(me, order["id"])
    other.dispose()
    assert resp.status_code == 200, resp.get_json()
    assert seen["request_in_transaction"] is False
    [(status, key)] = seen["claims"]
    assert status == "claimed" and key.endswith(f"-{order['payable_total']}-CNY")
    [call] = rows(stripe_app, GatewayCall)
    assert (call.status, call.reference, call.attempts) == ("done", resp.get_json()["intent_id"], 1)


def test_a_payment_intent_call_that_times_out_is_completed_by_the_sweep_with_the_same_key(
    shop, stripe_app, gateway, fake_stripe
):
    me, order = placed_order(shop)
    fake_stripe.stall(INTENTS, 1.5)  # Stripe makes the intent; its answer comes too late for the client
    resp = shop.pay(me, order["id"])
    assert resp.status_code == 503 and resp.get_json()["code"] == "payment.gateway_unavailable", resp.get_json()
    [call] = rows(stripe_app, GatewayCall)
    assert (call.status, call.attempts) == ("claimed", 1) and call.last_error.startswith("payment.gateway_")
    assert rows(stripe_app, Payment) == []
    time.sleep(1.2)  # the stalled request finishes at the provider
    assert payment_jobs.sweep_gateway_calls() == 0  # not due yet: it is retried after a delay
    clock.advance(AFTER_LEASE)
    assert payment_jobs.sweep_gateway_calls() == 1
    [payment] = rows(stripe_app, Payment)
    assert list(fake_stripe.intents) == [payment.intent_id]  # the one intent Stripe made, not a second
    assert len(set(fake_stripe.keys)) == 1
    assert rows(stripe_app, GatewayCall)[0].status == "done"


@pytest.mark.parametrize("fault", ["dies_after_the_call", "record_commit_fails"])
def test_a_payment_intent_whose_answer_was_not_recorded_is_recorded_by_the_sweep(
    shop, stripe_app, gateway, fake_stripe, monkeypatch, fail_commit_after, fault
):
    me, order = placed_order(shop)
    if fault == "dies_after_the_call":
        die_after_the_call(monkeypatch, payments, "record_intent")
    else:
        fail_commit_after(payments, "record_intent")
    stripe_app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        assert shop.pay(me, order["id"]).status_code == 500
    finally:
        stripe_app.config["PROPAGATE_EXCEPTIONS"] = None
    assert len(fake_stripe.intents) == 1 and rows(stripe_app, Payment) == []
    assert rows(stripe_app, GatewayCall)[0].status == "claimed"
    assert payment_jobs.sweep_gateway_calls() == 0  # the lease of the dead caller still runs
    clock.advance(AFTER_LEASE)
    assert payment_jobs.sweep_gateway_calls() == 1
    [payment] = rows(stripe_app, Payment)
    assert list(fake_stripe.intents) == [payment.intent_id] and len(set(fake_stripe.keys)) == 1
    again = shop.pay(me, order["id"])  # the shopper's retry meets the same intent
    assert again.status_code == 200 and again.get_json()["intent_id"] == payment.intent_id
    assert len(fake_stripe.intents) == 1


def approved_refund(shop, client, settings, fake_stripe, stripe_app) -> tuple[dict, dict]:
    me, order, intent_id = paid_by_stripe(shop, client, settings)
    case = ask_refund(client, me, order)
    resp = approve(client, shop, order, case)
    assert resp.status_code == 200, resp.get_json()  # the approval stands whatever the provider does
    return order, case


@pytest.mark.parametrize("fault", ["never_sent", "times_out", "dies_after_the_call", "record_commit_fails"])
def test_a_claimed_refund_left_unanswered_is_sent_once_by_the_sweep(
    shop, client, settings, stripe_app, gateway, fake_stripe, monkeypatch, fail_commit_after, fault
):
    if fault == "never_sent":  # the process died between the approval's commit and the call
        monkeypatch.setattr(payment_jobs, "send_claimed_refund", lambda event: None)
    elif fault == "times_out":
        fake_stripe.stall(REFUNDS, 1.5)
    elif fault == "dies_after_the_call":
        die_after_the_call(monkeypatch, refund_calls, "record_refund")
    else:
        fail_commit_after(refund_calls, "record_refund")
    order, case = approved_refund(shop, client, settings, fake_stripe, stripe_app)
    [refund] = rows(stripe_app, Refund)
    assert refund.status == "claimed" and refund.amount == case["amount"]
    assert order_row(stripe_app, order["id"]).refunded_total == case["amount"]  # owed from the approval on
    made_before = 0 if fault == "never_sent" else 1
    time.sleep(1.2 if fault == "times_out" else 0)
    assert len(fake_stripe.refunds) == made_before
    clock.advance(AFTER_LEASE)
    assert payment_jobs.sweep_gateway_calls() == 1
    [refund] = rows(stripe_app, Refund)
    assert (refund.status, refund.last_error) == ("succeeded", None)
    [made] = fake_stripe.refunds.values()  # one refund at the provider, whatever happened before
    assert (made["id"], made["amount"]) == (refund.gateway_refund_id, case["amount"])
    assert len({k for k in fake_stripe.keys if "after-sale" in k}) == 1  # always the same key
    assert payment_jobs.sweep_gateway_calls() == 0
    assert len(fake_stripe.refunds) == 1


def test_a_refund_the_provider_keeps_failing_is_given_up_for_the_operator(
    shop, client, login, settings, stripe_app, gateway, fake_stripe
):
    fake_stripe.fail(REFUNDS, times=100)
    order, case = approved_refund(shop, client, settings, fake_stripe, stripe_app)
    for _ in range(10):
        clock.advance(timedelta(hours=3))
        payment_jobs.sweep_gateway_calls()
    [refund] = rows(stripe_app, Refund)
    assert refund.status == "failed" and refund.attempts == 8 and fake_stripe.refunds == {}
    anomalies = client.get("/api/v1/admin/payment-anomalies", headers=login("platform_admin")).get_json()
    assert [(a["kind"], a["details"]["refund_id"]) for a in anomalies] == [("refund_failed", refund.id)]


def paid_through_stripe(shop, client, settings, headers, order: dict) -> str:
    intent_id = shop.pay(headers, order["id"]).get_json()["intent_id"]
    post_webhook(client, succeeded(intent_id, order["payable_total"], order_id=order["id"]))
    run_jobs(settings)
    return intent_id


def nothing_locked(settings, group_id: int, user_ids: list[int]) -> bool:
    """From another connection, at once: may the group's row and the members' `users` rows be locked (on
    SQLite: may anyone write at all)?"""
    url = engine_url(settings.database_url)
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0.2, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET lock_timeout = '300ms'"))
            conn.execute(sa.text("SELECT id FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id})
            conn.execute(sa.text("SELECT id FROM users WHERE id = ANY(:u) FOR UPDATE"), {"u": user_ids})
            conn.rollback()
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def test_a_failed_group_refunds_each_member_on_its_own_with_no_lock_held_during_the_calls(
    shop, client, settings, stripe_app, gateway, fake_stripe
):
    """One member's refund failing at the provider blocks and rolls back no other member's; it stays claimed
    and the sweep sends it later. While the provider is called, neither the group's row nor a member's `users`
    row is locked, and on SQLite no write transaction is open."""
    clock.freeze(NOW)
    camp = campaign(shop, client, size=3)
    leader, address = shopper(shop)
    opened = client.post(f"/api/v1/group-campaigns/{camp['id']}/groups", json={"address_id": address},
                         headers=key(leader)).get_json()  # fmt: skip
    group_id, leader_order = opened["group"]["id"], opened["order"]
    leader_intent = paid_through_stripe(shop, client, settings, leader, leader_order)
    member, address = shopper(shop)
    member_order = client.post(f"/api/v1/groups/{group_id}/join", json={"address_id": address},
                               headers=key(member)).get_json()  # fmt: skip
    member_intent = paid_through_stripe(shop, client, settings, member, member_order)
    with stripe_app.app_context():
        user_ids = list(db.session.scalars(sa.select(Order.user_id).where(Order.id.in_([leader_order["id"],
                                                                                         member_order["id"]]))))  # fmt: skip
    fake_stripe.fail(REFUNDS, when=lambda params: params.get("payment_intent") == leader_intent)
    unlocked, original = [], gateway.refund

    def checking(**kwargs):
        unlocked.append(nothing_locked(settings, group_id, user_ids))
        return original(**kwargs)

    gateway.refund = checking
    clock.advance(timedelta(hours=24, minutes=1))
    assert group_jobs.expire_group(group_id) == "failed"
    assert unlocked == [True, True]
    by_order = {r.order_id: r for r in rows(stripe_app, Refund)}
    assert by_order[member_order["id"]].status == "succeeded"
    assert by_order[leader_order["id"]].status == "claimed" and by_order[leader_order["id"]].last_error
    assert [r["payment_intent"] for r in fake_stripe.refunds.values()] == [member_intent]
    with stripe_app.app_context():
        assert {db.session.get(Order, o["id"]).status for o in (leader_order, member_order)} == {"closed"}
    clock.advance(AFTER_LEASE)
    assert payment_jobs.sweep_gateway_calls() == 1
    assert {r.status for r in rows(stripe_app, Refund)} == {"succeeded"}
    made = sorted((r["payment_intent"], r["amount"]) for r in fake_stripe.refunds.values())
    assert made == sorted([(leader_intent, leader_order["payable_total"]),
                           (member_intent, member_order["payable_total"])])  # fmt: skip


def test_the_providers_refund_event_arriving_before_the_record_is_taken_for_ours_not_an_outside_refund(
    shop, client, settings, stripe_app, gateway, fake_stripe, monkeypatch
):
    monkeypatch.setattr(refund_calls, "record_refund", lambda session, **kwargs: "lost")  # the answer never recorded
    order, case = approved_refund(shop, client, settings, fake_stripe, stripe_app)
    [made] = fake_stripe.refunds.values()
    charge = {"id": "ch_1", "object": "charge", "payment_intent": made["payment_intent"],
              "amount_refunded": made["amount"], "refunds": {"data": [made]}}  # fmt: skip
    post_webhook(client, event("charge.refunded", charge))
    run_jobs(settings)
    [refund] = rows(stripe_app, Refund)  # not a second, "external" one
    assert (refund.status, refund.gateway_refund_id) == ("succeeded", made["id"])
    assert order_row(stripe_app, order["id"]).refunded_total == case["amount"]


def test_two_senders_of_one_claimed_refund_at_once_call_the_provider_once(
    shop, client, settings, stripe_app, gateway, fake_stripe, monkeypatch
):
    """The lease is one conditional UPDATE: of two senders (the after-commit sender and the sweep, or two
    sweeps) starting together, one calls and records, the other finds the refund taken."""
    monkeypatch.setattr(payment_jobs, "send_claimed_refund", lambda event: None)
    approved_refund(shop, client, settings, fake_stripe, stripe_app)
    [refund] = rows(stripe_app, Refund)
    barrier = threading.Barrier(2)

    def send(_):
        barrier.wait()
        return payment_jobs.send_refund(refund.id)

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(send, range(2)))
    assert outcomes == ["not_due", "succeeded"]
    assert len(fake_stripe.refunds) == 1 and len([k for k in fake_stripe.keys if "after-sale" in k]) == 1
    assert rows(stripe_app, Refund)[0].status == "succeeded"


def test_an_intent_that_took_the_money_at_once_and_died_unrecorded_pays_the_order_once_through_the_sweep(
    shop, client, stripe_app, gateway, fake_stripe, monkeypatch
):
    """The charge happened at the provider when the intent was created (a saved card confirmed at once), then
    the process died before recording it: the sweep asks again with the same key, gets the same succeeded
    intent, and the order is paid, once; nothing is charged a second time."""
    me, order = placed_order(shop)
    with stripe_app.app_context():
        row = db.session.get(Order, order["id"])
        installation = payments.installation_id(db.session)
        key, metadata = payments.intent_key(row, installation), payments.intent_metadata(row, installation)
        db.session.commit()
    fake_stripe.seed(key, {"id": "pi_charged", "object": "payment_intent", "amount": order["payable_total"],
                           "currency": "cny", "status": "succeeded", "client_secret": "pi_charged_secret",
                           "metadata": {k: str(v) for k, v in metadata.items()}})  # fmt: skip
    die_after_the_call(monkeypatch, payments, "record_intent")
    stripe_app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        assert shop.pay(me, order["id"]).status_code == 500
    finally:
        stripe_app.config["PROPAGATE_EXCEPTIONS"] = None
    assert order_row(stripe_app, order["id"]).status == "pending_payment"
    clock.advance(AFTER_LEASE)
    assert payment_jobs.sweep_gateway_calls() == 1
    paid = order_row(stripe_app, order["id"])
    assert (paid.status, paid.paid_total) == ("paid", order["payable_total"])
    [payment] = rows(stripe_app, Payment)
    assert (payment.intent_id, payment.status) == ("pi_charged", "succeeded")
    assert set(fake_stripe.keys) == {key} and fake_stripe.calls == []  # only replays: no second intent
    again = shop.pay(me, order["id"])
    assert again.status_code == 200 and again.get_json()["intent_id"] == "pi_charged"
    with stripe_app.app_context():
        paid_events = sa.select(sa.func.count()).select_from(DomainEvent).filter_by(type="order.paid")
        assert db.session.scalar(paid_events) == 1
