"""Stripe Connect payouts against the local fake of Stripe's API (ADR 0023, ADR 0014): a transfer per payout
under the payout's own idempotency key, claimed and committed before the call and recorded after it; the process
killed between claim and call or between call and record, a batch run again, the provider down, a duplicated or
early `transfer.*` webhook: always exactly one transfer at Stripe and one debit in the ledger. A refused transfer
or a reversal gives the money back once. The nightly reconciliation reports what differs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from api import create_app
from api.extensions import db
from mall import clock
from mall.guides import payouts
from mall.guides.payout_gateways import Manual, StripeConnect
from mall.payments.stripe_gateway import StripeGateway
from tests.api.test_stripe_payments import WEBHOOK_SECRET, post_webhook, run_jobs
from tests.catalog_helpers import assert_problem
from tests.commission_helpers import T0, at
from tests.fakes.stripe import FakeStripe, event
from tests.payout_helpers import ADMIN, Payouts
from tests.shop_helpers import Shop
from workers import runtime
from workers.jobs import payouts as payout_jobs
from workers.runtime import unit_of_work

TRANSFERS = "/v1/transfers"
AFTER_LEASE = timedelta(minutes=6)


@pytest.fixture(scope="module")
def fake_stripe():
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def stripe_app(settings, app, fake_stripe):
    stripe_settings = replace(settings, payment_gateway="stripe", stripe_api_key="sk_test_fake",
                              stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=fake_stripe.base_url,
                              stripe_payment_method_types=("card",))  # fmt: skip
    yield create_app(stripe_settings)
    fake_stripe.reset()
    runtime.configure(settings)


@pytest.fixture
def stripe(stripe_app, fake_stripe, monkeypatch) -> StripeGateway:
    """The payout jobs' Stripe client wrapper, with a short timeout and no client-side retries."""
    quick = StripeGateway(api_key="sk_test_fake", webhook_secret=WEBHOOK_SECRET, api_base=fake_stripe.base_url,
                          payment_method_types=["card"], timeout=2, retries=0)  # fmt: skip
    monkeypatch.setattr(payout_jobs, "gateways_for", lambda settings: {"stripe": StripeConnect(quick),
                                                                        "manual": Manual()})  # fmt: skip
    return quick


@pytest.fixture
def world(stripe_app, stripe, login) -> Payouts:
    at(T0)
    client = stripe_app.test_client()
    world = Payouts(Shop(stripe_app, client, login), gateway="stripe")
    world.fund(10000)
    return world


def transferred(fake) -> list[tuple[str, int, str, str]]:
    return [(t["destination"], t["amount"], t["currency"], t["metadata"]["payout_id"]) for t in fake.transfers.values()]


def died_after_the_call(world, stripe, payout_id: int):
    """The process took the payout (committed), made the transfer, and died before recording it."""
    with world.app.app_context(), unit_of_work() as session:
        call = payouts.take(session, payout_id=payout_id)
    return StripeConnect(stripe).send(call)


def test_processing_transfers_once_to_the_connected_account_under_the_payouts_key(world, fake_stripe):
    payout = world.approved(4000)
    resp = world.process()
    assert resp.status_code == 200 and resp.get_json() == {"outcomes": {str(payout["id"]): "paid"}}
    acct = f"acct_{world.guide['id']:04d}"
    assert transferred(fake_stripe) == [(acct, 4000, "cny", str(payout["id"]))]
    row = world.row(payout["id"])
    assert row.state == "paid" and row.reference == next(iter(fake_stripe.transfers))
    assert fake_stripe.keys == [row.transfer_key]
    assert world.process().get_json() == {"outcomes": {}}  # the batch again
    assert world.process([payout["id"]]).get_json() == {"outcomes": {}}
    clock.advance(AFTER_LEASE)
    assert payout_jobs.sweep_payout_transfers() == 0
    assert len(fake_stripe.transfers) == 1 and world.available() == 6000
    assert world.entries(payout["id"]) == [("payout", -4000)] and world.audit() == []


def test_killed_between_the_call_and_the_record_the_sweep_finishes_with_the_same_transfer(world, stripe, fake_stripe):
    payout = world.approved(4000)
    made = died_after_the_call(world, stripe, payout["id"])
    assert world.row(payout["id"]).state == "processing"
    assert world.process().get_json() == {"outcomes": {}}  # the lease is held: nobody calls meanwhile
    assert payout_jobs.sweep_payout_transfers() == 0
    clock.advance(AFTER_LEASE)
    assert payout_jobs.sweep_payout_transfers() == 1
    row = world.row(payout["id"])
    assert (row.state, row.reference, row.attempts) == ("paid", made.transfer_id, 2)
    assert len(fake_stripe.transfers) == 1 and fake_stripe.keys == [row.transfer_key] * 2  # replayed by the key
    assert world.available() == 6000 and world.audit() == []


def test_killed_between_the_claim_and_the_call_the_sweep_makes_the_one_transfer(world, fake_stripe):
    payout = world.approved(2500)
    with world.app.app_context(), unit_of_work() as session:
        assert payouts.take(session, payout_id=payout["id"]).amount == 2500
    assert fake_stripe.transfers == {}
    clock.advance(AFTER_LEASE)
    assert payout_jobs.sweep_payout_transfers() == 1
    assert world.row(payout["id"]).state == "paid" and len(fake_stripe.transfers) == 1


def test_a_webhook_before_the_record_and_its_duplicates_pay_once(world, stripe, fake_stripe, stripe_app, settings):
    payout = world.approved(4000)
    made = died_after_the_call(world, stripe, payout["id"])
    body = event("transfer.created", fake_stripe.transfers[made.transfer_id], event_id="evt_tr_1")
    first = post_webhook(world.client, body)
    assert first.status_code == 200 and first.get_json() == {"received": True, "duplicate": False}
    run_jobs(settings)
    row = world.row(payout["id"])
    assert (row.state, row.reference) == ("paid", made.transfer_id)
    assert post_webhook(world.client, body).get_json()["duplicate"] is True  # the same event again
    again = event("transfer.created", fake_stripe.transfers[made.transfer_id], event_id="evt_tr_2")
    assert post_webhook(world.client, again).get_json()["duplicate"] is False
    run_jobs(settings)
    with stripe_app.app_context():
        from mall.payments import services as payment_services

        assert "transfer.created" in payment_services.webhook_types()
    clock.advance(AFTER_LEASE)
    assert payout_jobs.sweep_payout_transfers() == 0  # paid: nothing to finish
    assert len(fake_stripe.transfers) == 1 and world.entries(payout["id"]) == [("payout", -4000)]
    bad = post_webhook(world.client, body, secret="whsec_wrong")
    assert_problem(bad, 400, "webhook.bad_signature")
    assert world.audit() == []


def test_the_provider_down_is_retried_later_with_the_same_key(world, fake_stripe):
    payout = world.approved(4000)
    fake_stripe.fail(TRANSFERS)
    assert world.process().get_json() == {"outcomes": {str(payout["id"]): "retry_later"}}
    row = world.row(payout["id"])
    assert row.state == "processing" and row.last_error.startswith("payment.gateway_unavailable")
    assert world.available() == 6000  # still on its way out
    clock.advance(timedelta(minutes=3))  # the retry after 2^1 minutes
    assert payout_jobs.sweep_payout_transfers() == 1
    assert world.row(payout["id"]).state == "paid" and len(fake_stripe.transfers) == 1
    assert set(fake_stripe.keys) == {row.transfer_key}


def test_a_refused_transfer_fails_the_payout_and_returns_the_money_once(world, fake_stripe):
    fake_stripe.unconnected.add(f"acct_{world.guide['id']:04d}")
    payout = world.approved(4000)
    assert world.process().get_json() == {"outcomes": {str(payout["id"]): "failed"}}
    row = world.row(payout["id"])
    assert row.state == "failed" and "No such destination" in row.note
    assert world.available() == 10000 and fake_stripe.transfers == {}
    assert world.entries(payout["id"]) == [("payout", -4000), ("payout_return", 4000)]
    listed = world.client.get(ADMIN, query_string={"state": "failed"}, headers=world.admin).get_json()
    assert [p["id"] for p in listed] == [payout["id"]] and world.audit() == []


def test_a_reversed_transfer_fails_the_paid_payout_and_returns_the_money_once(world, fake_stripe, settings):
    payout = world.approved(4000)
    world.process()
    transfer_id = world.row(payout["id"]).reference
    reversed_ = fake_stripe.reverse(transfer_id)
    for n in (1, 2):
        assert (
            post_webhook(world.client, event("transfer.reversed", reversed_, event_id=f"evt_rev_{n}")).status_code
            == 200
        )
        run_jobs(settings)
    row = world.row(payout["id"])
    assert (row.state, row.note) == ("failed", "transfer reversed")
    assert world.entries(payout["id"]) == [("payout", -4000), ("payout_return", 4000)]
    assert world.available() == 10000 and world.audit() == []


def test_the_nightly_reconciliation_reports_what_differs_between_ledger_and_gateways(world, stripe, fake_stripe):
    kept, reversed_behind_our_back = world.approved(3000), world.approved(2000)
    world.process()
    fake_stripe.reverse(world.row(reversed_behind_our_back["id"]).reference)  # no webhook reached us
    world.terms(gateway="manual")
    manual = world.approved(1000)
    world.act(manual["id"], "mark-paid", reference="BANK-9")
    with world.app.app_context():
        from mall.payments.services import installation_id

        ours = installation_id(db.session)
    stripe.transfer(amount=700, currency="CNY", destination="acct_x", idempotency_key="stray",
                    metadata={"payout_id": 999999, "installation": ours})  # fmt: skip
    stripe.transfer(amount=800, currency="CNY", destination="acct_y", idempotency_key="not-ours",
                    metadata={"payout_id": 1, "installation": "another"})  # fmt: skip
    world.terms(gateway="stripe")
    unrecorded = world.approved(1000)
    died_after_the_call(world, stripe, unrecorded["id"])
    world.fund(3000)
    with world.app.app_context():  # an entry no payout move wrote: the ledger no longer says `kept` was paid out
        from mall.guides import ledger

        ledger.post(db.session, guide_id=world.guide["id"], brand_id=world.brand, currency="CNY", amount=3000,
                    kind="payout_return", state="available", key="stray-return", reason={"rule": "test"},
                    payout_id=kept["id"])  # fmt: skip
        db.session.commit()
    assert world.client.get(f"{ADMIN}/reconciliation", headers=world.admin).status_code == 404
    outcome = payout_jobs.reconcile_payouts()
    assert outcome["checked"] == 4 and outcome["differences"] == 4
    platform = world.shop.login("platform_admin")
    report = world.client.get(f"{ADMIN}/reconciliation", headers=platform).get_json()
    found = {(d["kind"], d["payout_id"]) for d in report["differences"]}
    assert found == {("returned_at_gateway", reversed_behind_our_back["id"]), ("unknown_payout", 999999),
                     ("ledger_mismatch", kept["id"]), ("unrecorded_transfer", unrecorded["id"])}  # fmt: skip
    mine = world.client.get(f"{ADMIN}/reconciliation", headers=world.admin).get_json()
    assert {(d["kind"], d["payout_id"]) for d in mine["differences"]} == found - {("unknown_payout", 999999)}
    assert manual["id"] not in {d["payout_id"] for d in report["differences"]}  # its bank reference is recorded
