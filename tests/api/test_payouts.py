"""Guide payouts over HTTP with the manual gateway (ADR 0023): the brand's terms, the balance checks at request
(409 with a reason code, a negative balance blocks withdrawal), the state machine (approve, reject, cancel,
process, the bank-transfer CSV, mark paid or failed) with the ledger's debit and its return once, and who may see
and do what. Stripe transfers: tests/api/test_payout_transfers.py."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from tests.catalog_helpers import assert_problem
from tests.commission_helpers import T0, WINDOW, Commission, at, dashboard_refund, settle_all
from tests.payout_helpers import ADMIN, MINE, TERMS, Payouts
from tests.shop_helpers import Shop


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def world(shop) -> Payouts:
    at(T0)  # a Tuesday
    return Payouts(shop)


def test_a_request_debits_available_and_approval_paid_by_hand_keeps_it_out(world, client):
    world.fund(5000)
    payout = world.asked(3000)
    assert (payout["state"], payout["amount"], payout["currency"], payout["gateway"]) == ("requested", 3000, "CNY",
                                                                                          "manual")  # fmt: skip
    assert world.available() == 2000 and world.entries(payout["id"]) == [("payout", -3000)]
    approved = world.act(payout["id"], "approve")
    assert approved.status_code == 200 and approved.get_json()["state"] == "approved"
    assert world.act(payout["id"], "approve").get_json()["state"] == "approved"  # a retried approval: unchanged
    exported = client.get(f"{ADMIN}/export.csv", headers=world.admin)
    assert exported.status_code == 200 and exported.content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [(r["payout_id"], r["bank_account"], r["amount"], r["currency"], r["state"]) for r in rows] == [
        (str(payout["id"]), f"CN-BANK-{world.guide['id']}", "3000", "CNY", "approved")]  # fmt: skip
    processed = world.process()
    assert processed.status_code == 200 and processed.get_json() == {"outcomes": {str(payout["id"]): "handed_to_bank"}}
    assert world.process().get_json() == {"outcomes": {}}  # the same batch again: nothing new
    paid = world.act(payout["id"], "mark-paid", reference="BANK-REF-1")
    assert (
        paid.status_code == 200 and paid.get_json()["state"] == "paid" and paid.get_json()["reference"] == "BANK-REF-1"
    )
    assert world.act(payout["id"], "mark-paid", reference="BANK-REF-1").status_code == 200  # retried: unchanged
    assert_problem(world.act(payout["id"], "mark-paid", reference="OTHER"), 409, "payouts.state")
    assert_problem(world.act(payout["id"], "mark-failed", note="bounced"), 409, "payouts.state")
    assert world.available() == 2000 and world.entries(payout["id"]) == [("payout", -3000)]
    history = client.get(MINE, headers=world.guide["headers"]).get_json()
    assert [(p["id"], p["state"], p["reference"]) for p in history] == [(payout["id"], "paid", "BANK-REF-1")]
    assert world.audit() == []


def test_rejected_cancelled_and_failed_payouts_give_the_money_back_once(world, client):
    world.fund(9000)
    rejected, cancelled, failed = world.asked(3000), world.asked(2000), world.approved(1500)
    assert world.available() == 2500
    resp = world.act(rejected["id"], "reject", note="documents missing")
    assert resp.status_code == 200
    assert (resp.get_json()["state"], resp.get_json()["rejected"], resp.get_json()["note"]) == ("cancelled", True,
                                                                                                "documents missing")  # fmt: skip
    assert world.act(rejected["id"], "reject").status_code == 200  # again: unchanged, no second return
    mine = client.post(f"{MINE}/{cancelled['id']}/cancel", headers=world.guide["headers"])
    assert mine.status_code == 200 and mine.get_json()["state"] == "cancelled"
    assert client.post(f"{MINE}/{failed['id']}/cancel", headers=world.guide["headers"]).status_code == 409  # approved
    world.process()
    assert world.act(failed["id"], "mark-failed", note="account closed").get_json()["state"] == "failed"
    assert world.act(failed["id"], "mark-failed", note="account closed").status_code == 200
    assert_problem(world.act(failed["id"], "approve"), 409, "payouts.state")
    assert world.available() == 9000
    for payout in (rejected, cancelled, failed):
        assert world.entries(payout["id"]) == [("payout", -payout["amount"]), ("payout_return", payout["amount"])]
    assert world.audit() == []


def test_requests_are_refused_with_a_reason_code(world, client):
    assert_problem(world.ask(1000), 409, "payouts.insufficient_balance")
    world.fund(5000)
    assert_problem(world.ask(999), 409, "payouts.below_minimum")  # the default minimum: 10.00
    assert_problem(world.ask(5001), 409, "payouts.insufficient_balance")
    assert world.ask(0).status_code == 422
    world.terms(weekdays="1", min_days_between=7, minimum_amount=100)
    assert_problem(world.ask(100), 409, "payouts.not_today")  # a Tuesday; Mondays only
    world.terms(weekdays="12")
    assert world.ask(100).status_code == 201
    assert_problem(world.ask(100), 409, "payouts.too_soon")
    world.guides.later(timedelta(days=7))  # the next Tuesday
    assert world.ask(100).status_code == 201
    world.account(bank_account="")
    world.guides.later(timedelta(days=7))
    assert_problem(world.ask(100), 409, "payouts.no_destination")
    world.terms(gateway="stripe")
    assert world.ask(100).status_code == 201  # the connected account is set
    assert world.available() == 4700 and world.audit() == []


def test_terms_have_defaults_and_belong_to_the_brand(world, shop, client):
    other = Payouts(shop)
    terms = client.get(TERMS, headers=other.admin).get_json()
    assert terms == {"brand_id": other.brand, "gateway": "manual", "minimum_amount": 1000, "weekdays": "1234567",
                     "min_days_between": 0}  # fmt: skip
    fresh_brand = shop.brand()
    admin = world.guides.login("brand_admin", fresh_brand)
    assert client.get(TERMS, headers=admin).get_json()["min_days_between"] == 1  # the default: one a day
    assert client.put(TERMS, json={"brand_id": world.brand, "minimum_amount": 1}, headers=admin).status_code == 404
    assert client.put(TERMS, json={"weekdays": "8"}, headers=admin).status_code == 422


def test_another_brand_sees_and_does_nothing(world, shop, client):
    world.fund(5000)
    payout = world.asked(2000)
    rival = Payouts(shop)
    assert client.get(ADMIN, headers=rival.admin).get_json() == []
    for action, body in (("approve", {}), ("reject", {}), ("cancel", {}), ("mark-paid", {"reference": "x"})):
        assert_problem(world.act(payout["id"], action, headers=rival.admin, **body), 404, "payouts.not_found")
    assert client.post(f"{MINE}/{payout['id']}/cancel", headers=rival.guide["headers"]).status_code == 404
    assert client.get(MINE, headers=rival.guide["headers"]).get_json() == []
    assert rival.process([payout["id"]]).get_json() == {"outcomes": {}}
    listed = client.get(ADMIN, query_string={"state": "requested"}, headers=world.admin).get_json()
    assert [p["id"] for p in listed] == [payout["id"]]
    shopper = world.guides.login()
    assert client.post(MINE, json={"amount": 1000}, headers=shopper).status_code == 403
    assert client.get(ADMIN, headers=world.guide["headers"]).status_code == 403
    account = f"/api/v1/admin/guides/{world.guide['id']}/payout-account"
    assert client.put(account, json={"bank_account": "x"}, headers=rival.admin).status_code == 404
    assert world.row(payout["id"]).state == "requested"


def test_a_refund_after_payout_goes_negative_and_blocks_withdrawal_until_earnings_offset_it(shop):
    at(T0)
    world = Commission(shop)
    payouts = Payouts(shop, guides=world.guides, brand=world.brand, admin=world.admin)
    sku, _ = world.sku(10000)
    world.card(scope="brand", basis_points=1000)
    first = world.buy([(sku, 1)])
    world.ship_and_confirm(first["sub_id"])
    world.later(WINDOW + timedelta(minutes=1))
    assert settle_all() == 1
    # the Commission world's guide is not Payouts'; pay out Commission's guide through its own headers
    payouts.guide = world.guide
    payouts.account(bank_account="CN-1")
    assert world.balance() == (0, 1000, 0)
    payout = payouts.asked(1000)
    assert world.balance() == (0, 0, 0)
    assert dashboard_refund(world, first["id"], "re_after_payout", 10000) == "refunded_rest"
    assert world.balance() == (0, -1000, 0)
    assert_problem(payouts.ask(1000), 409, "payouts.negative_balance")
    payouts.act(payout["id"], "approve")
    assert payouts.act(payout["id"], "mark-paid", reference="B1").status_code == 200  # the paid payout stands
    second = world.buy([(sku, 2)])
    world.ship_and_confirm(second["sub_id"])
    world.later(WINDOW + timedelta(minutes=1))
    assert settle_all() == 1
    assert world.balance() == (0, 1000, 0)  # 2000 earned, 1000 of it offsetting the refund
    assert_problem(payouts.ask(1001), 409, "payouts.insufficient_balance")
    assert payouts.asked(1000)["state"] == "requested" and world.audit() == []


def test_the_platform_admin_names_the_brand(world, shop, client):
    platform = shop.login("platform_admin")
    assert client.get(ADMIN, headers=platform).status_code == 422
    world.fund(2000)
    payout = world.asked(2000)
    listed = client.get(ADMIN, query_string={"brand_id": world.brand}, headers=platform).get_json()
    assert [p["id"] for p in listed] == [payout["id"]]
    assert world.act(payout["id"], "approve", headers=platform).get_json()["state"] == "approved"


def test_a_spreadsheet_formula_never_reaches_the_csv(world, client):
    world.account(bank_account="=HYPERLINK(1)")
    world.fund(2000)
    world.approved(2000)
    text = client.get(f"{ADMIN}/export.csv", headers=world.admin).get_data(as_text=True)
    assert "'=HYPERLINK(1)" in text  # quoted: a cell of text
