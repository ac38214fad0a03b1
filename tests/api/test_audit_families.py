"""Each family of staff write paths leaves its audit entry with the right before/after after an HTTP call, and
none when the change is refused (ADR 0034). Catalog and the read API: tests/api/test_audit_log.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mall import clock
from tests.audit_helpers import audit_rows, only
from tests.coupon_helpers import Coupons
from tests.live_helpers import ROOMS, Live
from tests.payout_helpers import ADMIN as PAYOUTS
from tests.payout_helpers import Payouts
from tests.shop_helpers import Shop

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def shop(app, client, login) -> Shop:
    clock.freeze(T0)
    return Shop(app, client, login)


def _unchanged(app, call):
    """`call()` is refused and the log is as it was."""
    before = audit_rows(app)
    resp = call()
    assert resp.status_code >= 400, resp.get_json()
    assert audit_rows(app) == before
    return resp


def test_coupon_templates(shop, client, app):
    coupons = Coupons(shop)
    ops = coupons.platform()
    template = coupons.template(ops, amount=700)
    status = f"/api/v1/admin/coupon-templates/{template}/status"

    assert client.post(status, json={"status": "paused"}, headers=ops).status_code == 200
    brand = shop.brand()
    _unchanged(app, lambda: client.post(status, json={"status": "active"}, headers=shop.merchant(brand)))

    assert only(app, action="coupon_template.created")["after"]["amount"] == 700
    paused = only(app, action="coupon_template.updated", object_id=template)
    assert (paused["before"], paused["after"], paused["brand_id"]) == ({"status": "active"}, {"status": "paused"}, None)


def test_flash_sales(shop, client, app):
    brand = shop.brand()
    sku = shop.sku(brand, price=10000, stock=50)
    start = T0 + timedelta(hours=1)
    body = {"name": "Double 12", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
            "items": [{"sku_id": sku, "flash_price": 3900, "quota": 3, "per_shopper_limit": 1}]}  # fmt: skip
    _unchanged(app, lambda: client.post("/api/v1/admin/flash-sales", json={**body, "items": [{**body["items"][0],
               "flash_price": 20000}]}, headers=shop.merchant(brand)))  # fmt: skip

    sale = client.post("/api/v1/admin/flash-sales", json=body, headers=shop.merchant(brand)).get_json()

    assert only(app, action="flash_sale.created", object_id=sale["id"])["brand_id"] == brand
    item = only(app, action="flash_item.created")
    assert (item["after"]["flash_price"], item["after"]["quota"], item["brand_id"]) == (3900, 3, brand)


def test_group_buy_campaigns(shop, client, app):
    brand = shop.brand()
    sku = shop.sku(brand, price=9900, stock=20)
    body = {"sku_id": sku, "name": "3 together", "group_price": 5900, "group_size": 3,
            "starts_at": T0.isoformat(), "ends_at": (T0 + timedelta(days=3)).isoformat()}  # fmt: skip
    _unchanged(app, lambda: client.post("/api/v1/admin/group-campaigns", json={**body, "group_price": 99000},
                                        headers=shop.merchant(brand)))  # fmt: skip

    resp = client.post("/api/v1/admin/group-campaigns", json=body, headers=shop.merchant(brand))

    entry = only(app, action="group_campaign.created", object_id=resp.get_json()["id"])
    assert (entry["after"]["group_price"], entry["brand_id"]) == (5900, brand)


def test_live_rooms_lineups_and_pins(shop, client, app):
    live = Live(shop)
    brand = shop.brand()
    admin = shop.merchant(brand)
    products = [live.product(brand), live.product(brand)]
    host, host_id = live.host()
    room = live.room(admin, host_id, products)
    item = room["lineup"][0]["id"]

    assert client.patch(f"{ROOMS}/{room['id']}/lineup/{item}", json={"live_price": 5000},
                        headers=admin).status_code == 200  # fmt: skip
    _unchanged(app, lambda: client.patch(f"{ROOMS}/{room['id']}/lineup/{item}", json={"live_price": 99999},
                                         headers=admin))  # fmt: skip
    dropped = room["lineup"][1]
    assert client.delete(f"{ROOMS}/{room['id']}/lineup/{dropped['id']}", headers=admin).status_code == 204
    assert live.act(host, room["id"], "start").status_code == 200
    assert live.act(host, room["id"], "pin", item_id=item).status_code == 200
    assert live.act(host, room["id"], "unpin").status_code == 204

    assert only(app, action="live_room.created", object_id=room["id"])["brand_id"] == brand
    price = only(app, action="live_lineup_item.updated", object_id=item)
    assert (price["before"], price["after"]) == ({"live_price": None}, {"live_price": 5000})
    removed = only(app, action="live_lineup_item.deleted", object_id=dropped["id"])
    assert (removed["before"]["product_id"], removed["after"], removed["brand_id"]) == (products[1], None, brand)
    started = only(app, action="live_room.updated", object_id=room["id"])
    assert (started["before"], started["after"]) == ({"status": "scheduled"}, {"status": "live"})
    pinned = only(app, action="live_pin.created")
    assert (pinned["after"]["item_id"], pinned["actor_id"], pinned["brand_id"]) == (item, host_id, brand)
    unpinned = only(app, action="live_pin.unpinned", object_id=pinned["object_id"])
    assert (unpinned["before"], unpinned["after"]) == ({"item_id": item}, {"item_id": None})


def test_commission_rate_cards(shop, client, app):
    brand = shop.brand()
    admin = shop.merchant(brand)
    cards = "/api/v1/admin/guides/rate-cards"
    card = client.post(cards, json={"scope": "brand", "basis_points": 800}, headers=admin).get_json()

    assert client.post(f"{cards}/{card['id']}/close", headers=admin).status_code == 200
    _unchanged(app, lambda: client.post(f"{cards}/{card['id']}/close", headers=admin))

    assert only(app, action="rate_card.created", object_id=card["id"])["after"]["basis_points"] == 800
    closed = only(app, action="rate_card.updated", object_id=card["id"])
    assert closed["before"] == {"valid_to": None} and closed["after"]["valid_to"] == T0.isoformat()


def test_payouts_and_their_terms(shop, client, app):
    world = Payouts(shop)
    world.fund(5000)
    payout = world.asked(2000)

    assert world.act(payout["id"], "approve").status_code == 200
    assert world.act(payout["id"], "approve").status_code == 200  # a retried approval moves nothing: no entry
    assert world.act(payout["id"], "mark-paid", reference="BANK-1").status_code == 200
    _unchanged(app, lambda: world.act(payout["id"], "mark-failed", note="bounced"))

    terms = audit_rows(app, object_type="payout_terms")
    assert terms and terms[0]["brand_id"] == world.brand
    assert only(app, action="payout.created", object_id=payout["id"])["actor_role"] == "guide"
    approved = only(app, action="payout.approved", object_id=payout["id"])
    assert (approved["before"], approved["after"]) == ({"state": "requested"}, {"state": "approved"})
    paid = only(app, action="payout.paid", object_id=payout["id"])
    assert paid["after"] == {"state": "paid", "reference": "BANK-1"} and paid["brand_id"] == world.brand
    assert client.get(f"{PAYOUTS}", headers=world.admin).status_code == 200


def test_points_adjustments(shop, client, app):
    from tests.points_helpers import Points

    world = Points(shop)
    assert world.adjust(300, key="k1").status_code == 201
    assert world.adjust(300, key="k1").status_code == 201  # a replay: no second entry
    _unchanged(app, lambda: world.adjust(-5000))

    entry = only(app, action="member_points.adjusted", object_id=world.shopper_id)
    assert (entry["before"], entry["after"]) == ({"available": 0}, {"available": 300, "reason": "goodwill"})


def test_member_levels(shop, client, app):
    from tests.level_helpers import GOLD, SILVER, Levels

    levels = Levels(app, client, shop.login("platform_admin", name="level-ops"))
    levels.replace([SILVER])
    _unchanged(app, lambda: levels.put([SILVER, {**GOLD, "threshold": 1}]))
    levels.replace([{**SILVER, "discount_bp": 600}, GOLD])

    assert only(app, action="member_level.created", object_id=2)["after"]["threshold"] == GOLD["threshold"]
    changed = only(app, action="member_level.updated", object_id=1)
    assert (changed["before"], changed["after"]) == ({"discount_bp": 500}, {"discount_bp": 600})


def test_member_tags(shop, client, app):
    brand = shop.brand()
    admin = shop.merchant(brand)
    member = shop.user_id(shop.shopper())
    tags = "/api/v1/admin/members/tags"
    tag = client.post(tags, json={"code": "vip", "name": "VIP"}, headers=admin).get_json()["id"]

    assert client.post(f"{tags}/{tag}/assign", json={"user_ids": [member]}, headers=admin).status_code == 200
    assert client.patch(f"{tags}/{tag}", json={"name": "V.I.P."}, headers=admin).status_code == 200
    _unchanged(app, lambda: client.patch(f"{tags}/{tag}", json={"name": "x"}, headers=shop.merchant(shop.brand())))

    assert only(app, action="member_tag.created", object_id=tag)["brand_id"] == brand
    assert only(app, action="member_tag.assigned", object_id=tag)["after"] == {"assigned": 1, "user_ids": [member]}
    renamed = only(app, action="member_tag.updated", object_id=tag)
    assert (renamed["before"], renamed["after"]) == ({"name": "VIP"}, {"name": "V.I.P."})


def test_staff_creation_never_logs_the_password(shop, client, app):
    brand = shop.brand()
    body = {"role": "host", "name": "Host A", "email": "host-a@example.com", "password": "correct horse battery"}
    _unchanged(app, lambda: client.post("/api/v1/admin/staff", json={**body, "role": "platform_admin"},
                                        headers=shop.merchant(brand)))  # fmt: skip

    resp = client.post("/api/v1/admin/staff", json={**body, "brand_id": brand}, headers=shop.merchant(brand))
    user = resp.get_json()
    assert resp.status_code == 201, user

    entry = only(app, action="user.created", object_id=user["id"])
    assert entry["after"]["role"] == "host" and entry["after"]["email"] == "host-a@example.com"
    assert "correct horse" not in str(entry) and "password_hash" not in entry["after"]


def test_after_sale_decisions(shop, client, app):
    from tests.api.test_after_sale import ask, decide, paid_line

    me, brand, sub_id, line_id = paid_line(shop)
    refunded = ask(client, me, sub_id, line_id, 1).get_json()["id"]
    rejected = ask(client, me, sub_id, line_id, 1).get_json()["id"]

    assert decide(client, shop, brand, refunded).status_code == 200
    assert decide(client, shop, brand, rejected, "reject").status_code == 200
    _unchanged(app, lambda: decide(client, shop, brand, rejected))

    entry = only(app, action="after_sale.refunded", object_id=refunded)
    assert entry["before"] == {"status": "requested"} and entry["brand_id"] == brand
    assert entry["after"] == {"status": "refunded", "decision_note": None, "refunded": 3333}
    assert only(app, action="after_sale.rejected", object_id=rejected)["after"]["status"] == "rejected"


def test_guides_payout_accounts_are_logged_redacted(shop, client, app):
    world = Payouts(shop)  # creates and activates the guide, sets its accounts

    created = only(app, action="guide.created", object_id=world.guide["id"])
    assert created["after"]["user_id"] == world.guide["user_id"] and created["brand_id"] == world.brand
    updates = audit_rows(app, action="guide.updated", object_id=world.guide["id"], actor_role="brand_admin")
    account = next(e for e in updates if "bank_account" in e["after"])
    assert account["after"] == {"stripe_account_id": "[redacted]", "bank_account": "[redacted]"}
    assert account["before"] == {"stripe_account_id": None, "bank_account": None}
    assert "CN-BANK" not in str(audit_rows(app))


def test_commission_hold_settings(shop, client, app):
    brand = shop.brand()
    url = "/api/v1/admin/guides/commission/hold-settings"
    assert client.put(url, json={"fresh_max_orders": 5}, headers=shop.merchant(brand)).status_code == 200
    _unchanged(app, lambda: client.put(url, json={"fresh_max_orders": -1}, headers=shop.merchant(brand)))

    entry = only(app, action="hold_settings.updated", object_id=brand)
    assert entry["after"] == {"fresh_max_orders": 5} and entry["before"] != entry["after"]


def test_coupons_handed_out_by_staff(shop, client, app):
    brand = shop.brand()
    template = Coupons(shop).template(shop.merchant(brand))
    member = shop.user_id(shop.shopper())
    guide = shop.login("guide", name="audit-guide", brand_id=brand)
    grant = f"/api/v1/coupon-templates/{template}/grants"

    resp = client.post(grant, json={"user_id": member}, headers=guide)
    assert resp.status_code == 201, resp.get_json()
    _unchanged(app, lambda: client.post(grant, json={"user_id": member}, headers=guide))  # the limit: 1 each

    entry = only(app, action="coupon.granted")
    assert (entry["after"], entry["actor_role"], entry["brand_id"]) == (
        {"template_id": template, "user_id": member}, "guide", brand)  # fmt: skip
