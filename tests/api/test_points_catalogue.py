"""The points catalogue (积分兑券) over HTTP (ADR 0029): operators offer coupon templates for points (brand admins
only their brand's), members list what is offered and redeem with an Idempotency-Key; the points and the coupon
move together, and any refusal (the template's audience or limit, the item's cap or stock, too few points) leaves
both untouched."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.members.points_models import PointsCatalogueItem
from tests.catalog_helpers import assert_problem
from tests.coupon_helpers import Coupons
from tests.points_helpers import T0, Points
from tests.shop_helpers import Shop

ADMIN = "/api/v1/admin/points/catalogue"
MINE = "/api/v1/me/points/catalogue"


@pytest.fixture
def world(app, client, login) -> Points:
    clock.freeze(T0)
    return Points(Shop(app, client, login))


@pytest.fixture
def coupons(world) -> Coupons:
    return Coupons(world.shop)


def offer(world: Points, template_id: int, headers: dict | None = None, **fields):
    body = {"template_id": template_id, "points_price": 500, **fields}
    return world.client.post(ADMIN, json=body, headers=headers or world.operator)


def item_id(world: Points, template_id: int, **fields) -> int:
    made = offer(world, template_id, **fields)
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"]


def redeem(world: Points, item: int, key: str | None = None, headers: dict | None = None):
    return world.client.post(f"{MINE}/{item}/redeem",
                             headers={**(headers or world.shopper), "Idempotency-Key": key or uuid.uuid4().hex})  # fmt: skip


def redeemed_count(world: Points, item: int) -> int:
    with world.app.app_context():
        return db.session.scalar(sa.select(PointsCatalogueItem.redeemed_count).where(PointsCatalogueItem.id == item))


def test_a_member_redeems_points_for_a_coupon_once_per_key_within_the_cap(world, coupons):
    template = coupons.template(per_shopper_limit=5)
    item = item_id(world, template, per_member_limit=2, stock=10)
    assert world.adjust(1200).status_code == 201
    listed = world.client.get(MINE, headers=world.shopper).get_json()
    assert [(x["item"]["id"], x["redeemed"], x["left_for_me"]) for x in listed] == [(item, 0, 2)]

    first = redeem(world, item, key="k1")
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["points"] == 500 and body["coupon"]["template_id"] == template and body["coupon"]["source"] == "points"
    assert body["balance"]["available"] == 700
    again = redeem(world, item, key="k1")  # a retry: the same redemption, nothing taken twice
    assert again.status_code == 201 and again.get_json()["redemption_id"] == body["redemption_id"]
    assert world.balance() == (700, 0, 0)

    assert redeem(world, item).status_code == 201
    assert_problem(redeem(world, item), 409, "points.catalogue_limit_reached")
    assert [c["template_id"] for c in coupons.wallet(world.shopper)] == [template, template]
    assert [(e.kind, e.amount) for e in world.entries(kind="redeem")] == [("redeem", -500), ("redeem", -500)]
    assert world.balance() == (200, 0, 0) and redeemed_count(world, item) == 2 and world.audit() == []
    listed = world.client.get(MINE, headers=world.shopper).get_json()
    assert [(x["redeemed"], x["left_for_me"]) for x in listed] == [(2, 0)]


def test_any_refusal_rolls_back_both_the_points_and_the_coupon(world, coupons):
    assert world.adjust(2000).status_code == 201
    vip_only = item_id(world, coupons.template(audience="levels", audience_levels=[3]))
    assert_problem(redeem(world, vip_only), 403, "coupon.audience")  # refused by the coupons capability's rules
    once = item_id(world, coupons.template(per_shopper_limit=1), per_member_limit=5)
    assert redeem(world, once).status_code == 201
    assert_problem(redeem(world, once), 409, "coupon.limit_reached")  # the template's own per-shopper limit
    sold_out = item_id(world, coupons.template(), stock=0)
    assert_problem(redeem(world, sold_out), 409, "points.catalogue_sold_out")
    dear = item_id(world, coupons.template(), points_price=5000)
    assert_problem(redeem(world, dear), 409, "points.insufficient")

    assert world.balance() == (1500, 0, 0)  # only the one redemption that succeeded took points
    assert len(coupons.wallet(world.shopper)) == 1
    assert [redeemed_count(world, i) for i in (vip_only, once, sold_out, dear)] == [0, 1, 0, 0]
    assert len(world.entries(kind="redeem")) == 1 and world.audit() == []


def test_items_are_offered_only_while_active_in_their_window_and_in_stock(world, coupons):
    assert world.adjust(2000).status_code == 201
    later = item_id(world, coupons.template(), starts_at=(T0 + timedelta(days=1)).isoformat())
    paused = item_id(world, coupons.template(), status="paused")
    live = item_id(world, coupons.template(), points_price=100)
    assert [x["item"]["id"] for x in world.client.get(MINE, headers=world.shopper).get_json()] == [live]
    assert_problem(redeem(world, later), 409, "points.catalogue_not_offered")
    assert_problem(redeem(world, paused), 409, "points.catalogue_not_offered")
    assert_problem(redeem(world, 999999), 404, "points.catalogue_item_not_found")
    world.later(timedelta(days=2))
    offered = world.client.get(MINE, headers=world.shopper).get_json()
    assert {x["item"]["id"] for x in offered} == {later, live}
    # the member centre shows the same offers (GET /me/member's `catalogue` section)
    assert world.client.get("/api/v1/me/member", headers=world.shopper).get_json()["catalogue"] == offered


def test_brand_admins_manage_their_brands_items_only_and_bad_input_is_a_problem(world, coupons):
    mine = coupons.template(world.admin, scope_type="brand", scope_ids=[world.brand])
    platform = coupons.template()
    assert_problem(offer(world, platform, world.admin), 403, "points.catalogue_forbidden")
    made = offer(world, mine, world.admin, stock=5)
    assert made.status_code == 201, made.get_json()
    item = made.get_json()
    assert item["brand_id"] == world.brand and item["redeemed_count"] == 0
    other = world.login("brand_admin", world.shop.brand())
    assert world.client.get(ADMIN, headers=other).get_json() == []
    assert [x["id"] for x in world.client.get(ADMIN, headers=world.admin).get_json()] == [item["id"]]
    assert_problem(world.client.patch(f"{ADMIN}/{item['id']}", json={"points_price": 10}, headers=other), 403,
                   "points.catalogue_forbidden")  # fmt: skip
    changed = world.client.patch(f"{ADMIN}/{item['id']}", json={"points_price": 10, "status": "paused"},
                                 headers=world.admin)  # fmt: skip
    assert changed.status_code == 200 and changed.get_json()["points_price"] == 10

    assert offer(world, mine, points_price=0).status_code == 422
    assert offer(world, mine, points_price="many").status_code == 422
    assert_problem(offer(world, 999999), 404, "coupon.template_not_found")
    window = offer(world, mine, starts_at=T0.isoformat(), ends_at=T0.isoformat())
    assert_problem(window, 422, "points.catalogue_window", field="ends_at")
    by_shopper = world.client.post(ADMIN, json={"template_id": mine, "points_price": 5}, headers=world.shopper)
    assert by_shopper.status_code == 403
    assert_problem(world.client.post(f"{MINE}/{item['id']}/redeem", headers=world.shopper), 400,
                   "idempotency.key_missing")  # fmt: skip
