"""Held commission over HTTP (ADR 0024): entries held at payment by the rules, listed for the brand admin with why,
shown to the guide as "under review" only; released (pending, or available once settled) or voided with a reason,
the balance moving with them and nothing moving a second time; a held earn's held reversal follows it; another
brand's admin, guides and shoppers cannot review."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.catalog_helpers import assert_problem
from tests.commission_helpers import T0, WINDOW, Commission, ask_refund, at, settle_all
from tests.hold_helpers import HOLDS, address
from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit
HELD = f"{HOLDS}/holds"


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def world(shop) -> Commission:
    at(T0)
    return Commission(shop)


def held_order(world: Commission, price: int = 2000) -> tuple[dict, int]:
    """A paid order of the guide's linked identity (5% card): its line's 100 earned is held. (order, line id)."""
    sku, _ = world.sku(price)
    world.card(scope="brand", basis_points=500)
    world.link_identity()
    order = world.buy([(sku, 1)])
    return order, order["line_ids"][sku]


def review(world: Commission, action: str, ids: list[int], headers: dict | None = None, **extra):
    body = {"entry_ids": ids, "reason": f"checked: {action}", **extra}
    return world.client.post(f"{HELD}/{action}", json=body, headers=headers or world.admin)


def test_a_held_entry_is_listed_with_why_for_the_admin_and_as_under_review_for_the_guide(world):
    order, line = held_order(world)
    [entry] = world.entries(line)
    listed = world.client.get(HELD, headers=world.admin).get_json()
    assert [(e["id"], e["state"], e["amount"], e["order_id"]) for e in listed] == [(entry.id, "on_hold", 100,
                                                                                    order["id"])]  # fmt: skip
    assert listed[0]["hold"]["rule"] == "self_purchase" and listed[0]["hold"]["match"] == "linked_identity"
    assert listed[0]["review"] is None
    assert world.balance() == (0, 0, 100)

    guide = world.guide["headers"]
    mine = world.client.get("/api/v1/guide/commission/holds", headers=guide).get_json()
    assert [(e["id"], e["reason"]["hold"]) for e in mine] == [
        (entry.id, {"code": "under_review", "text": "Under review"})
    ]
    page = world.client.get("/api/v1/guide/commission", headers=guide).get_json()["items"]
    assert page[0]["reason"]["hold"] == {"code": "under_review", "text": "Under review"}
    why = world.client.get("/api/v1/guide/commission/why", query_string={"order_line_id": line}, headers=guide)
    assert why.get_json()["entries"][0]["reason"]["hold"]["code"] == "under_review"
    assert "self_purchase" not in str(page) + str(why.get_json()) + str(mine)


def test_release_makes_it_pending_once_and_the_balance_moves_once(world):
    _, line = held_order(world)
    [entry] = world.entries(line)
    done = review(world, "release", [entry.id])
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["changed"] == [entry.id] and body["unchanged"] == []
    assert body["entries"][0]["state"] == "pending" and body["entries"][0]["review"]["action"] == "released"
    assert body["entries"][0]["review"]["reason"] == "checked: release"
    assert world.balance() == (100, 0, 0) and world.audit() == []

    again = review(world, "release", [entry.id])
    assert (
        again.status_code == 200 and again.get_json()["changed"] == [] and again.get_json()["unchanged"] == [entry.id]
    )
    assert world.balance() == (100, 0, 0) and world.audit() == []
    assert world.client.get(HELD, headers=world.admin).get_json() == []
    assert_problem(review(world, "void", [entry.id]), 409, "guides.hold_decided")
    assert world.balance() == (100, 0, 0)

    # Released and pending, it settles like any other entry.
    world.ship_and_confirm(world.entries(line)[0].sub_order_id)
    world.later(WINDOW + timedelta(minutes=1))
    settle_all()
    assert world.facts(line) == [("earn", "available", 100)] and world.balance() == (0, 100, 0)


def test_void_takes_the_amount_out_of_the_balance_and_cannot_be_released_later(world):
    _, line = held_order(world)
    [entry] = world.entries(line)
    done = review(world, "void", [entry.id])
    assert done.status_code == 200 and done.get_json()["entries"][0]["state"] == "void"
    assert world.balance() == (0, 0, 0) and world.audit() == []
    assert review(world, "void", [entry.id]).get_json()["changed"] == []
    assert_problem(review(world, "release", [entry.id]), 409, "guides.hold_decided")
    assert world.balance() == (0, 0, 0) and world.audit() == []
    page = world.client.get("/api/v1/guide/commission", headers=world.guide["headers"]).get_json()["items"]
    assert page[0]["state"] == "void" and page[0]["reason"]["hold"] == {"code": "reviewed", "text": "Reviewed"}


def test_held_entries_stay_held_through_settlement_and_a_release_after_it_makes_them_available(world):
    order, line = held_order(world)
    world.ship_and_confirm(order["sub_id"])
    world.later(WINDOW + timedelta(minutes=1))
    assert settle_all() == 1
    assert world.facts(line) == [("earn", "on_hold", 100)]
    [entry] = world.entries(line)
    assert review(world, "release", [entry.id]).get_json()["entries"][0]["state"] == "available"
    assert world.balance() == (0, 100, 0) and world.audit() == []


def test_a_held_earns_held_reversal_moves_with_it(world):
    sku, _ = world.sku(1000)
    world.card(scope="brand", basis_points=1000)
    world.link_identity()
    order = world.buy([(sku, 4)])  # 400 earned, held
    line = order["line_ids"][sku]
    world.ship_and_confirm(order["sub_id"])
    ask_refund(world, order["sub_id"], line, 1)  # one unit back: -100, held like its earn
    assert world.facts(line) == [("earn", "on_hold", 400), ("reverse", "on_hold", -100)]
    assert world.balance() == (0, 0, 300)
    earn = world.entries(line)[0]
    done = review(world, "void", [earn.id]).get_json()
    assert len(done["changed"]) == 2 and world.facts(line) == [("earn", "void", 400), ("reverse", "void", -100)]
    assert world.balance() == (0, 0, 0) and world.audit() == []


def test_a_phone_match_found_at_payment_holds_the_entry_with_its_evidence(world):
    sku, _ = world.sku(2000)
    world.card(scope="brand", basis_points=500)
    own = world.guides.login()
    world.client.post("/api/v1/me/addresses", json=address(phone="13911112222"), headers=own)
    world._set_guide(shopper_user_id=world.shop.user_id(own))
    shipped = world.client.post("/api/v1/me/addresses", json=address(phone="+86 139 1111 2222", detail="Elsewhere 5"),
                                headers=world.shopper)  # fmt: skip
    world.address = shipped.get_json()["id"]
    order = world.buy([(sku, 1)])
    [entry] = world.entries(order["line_ids"][sku])
    assert entry.state == "on_hold" and entry.reason["hold"]["match"] == "phone"
    assert entry.reason["hold"]["evidence"]["phone"] == "139****2222"
    assert world.balance() == (0, 0, 100)


def test_only_the_brands_admin_reviews_its_holds(world, shop, login):
    _, line = held_order(world)
    [entry] = world.entries(line)
    other_brand = shop.brand()
    other_admin = login("brand_admin", name="other-admin", brand_id=other_brand)
    assert_problem(review(world, "release", [entry.id], other_admin), 404, "guides.entry_not_found")
    assert_problem(review(world, "void", [entry.id], other_admin), 404, "guides.entry_not_found")
    assert world.client.get(HELD, headers=other_admin).get_json() == []
    assert world.client.get(HELD, query_string={"brand_id": world.brand}, headers=other_admin).status_code == 403
    assert review(world, "release", [entry.id], world.guide["headers"]).status_code == 403
    assert review(world, "release", [entry.id], world.shopper).status_code == 403
    assert world.client.get("/api/v1/guide/commission/holds", headers=world.shopper).status_code == 403
    assert review(world, "release", [entry.id], reason="").status_code == 422
    assert world.balance() == (0, 0, 100)

    platform = login("platform_admin", name="ops")
    assert world.client.get(HELD, query_string={"brand_id": world.brand}, headers=platform).get_json()[0]["id"] == (
        entry.id
    )
    assert review(world, "release", [entry.id], platform, brand_id=world.brand).get_json()["changed"] == [entry.id]


def test_an_entry_never_held_is_not_reviewable(world):
    sku, _ = world.sku(2000)
    world.card(scope="brand", basis_points=500)
    order = world.buy([(sku, 1)])
    [entry] = world.entries(order["line_ids"][sku])
    assert entry.state == "pending"
    assert_problem(review(world, "release", [entry.id]), 409, "guides.entry_not_held")
    assert_problem(review(world, "release", [entry.id + 1000]), 404, "guides.entry_not_found")
    assert world.balance() == (100, 0, 0)
