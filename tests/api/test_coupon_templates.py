"""Coupon templates: the four kinds, scope and validity rules, who funds them, and who may manage them."""

from __future__ import annotations

import pytest

from mall import clock
from tests.coupon_helpers import DAYTIME, Coupons, window
from tests.shop_helpers import Shop


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def coupons(shop) -> Coupons:
    clock.freeze(DAYTIME)
    return Coupons(shop)


def test_platform_admin_creates_each_kind_with_its_values(coupons):
    made = {
        "fixed": coupons.create(value_type="fixed", amount=1000),
        "threshold": coupons.create(value_type="threshold", amount=2000, threshold=19900),
        "percent": coupons.create(value_type="percent", percent_bp=1500, cap=3000),
        "free_shipping": coupons.create(value_type="free_shipping"),
    }
    assert {kind: resp.status_code for kind, resp in made.items()} == dict.fromkeys(made, 201)
    body = {kind: resp.get_json() for kind, resp in made.items()}
    assert (body["fixed"]["amount"], body["threshold"]["threshold"]) == (1000, 19900)
    assert (body["percent"]["percent_bp"], body["percent"]["cap"]) == (1500, 3000)
    assert all(
        b["brand_id"] is None and b["funded_by"] == "platform" and b["status"] == "active" for b in body.values()
    )
    row = coupons.template_row(body["percent"]["id"])
    assert (row.value_type, row.percent_bp, row.cap, row.issued_count) == ("percent", 1500, 3000, 0)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"value_type": "fixed", "amount": 0}, "coupon.amount_required"),
        ({"value_type": "threshold", "amount": 2000, "threshold": 2000}, "coupon.threshold_too_low"),
        ({"value_type": "percent", "percent_bp": 0}, "coupon.percent_invalid"),
        ({"value_type": "percent", "percent_bp": 10_000}, "coupon.percent_invalid"),
        ({"valid_days": 7, "valid_until": "2026-12-31T00:00:00+00:00"}, "coupon.validity"),
        ({"valid_days": None}, "coupon.validity"),
        ({"scope_type": "categories", "scope_ids": []}, "coupon.scope_ids_required"),
    ],
)
def test_inconsistent_templates_are_refused_with_their_code(coupons, fields, code):
    resp = coupons.create(**fields)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["code"] == code


@pytest.mark.parametrize(
    "fields",
    [
        {"valid_from": "2026-12-31T00:00:00+00:00", "valid_until": "2026-12-01T00:00:00+00:00"},
        {"currency": "cny"},  # would never match a cart's currency
        {"value_type": "cashback"},
    ],
)
def test_malformed_templates_are_refused_by_the_schema(coupons, fields):
    resp = coupons.create(**fields)
    assert resp.status_code == 422 and resp.get_json()["code"] == "request.invalid"


def test_a_template_for_an_unknown_brand_is_422_not_a_server_error(coupons):
    resp = coupons.create(brand_id=999_999)
    assert resp.status_code == 422 and resp.get_json()["code"] == "coupon.brand_unknown"


def test_brand_admin_makes_brand_funded_coupons_for_its_own_brand_only(shop, coupons):
    mine, other = shop.brand(), shop.brand()
    admin = shop.merchant(mine)
    resp = coupons.create(admin, amount=300)
    assert resp.status_code == 201
    assert (resp.get_json()["brand_id"], resp.get_json()["funded_by"]) == (mine, "brand")

    foreign = coupons.create(admin, brand_id=other)
    assert foreign.status_code == 403 and foreign.get_json()["code"] == "coupon.template_forbidden"
    # the platform may make a coupon for a brand and say who pays for it
    sponsored = coupons.create(brand_id=other, funded_by="platform")
    assert sponsored.status_code == 201 and sponsored.get_json()["funded_by"] == "platform"


def test_brand_admin_cannot_make_the_platform_fund_its_coupons(shop, coupons):
    brand = shop.brand()
    resp = coupons.create(shop.merchant(brand), funded_by="platform")
    assert resp.status_code == 403, resp.get_json()
    assert resp.get_json()["code"] == "coupon.funding_forbidden"
    # and a platform coupon has no brand that could pay for it
    orphan = coupons.create(funded_by="brand")
    assert orphan.status_code == 422 and orphan.get_json()["code"] == "coupon.funding_invalid"


def test_brand_admin_manages_its_templates_not_another_brands_nor_the_platforms(shop, coupons, client):
    mine, other = shop.brand(), shop.brand()
    admin = shop.merchant(mine)
    own = coupons.template(admin)
    theirs = coupons.template(shop.merchant(other))
    platform = coupons.template()

    def set_status(template_id, status, headers=admin):
        return client.post(f"/api/v1/admin/coupon-templates/{template_id}/status", json={"status": status},
                           headers=headers)  # fmt: skip

    for template_id in (theirs, platform):
        refused = set_status(template_id, "ended")
        assert refused.status_code == 403 and refused.get_json()["code"] == "coupon.template_forbidden"
    assert coupons.template_row(theirs).status == coupons.template_row(platform).status == "active"
    assert set_status(own, "paused").get_json()["status"] == "paused"

    listed = client.get("/api/v1/admin/coupon-templates", query_string={"brand_id": other}, headers=admin)
    assert [t["id"] for t in listed.get_json()] == [own]  # a brand admin sees its own brand only
    everything = client.get("/api/v1/admin/coupon-templates", headers=coupons.platform()).get_json()
    assert {t["id"] for t in everything} == {own, theirs, platform}
    assert set_status(theirs, "paused", coupons.platform()).status_code == 200


def test_paused_or_ended_templates_give_nothing_out_and_leave_the_public_list(shop, coupons, client):
    me = shop.shopper()
    paused, ended, auto = coupons.template(), coupons.template(), coupons.template(auto_grant="signup")
    closed = coupons.template(**window(-10, -1))
    open_ = coupons.template(**window(-1, 10))
    later = coupons.template(valid_days=7, valid_from=window(1, 2)["valid_from"])  # claiming opens tomorrow
    for template_id, status in ((paused, "paused"), (ended, "ended")):
        client.post(f"/api/v1/admin/coupon-templates/{template_id}/status", json={"status": status},
                    headers=coupons.platform())  # fmt: skip
    public = client.get("/api/v1/coupon-templates").get_json()
    assert [t["id"] for t in public] == [open_]
    for template_id in (paused, ended, closed, later):
        resp = coupons.claim(me, template_id)
        assert resp.status_code == 409 and resp.get_json()["code"] == "coupon.not_issuing"
    assert coupons.claim(me, auto).get_json()["code"] == "coupon.not_claimable"
    assert coupons.wallet(me) == []
