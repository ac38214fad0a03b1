"""The commission ledger over HTTP (ADR 0022): rate cards (most specific wins, grades, campaign lines, dated
changes that never move earned commission), earning on what a line actually paid, holds on self-purchase,
reversals from every refund path to the cent (a line refunded in three parts reverses exactly), settlement making
entries available only after the window, a refund after that going negative, and who may read what."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from tests.catalog_helpers import assert_problem
from tests.commission_helpers import CARDS, T0, WINDOW, Commission, ask_refund, at, dashboard_refund, settle_all
from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def world(shop) -> Commission:
    at(T0)
    return Commission(shop)


def test_a_paid_guided_line_earns_pending_commission_on_its_card_with_the_reason(world):
    sku, product = world.sku(3333)
    card = world.card(scope="brand", basis_points=1000)
    order = world.buy([(sku, 3)])
    line_id = order["line_ids"][sku]

    [entry] = world.entries(line_id)
    assert (entry.kind, entry.state, entry.amount, entry.rate_card_id) == ("earn", "pending", 999, card["id"])
    assert entry.reason["rule"] == "rate_card" and entry.reason["base"] == 9999 and entry.reason["basis_points"] == 1000
    assert world.balance() == (999, 0, 0) and world.audit() == []


def test_a_line_without_a_card_earns_nothing_and_says_why(world):
    sku, _ = world.sku(1000)
    order = world.buy([(sku, 1)])
    assert world.facts(order["line_ids"][sku]) == [("earn", "void", 0)]
    assert world.entries(order["line_ids"][sku])[0].reason["rule"] == "no_rate_card"
    assert world.balance() == (0, 0, 0)


def test_the_guides_own_purchase_through_a_linked_identity_is_held(world):
    sku, _ = world.sku(2000)
    world.card(scope="brand", basis_points=500)
    world.link_identity()
    order = world.buy([(sku, 1)])
    [entry] = world.entries(order["line_ids"][sku])
    assert (entry.state, entry.amount) == ("on_hold", 100)
    hold = entry.reason["hold"]
    assert (hold["rule"], hold["match"], hold["evidence"]) == ("self_purchase", "linked_identity",
                                                               {"shopper_id": world.shopper_id})  # fmt: skip
    assert world.balance() == (0, 0, 100) and world.audit() == []


# earning on what the line paid ---------------------------------------------------------------------------------


def test_a_coupon_discounted_line_earns_on_what_it_paid_without_shipping(shop, client):
    from tests.coupon_helpers import Coupons

    at(T0)
    world = Commission(shop, fee=800)
    big, _ = world.sku(3000)
    small, _ = world.sku(1000)
    world.card(scope="brand", basis_points=1000)
    coupons = Coupons(shop)
    coupon = coupons.give(world.shopper, coupons.template(world.admin, amount=555))
    order = world.buy([(big, 1), (small, 1)], coupon_ids=[coupon])

    lines = {line["sku_id"]: line for line in order["sub_orders"][0]["lines"]}
    assert sum(line["discount_total"] for line in lines.values()) == 555 and order["shipping_total"] == 800
    for sku in (big, small):
        line = lines[sku]
        assert line["payable"] < line["subtotal"]  # the coupon's share came off this line
        [entry] = world.entries(line["id"])
        assert (entry.amount, entry.reason["base"]) == (line["payable"] * 1000 // 10000, line["payable"])
    assert world.balance().pending == sum(lines[s]["payable"] * 1000 // 10000 for s in (big, small))


def test_a_fixed_amount_per_unit_card_pays_per_unit_capped_at_what_the_line_paid(world):
    sku, product = world.sku(500)
    world.card(scope="product", product_id=product, amount_per_unit=120, currency="CNY")
    order = world.buy([(sku, 3)])
    assert world.facts(order["line_ids"][sku]) == [("earn", "pending", 360)]
    cheap, cheap_product = world.sku(100)
    world.card(scope="product", product_id=cheap_product, amount_per_unit=150, currency="CNY")
    order = world.buy([(cheap, 2)])
    assert world.facts(order["line_ids"][cheap]) == [("earn", "pending", 200)]  # never more than the line paid


# which card --------------------------------------------------------------------------------------------------


def test_the_most_specific_card_wins_and_a_grade_card_beats_an_any_grade_one_at_its_scope(shop):
    at(T0)
    world = Commission(shop, grade="gold")
    parent = world.category()
    child = world.category(parent)
    on_product, product = world.sku(1000, child)
    in_child, _ = world.sku(1000, child)
    elsewhere, _ = world.sku(1000)
    brand = world.card(scope="brand", basis_points=500)
    gold = world.card(scope="brand", basis_points=600, guide_grade="gold")
    world.card(scope="brand", basis_points=700, guide_grade="silver")  # not this guide's grade
    category = world.card(scope="category", category_id=parent, basis_points=800)
    prod = world.card(scope="product", product_id=product, basis_points=1200)
    order = world.buy([(on_product, 1), (in_child, 1), (elsewhere, 1)])

    got = {sku: (e.amount, e.rate_card_id) for sku in (on_product, in_child, elsewhere)
           for e in world.entries(order["line_ids"][sku])}  # fmt: skip
    assert got == {on_product: (120, prod["id"]), in_child: (80, category["id"]), elsewhere: (60, gold["id"])}
    world.set_grade(None)
    order = world.buy([(elsewhere, 1)])
    assert [(e.amount, e.rate_card_id) for e in world.entries(order["line_ids"][elsewhere])] == [(50, brand["id"])]


def test_a_card_change_never_changes_earned_commission(world, client):
    sku, _ = world.sku(1000)
    old = world.card(scope="brand", basis_points=1000)
    first = world.buy([(sku, 1)])
    new = world.card(scope="brand", basis_points=2000, replaces=old["id"])
    second = world.buy([(sku, 1)])

    assert [(e.amount, e.rate_card_id) for e in world.entries(first["line_ids"][sku])] == [(100, old["id"])]
    assert [(e.amount, e.rate_card_id) for e in world.entries(second["line_ids"][sku])] == [(200, new["id"])]
    listed = client.get(CARDS, headers=world.admin).get_json()
    assert [c["id"] for c in listed] == [new["id"]]
    history = client.get(CARDS, query_string={"include_closed": "true"}, headers=world.admin).get_json()
    assert [(c["id"], c["valid_to"] is not None) for c in history] == [(new["id"], False), (old["id"], True)]
    assert client.post(f"{CARDS}/{new['id']}/close", headers=world.admin).status_code == 200
    assert_problem(client.post(f"{CARDS}/{new['id']}/close", headers=world.admin), 409, "guides.rate_card_closed")
    third = world.buy([(sku, 1)])
    assert world.entries(third["line_ids"][sku])[0].reason["rule"] == "no_rate_card"
    assert world.balance().pending == 300


def test_rate_cards_are_checked_and_brand_scoped(world, shop, client):
    _, product = world.sku(1000)
    assert_problem(client.post(CARDS, json={"scope": "brand"}, headers=world.admin), 422, "request.invalid")
    assert client.post(CARDS, json={"scope": "product", "basis_points": 10}, headers=world.admin).status_code == 422
    resp = client.post(CARDS, json={"scope": "brand", "amount_per_unit": 10}, headers=world.admin)
    assert_problem(resp, 422, "guides.currency_required")
    other = Commission(shop)
    resp = client.post(CARDS, json={"scope": "product", "product_id": product, "basis_points": 10}, headers=other.admin)
    assert_problem(resp, 422, "guides.product_unknown")  # another brand's product
    card = world.card(scope="brand", basis_points=10)
    assert client.get(CARDS, headers=other.admin).get_json() == []
    assert_problem(client.post(f"{CARDS}/{card['id']}/close", headers=other.admin), 404, "guides.rate_card_not_found")
    assert client.get(CARDS, headers=world.guide["headers"]).status_code == 403


def test_a_campaign_line_earns_only_on_a_card_that_includes_campaign_lines(world, client):
    sku, _ = world.sku(9900, stock=20)
    body = {"sku_id": sku, "name": "2 together", "group_price": 5900, "leader_discount": 0, "group_size": 2,
            "per_shopper_limit": 5, "starts_at": (T0 - timedelta(hours=1)).isoformat(),
            "ends_at": (T0 + timedelta(days=3)).isoformat()}  # fmt: skip
    camp = client.post("/api/v1/admin/group-campaigns", json=body, headers=world.admin)
    assert camp.status_code == 201, camp.get_json()
    card = world.card(scope="brand", basis_points=1000)

    def open_group() -> dict:
        resp = client.post(f"/api/v1/group-campaigns/{camp.get_json()['id']}/groups",
                           json={"address_id": world.address}, headers=_key(world.shopper))  # fmt: skip
        assert resp.status_code == 201, resp.get_json()
        assert world.shop.pay(world.shopper, resp.get_json()["order"]["id"]).status_code == 200
        return resp.get_json()

    excluded = open_group()["order"]["sub_orders"][0]["lines"][0]
    [entry] = world.entries(excluded["id"])
    assert (entry.state, entry.amount, entry.reason["rule"], entry.rate_card_id) == (
        "void",
        0,
        "campaign_line_excluded",
        card["id"],
    )
    world.card(scope="brand", basis_points=1000, includes_campaign_lines=True, replaces=card["id"])
    opened = open_group()
    included = opened["order"]["sub_orders"][0]["lines"][0]
    assert world.facts(included["id"]) == [("earn", "pending", 590)]

    # the group fails: its refund (group-buy failure path) reverses exactly what the line earned
    from workers.jobs.group_buy import expire_group

    world.later(timedelta(hours=24, minutes=1))
    assert expire_group(opened["group"]["id"]) == "failed"
    assert world.facts(included["id"]) == [("earn", "pending", 590), ("reverse", "pending", -590)]
    assert world.balance() == (0, 0, 0) and world.audit() == []


def _key(headers: dict) -> dict:
    import uuid

    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


# refunds reverse exactly ---------------------------------------------------------------------------------------


def test_a_line_refunded_in_three_parts_reverses_exactly_its_commission(world):
    sku, _ = world.sku(3335)
    world.card(scope="brand", basis_points=1000)
    order = world.buy([(sku, 3)])
    line_id = order["line_ids"][sku]
    assert world.facts(line_id) == [("earn", "pending", 1000)]  # 10005 paid, 10%

    ask_refund(world, order["sub_id"], line_id, 1)
    assert world.facts(line_id)[1:] == [("reverse", "pending", -333)]  # 1000 * 1 // 3
    assert world.balance().pending == 667
    ask_refund(world, order["sub_id"], line_id, 1)
    ask_refund(world, order["sub_id"], line_id, 1)
    assert world.facts(line_id) == [("earn", "pending", 1000), ("reverse", "pending", -333),
                                    ("reverse", "pending", -333), ("reverse", "pending", -334)]  # fmt: skip
    assert sum(e.amount for e in world.entries(line_id)) == 0
    assert world.balance() == (0, 0, 0) and world.audit() == []
    reverse = world.entries(line_id)[-1]
    assert reverse.reason["units_refunded_before"] == 2 and reverse.reason["refund_reason"] == "after_sale"
    assert reverse.refund_line_id is not None


def test_a_partial_refund_reverses_its_share_to_the_cent(world):
    sku, _ = world.sku(1999)
    world.card(scope="brand", basis_points=333)
    order = world.buy([(sku, 7)])
    line_id = order["line_ids"][sku]
    earned = 1999 * 7 * 333 // 10000  # 465
    ask_refund(world, order["sub_id"], line_id, 4)
    assert world.facts(line_id) == [("earn", "pending", earned), ("reverse", "pending", -(earned * 4 // 7))]
    assert world.balance().pending == earned - earned * 4 // 7 and world.audit() == []


def test_dashboard_refunds_assigned_to_units_and_the_rest_reverse_exactly(world, app):
    from mall.identity.roles import Actor, Role
    from mall.payments import external
    from mall.payments.models import UnassignedRefund

    sku, _ = world.sku(3333)
    world.card(scope="brand", basis_points=1500)
    order = world.buy([(sku, 3)])
    line_id = order["line_ids"][sku]
    assert dashboard_refund(world, order["id"], "re_one", 3333) == "parked"
    assert world.facts(line_id) == [("earn", "pending", 1499)]  # parked: not on a line yet
    with app.app_context():
        parked = db.session.scalar(sa.select(UnassignedRefund))
        external.assign(db.session, actor=Actor(user_id=0, role=Role.PLATFORM_ADMIN), unassigned_refund_id=parked.id,
                        lines=[{"order_line_id": line_id, "quantity": 1}], shipping_sub_order_ids=[])  # fmt: skip
        db.session.commit()
    assert world.facts(line_id)[1:] == [("reverse", "pending", -499)]
    assert dashboard_refund(world, order["id"], "re_rest", 2 * 3333) == "refunded_rest"
    assert world.facts(line_id)[2:] == [("reverse", "pending", -1000)]
    assert world.balance() == (0, 0, 0) and world.audit() == []


# settlement -------------------------------------------------------------------------------------------------


def test_entries_become_available_only_after_the_window_closed_with_nothing_open(world):
    sku, _ = world.sku(1000)
    world.card(scope="brand", basis_points=1000)
    order = world.buy([(sku, 2)])
    line_id, sub_id = order["line_ids"][sku], order["sub_id"]
    world.ship_and_confirm(sub_id)
    world.later(WINDOW - timedelta(minutes=1))
    case_id = ask_refund(world, sub_id, line_id, 1, approve=False)  # a case opened inside the window
    world.later(timedelta(minutes=2))
    assert settle_all() == 0 and world.balance() == (200, 0, 0)  # the window closed, but a case is open
    from tests.api.test_after_sale import decide

    assert decide(world.client, world.shop, world.brand, case_id, "reject").status_code == 200
    assert settle_all() == 1
    assert world.facts(line_id) == [("earn", "available", 200)]
    assert world.balance() == (0, 200, 0) and world.audit() == []


def test_a_refund_after_settlement_and_payout_goes_negative(world, app):
    from mall.guides import ledger

    sku, _ = world.sku(1000)
    world.card(scope="brand", basis_points=1000)
    order = world.buy([(sku, 1)])
    line_id = order["line_ids"][sku]
    world.ship_and_confirm(order["sub_id"])
    world.later(WINDOW + timedelta(minutes=1))
    assert settle_all() == 1
    with app.app_context():  # the payouts helper's debit, as the contract describes it
        ledger.lock_balance(db.session, world.guide["id"], "CNY")
        ledger.post(db.session, guide_id=world.guide["id"], brand_id=world.brand, currency="CNY", amount=-100,
                    kind="payout", state="available", key="payout:1", reason={"rule": "payout"}, payout_id=1)  # fmt: skip
        db.session.commit()
    assert world.balance() == (0, 0, 0)
    assert dashboard_refund(world, order["id"], "re_late", 1000) == "refunded_rest"
    assert world.facts(line_id) == [("earn", "available", 100), ("reverse", "available", -100)]
    assert world.balance() == (0, -100, 0) and world.audit() == []  # later earnings offset it


# reading the ledger, and who may ----------------------------------------------------------------------------

MINE, WHY, ADMIN_WHY = "/api/v1/guide/commission", "/api/v1/guide/commission/why", "/api/v1/admin/guides/commission/why"


def test_a_guide_pages_their_entries_by_state_and_reads_their_balance(world, client):
    sku, _ = world.sku(1000)
    world.card(scope="brand", basis_points=1000)
    orders = [world.buy([(sku, 1)]) for _ in range(3)]
    ask_refund(world, orders[0]["sub_id"], orders[0]["line_ids"][sku], 1)
    headers = world.guide["headers"]

    first = client.get(MINE, query_string={"limit": 3}, headers=headers).get_json()
    assert [(e["kind"], e["amount"]) for e in first["items"]] == [("reverse", -100), ("earn", 100), ("earn", 100)]
    assert (
        first["items"][0]["order_line_id"] == orders[0]["line_ids"][sku] and first["items"][0]["reason"]["units"] == 1
    )
    rest = client.get(MINE, query_string={"limit": 3, "before_id": first["next_before_id"]}, headers=headers).get_json()
    assert [(e["kind"], e["order_id"]) for e in rest["items"]] == [("earn", orders[0]["id"])]
    assert rest["next_before_id"] is None
    assert client.get(MINE, query_string={"state": "available"}, headers=headers).get_json()["items"] == []
    balance = client.get(f"{MINE}/balance", headers=headers).get_json()
    assert balance == {"guide_id": world.guide["id"],
                       "balances": [{"currency": "CNY", "pending": 200, "available": 0, "on_hold": 0}]}  # fmt: skip
    assert client.get(MINE, headers=world.shopper).status_code == 403


def test_why_a_line_was_or_was_not_credited_for_the_guide_the_admin_and_no_one_else(world, shop, client):
    sku, _ = world.sku(1000)
    world.card(scope="brand", basis_points=1000)
    rival = world.guides.guide(world.admin, world.brand)
    refused = world.guides.opened(world.shopper, world.guides.link(rival))  # the brand's rule keeps the first guide
    assert refused["kind"] == "refused"
    order = world.buy([(sku, 1)])
    line_id = order["line_ids"][sku]

    mine = client.get(WHY, query_string={"order_line_id": line_id}, headers=world.guide["headers"]).get_json()
    assert (mine["verdict"], mine["guide_id"]) == ("pending_settlement", world.guide["id"])
    assert mine["binding"]["guide_id"] == world.guide["id"] and mine["binding"]["reason"]
    assert [(e["kind"], e["amount"], e["reason"]["rule"]) for e in mine["entries"]] == [("earn", 100, "rate_card")]
    admin = client.get(ADMIN_WHY, query_string={"order_line_id": line_id}, headers=world.admin).get_json()
    assert admin["verdict"] == "pending_settlement" and len(admin["binding_events"]) >= 2

    theirs = client.get(WHY, query_string={"order_line_id": line_id}, headers=rival["headers"])
    body = theirs.get_json()  # the rival's link was refused before the order: they may read why, not who got it
    assert (body["verdict"], body["guide_id"], body["entries"], body["binding"]) == (
        "bound_to_another_guide", None, [], None)  # fmt: skip
    assert [e["kind"] for e in body["binding_events"]] == ["refused"]

    other = Commission(shop)
    assert_problem(client.get(WHY, query_string={"order_line_id": line_id}, headers=other.guide["headers"]), 404,
                   "guides.order_line_not_found")  # fmt: skip
    assert client.get(ADMIN_WHY, query_string={"order_line_id": line_id}, headers=other.admin).status_code == 404
    listing = client.get("/api/v1/admin/guides/commission", query_string={"guide_id": world.guide["id"]},
                         headers=other.admin)  # fmt: skip
    assert listing.status_code == 404
    assert client.get(MINE, headers=other.guide["headers"]).get_json()["items"] == []
    own = client.get("/api/v1/admin/guides/commission", query_string={"guide_id": world.guide["id"]},
                     headers=world.admin).get_json()  # fmt: skip
    assert [e["order_line_id"] for e in own["items"]] == [line_id]
    platform = shop.login("platform_admin", name="ops")
    assert client.get(ADMIN_WHY, query_string={"order_line_id": line_id}, headers=platform).status_code == 200


def test_why_not_credited_names_the_missing_card_and_the_missing_binding(world, shop, client):
    sku, _ = world.sku(1000)
    order = world.buy([(sku, 1)])
    body = client.get(WHY, query_string={"order_line_id": order["line_ids"][sku]}, headers=world.guide["headers"])
    assert body.get_json()["verdict"] == "no_rate_card"
    stranger = shop.shopper()
    placed = shop.place(stranger, [shop.add(stranger, sku)], shop.address(stranger)).get_json()
    line_id = placed["sub_orders"][0]["lines"][0]["id"]
    body = client.get(ADMIN_WHY, query_string={"order_line_id": line_id}, headers=world.admin).get_json()
    assert (body["verdict"], body["guide_id"], body["entries"]) == ("not_bound_at_placement", None, [])
    assert client.get(WHY, query_string={"order_line_id": line_id}, headers=world.guide["headers"]).status_code == 404
