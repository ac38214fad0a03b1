"""Coupons on flash purchases and group-buys: the checkout's pipeline and reason codes, a quote before buying,
and the coupon's life (locked at placement, used at payment, back on cancel) as on a cart order."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from mall import clock
from tests.api.test_flash_sales import START, buy, buyer
from tests.api.test_flash_sales import sale as sale  # noqa: F401 (the fixture)
from tests.api.test_group_buy import NOW, campaign, key, shopper
from tests.coupon_helpers import Coupons
from tests.shop_helpers import Shop
from workers.flash import gate


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def coupons(shop) -> Coupons:
    return Coupons(shop)


def two_coupons(coupons, me, promotion: str) -> tuple[int, int]:
    """A 500-off coupon that combines with the promotion, and an 800-off one that does not (the default)."""
    combinable = coupons.give(me, coupons.template(amount=500, combinable_with=[promotion]))
    plain = coupons.give(me, coupons.template(amount=800))
    return combinable, plain


def by_id(quote: dict) -> dict[int, dict]:
    return {c["coupon_id"]: c for c in quote["coupons"]}


def flash_path(sale, action: str) -> str:
    return f"/api/v1/flash-sales/{sale['id']}/items/{sale['item']}/{action}"


def test_flash_quote_lists_coupons_and_a_combinable_one_lowers_the_purchase(shop, client, coupons, sale):
    me, address = buyer(shop)
    combinable, plain = two_coupons(coupons, me, "flash_sale")
    clock.freeze(START)

    bare = client.post(flash_path(sale, "quote"), json={}, headers=me)
    assert bare.status_code == 200, bare.get_json()
    listed = by_id(bare.get_json())
    entry = listed[combinable]
    assert (entry["usable"], entry["reason"], entry["best"], entry["applied"]) == (True, None, True, False)
    assert (listed[plain]["usable"], listed[plain]["reason"]) == (False, "not_combinable")
    assert bare.get_json()["totals"]["payable"] == 3900 and bare.get_json()["applied_coupon_ids"] == []
    assert bare.get_json()["lines"][0]["price_source"] == "flash_sale"

    refused_quote = client.post(flash_path(sale, "quote"), json={"coupon_ids": [plain]}, headers=me)
    assert refused_quote.status_code == 422
    assert (refused_quote.get_json()["code"], refused_quote.get_json()["reason"]) == (
        "coupon.not_applicable", "not_combinable")  # fmt: skip
    refused = client.post(flash_path(sale, "purchase"), json={"address_id": address, "coupon_ids": [plain]},
                          headers={**me, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert refused.status_code == 422, refused.get_json()
    assert {k: refused.get_json()[k] for k in ("code", "reason", "coupon_id")} == {
        "code": "coupon.not_applicable", "reason": "not_combinable", "coupon_id": plain}  # fmt: skip
    assert gate().counters(sale["item"]) == (3, {})  # the refused purchase gave its unit back

    quoted = client.post(flash_path(sale, "quote"), json={"coupon_ids": [combinable]}, headers=me).get_json()
    assert quoted["totals"]["payable"] == 3400 and quoted["applied_coupon_ids"] == [combinable]
    bought = client.post(flash_path(sale, "purchase"), json={"address_id": address, "coupon_ids": [combinable]},
                         headers={**me, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert bought.status_code == 201, bought.get_json()
    order = bought.get_json()
    assert (order["discount_total"], order["payable_total"]) == (500, quoted["totals"]["payable"])
    assert order["sub_orders"][0]["lines"][0]["unit_price"] == 3900
    locked = coupons.row(combinable)
    assert (locked.status, locked.order_id) == ("locked", order["id"])
    assert coupons.row(plain).status == "available"

    assert client.post(f"/api/v1/orders/{order['id']}/cancel", headers=me).status_code == 200
    back = coupons.row(combinable)
    assert (back.status, back.order_id) == ("available", None)


def test_flash_purchase_without_coupon_ids_uses_none_and_paying_uses_a_named_one(shop, client, coupons, sale):
    me, address = buyer(shop)
    combinable, _ = two_coupons(coupons, me, "flash_sale")
    clock.freeze(START)
    plain_order = buy(shop, client, sale, me, address).get_json()
    assert plain_order["payable_total"] == 3900 and coupons.row(combinable).status == "available"

    other, other_address = buyer(shop)
    mine = coupons.give(other, coupons.template(amount=500, combinable_with=["flash_sale"]))
    order = client.post(flash_path(sale, "purchase"), json={"address_id": other_address, "coupon_ids": [mine]},
                        headers={**other, "Idempotency-Key": uuid.uuid4().hex}).get_json()  # fmt: skip
    assert order["payable_total"] == 3400
    assert shop.pay(other, order["id"]).status_code == 200
    assert (coupons.row(mine).status, coupons.row(mine).order_id) == ("used", order["id"])


def test_group_buy_quotes_and_open_and_join_take_combinable_coupons_only(shop, client, coupons):
    clock.freeze(NOW)
    camp = campaign(shop, client)
    leader, address = shopper(shop)
    combinable, plain = two_coupons(coupons, leader, "group_buy")

    quoted = client.post(f"/api/v1/group-campaigns/{camp['id']}/quote", json={}, headers=leader)
    assert quoted.status_code == 200, quoted.get_json()
    listed = by_id(quoted.get_json())
    assert (listed[combinable]["usable"], listed[plain]["reason"]) == (True, "not_combinable")
    assert quoted.get_json()["totals"]["payable"] == 5900 - 500  # the leader's price

    refused = client.post(f"/api/v1/group-campaigns/{camp['id']}/groups",
                          json={"address_id": address, "coupon_ids": [plain]}, headers=key(leader))  # fmt: skip
    assert refused.status_code == 422
    assert (refused.get_json()["code"], refused.get_json()["reason"]) == ("coupon.not_applicable", "not_combinable")
    opened = client.post(f"/api/v1/group-campaigns/{camp['id']}/groups",
                         json={"address_id": address, "coupon_ids": [combinable]}, headers=key(leader))  # fmt: skip
    assert opened.status_code == 201, opened.get_json()
    leader_order = opened.get_json()["order"]
    assert leader_order["payable_total"] == 5400 - 500
    assert (coupons.row(combinable).status, coupons.row(combinable).order_id) == ("locked", leader_order["id"])
    assert shop.pay(leader, leader_order["id"]).status_code == 200
    assert coupons.row(combinable).status == "used"
    group_id = opened.get_json()["group"]["id"]

    member, member_address = shopper(shop)
    member_combinable, member_plain = two_coupons(coupons, member, "group_buy")
    join_quote = client.post(f"/api/v1/groups/{group_id}/quote", json={"coupon_ids": [member_combinable]},
                             headers=member).get_json()  # fmt: skip
    assert join_quote["totals"]["payable"] == 5900 - 500
    assert by_id(join_quote)[member_plain]["reason"] == "not_combinable"
    join_path = f"/api/v1/groups/{group_id}/join"
    refused_join = client.post(join_path, json={"address_id": member_address, "coupon_ids": [member_plain]},
                               headers=key(member))  # fmt: skip
    assert refused_join.status_code == 422 and refused_join.get_json()["reason"] == "not_combinable"
    joined = client.post(join_path, json={"address_id": member_address, "coupon_ids": [member_combinable]},
                         headers=key(member))  # fmt: skip
    assert joined.status_code == 201, joined.get_json()
    assert joined.get_json()["payable_total"] == join_quote["totals"]["payable"]
    assert client.get(f"/api/v1/groups/{group_id}").get_json()["seats_taken"] == 2  # the refused join took no seat
    clock.advance(timedelta(minutes=16))  # the member's order times out: the seat and the coupon come back
    from workers.jobs.orders import expire_unpaid_order

    assert expire_unpaid_order(joined.get_json()["id"]) is True
    assert (coupons.row(member_combinable).status, coupons.row(member_combinable).order_id) == ("available", None)


def test_coupons_covering_a_flash_or_group_buy_price_pay_the_order_at_once(shop, client, coupons, sale):
    me, address = buyer(shop)
    covering = coupons.give(me, coupons.template(amount=5000, combinable_with=["flash_sale"]))
    clock.freeze(START)
    order = client.post(flash_path(sale, "purchase"), json={"address_id": address, "coupon_ids": [covering]},
                        headers={**me, "Idempotency-Key": uuid.uuid4().hex}).get_json()  # fmt: skip
    assert (order["payable_total"], order["status"]) == (0, "paid")
    assert client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()["status"] == "paid"
    assert coupons.row(covering).status == "used"

    camp = campaign(shop, client)
    leader, leader_address = shopper(shop)
    free = coupons.give(leader, coupons.template(amount=9000, combinable_with=["group_buy"]))
    opened = client.post(f"/api/v1/group-campaigns/{camp['id']}/groups",
                         json={"address_id": leader_address, "coupon_ids": [free]}, headers=key(leader)).get_json()  # fmt: skip
    assert (opened["order"]["payable_total"], opened["order"]["status"]) == (0, "paid")
    assert client.get(f"/api/v1/groups/{opened['group']['id']}").get_json()["status"] == "forming"
