"""Bundles (套餐) are bought like SKUs: a cart line, a quote at the bundle's price, an order of one line per part
(the price split over the parts by their list prices), stock taken from every part or from none, cancellation
returning it all, and after-sale refunds per part line (ADR 0010)."""

from __future__ import annotations

import uuid

import pytest

from api.extensions import db
from mall.catalog import bundles, taxonomy
from mall.catalog import services as catalog
from mall.checkout import services as checkout
from mall.errors import Conflict
from mall.money import allocate
from tests.api.test_after_sale import ask, decide
from tests.shop_helpers import PLATFORM, Shop
from tests.test_order_writing import state, write

PRICE = 9900  # the bundle's price; its parts list at 3000 x2, 4500 and 2000 (14500)
PARTS = [(3000, 2), (4500, 1), (2000, 1)]  # (list price, units in one bundle)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def bundle(shop, app):
    """An active bundle of three SKUs (stock 10 each, sold alone at 90% of list): (bundle id, brand, SKU ids)."""
    brand = shop.brand()
    with app.app_context():
        category = taxonomy.create_category(db.session, actor=PLATFORM, name=f"c-{uuid.uuid4().hex[:6]}")
        skus = []
        for list_price, _ in PARTS:
            product = catalog.create_product(
                db.session, actor=PLATFORM, brand_id=brand, currency="CNY", category_id=category.id,
                title=f"Part {uuid.uuid4().hex[:6]}", tier="profit",
                skus=[{"specs": {}, "price": list_price * 9 // 10, "list_price": list_price, "stock": 10}],
            )  # fmt: skip
            catalog.set_product_status(db.session, actor=PLATFORM, product_id=product.id, status="active")
            skus.append(product.skus[0].id)
        items = [{"sku_id": s, "quantity": n} for s, (_, n) in zip(skus, PARTS, strict=True)]
        made = bundles.create_bundle(db.session, actor=PLATFORM, brand_id=brand, title="Starter set", price=PRICE,
                                     items=items)  # fmt: skip
        bundles.set_bundle_status(db.session, actor=PLATFORM, bundle_id=made.id, status="active")
        db.session.commit()
        return made.id, brand, skus


def add_bundle(shop, headers, bundle_id, quantity=1):
    resp = shop.client.post("/api/v1/cart/bundles", json={"bundle_id": bundle_id, "quantity": quantity},
                            headers=headers)  # fmt: skip
    assert resp.status_code == 200, resp.get_json()
    return next(line for line in resp.get_json()["lines"] if line["bundle_id"] == bundle_id)


def expected_payables(quantity: int) -> list[int]:
    """Each part line's payable: the bundle price split by list price x units, times the bundles bought."""
    return [share * quantity for share in allocate(PRICE, [price * n for price, n in PARTS])]


def test_a_bundle_goes_in_the_cart_as_one_line_and_merges(shop, bundle):
    bundle_id, _, skus = bundle
    me = shop.shopper()
    add_bundle(shop, me, bundle_id)
    line = add_bundle(shop, me, bundle_id, 2)

    assert (line["quantity"], line["unit_price"], line["sku_id"], line["problem"]) == (3, PRICE, None, None)
    assert line["bundle_items"] == [{"sku_id": s, "quantity": n} for s, (_, n) in zip(skus, PARTS, strict=True)]
    assert line["stock"] == 5  # 10 units of the first part, two per bundle
    assert len(shop.client.get("/api/v1/cart", headers=me).get_json()["lines"]) == 1


def test_an_archived_bundle_cannot_be_added(shop, bundle, app):
    bundle_id, *_ = bundle
    with app.app_context():
        bundles.set_bundle_status(db.session, actor=PLATFORM, bundle_id=bundle_id, status="archived")
        db.session.commit()
    resp = shop.client.post("/api/v1/cart/bundles", json={"bundle_id": bundle_id}, headers=shop.shopper())
    assert resp.status_code == 422 and resp.get_json()["code"] == "cart.bundle_unavailable"


def test_the_quote_shows_the_bundle_price_split_over_its_parts(shop, bundle):
    bundle_id, _, skus = bundle
    me = shop.shopper()
    line = add_bundle(shop, me, bundle_id, 2)
    quote = shop.client.post("/api/v1/checkout/quote", json={"line_ids": [line["id"]]}, headers=me).get_json()

    (shown,) = quote["bundles"]
    assert (shown["unit_price"], shown["quantity"], shown["subtotal"], shown["payable"]) == (PRICE, 2, 2 * PRICE,
                                                                                              2 * PRICE)  # fmt: skip
    assert [ln["sku_id"] for ln in quote["lines"]] == skus
    assert [ln["quantity"] for ln in quote["lines"]] == [2 * n for _, n in PARTS]
    assert [ln["payable"] for ln in quote["lines"]] == expected_payables(2)
    assert {ln["price_source"] for ln in quote["lines"]} == {"bundle"}
    assert quote["totals"]["payable"] == 2 * PRICE
    assert quote["problems"] == []


def test_an_order_has_a_line_per_part_summing_to_the_bundle_price_and_takes_every_parts_stock(shop, bundle):
    bundle_id, _, skus = bundle
    me = shop.shopper()
    line = add_bundle(shop, me, bundle_id, 3)
    resp = shop.place(me, [line["id"]], shop.address(me), expected_payable=3 * PRICE)

    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    lines = order["sub_orders"][0]["lines"]
    assert [(ln["sku_id"], ln["bundle_id"], ln["bundle_quantity"]) for ln in lines] == [(s, bundle_id, 3) for s in skus]
    assert [ln["quantity"] for ln in lines] == [3 * n for _, n in PARTS]
    assert [ln["payable"] for ln in lines] == expected_payables(3)
    assert sum(ln["payable"] for ln in lines) == order["payable_total"] == 3 * PRICE
    assert [shop.stock(s) for s in skus] == [10 - 3 * n for _, n in PARTS]
    assert shop.client.get("/api/v1/cart", headers=me).get_json()["lines"] == []


def test_a_bundle_beside_its_own_part_bought_alone(shop, bundle):
    bundle_id, _, skus = bundle
    me = shop.shopper()
    line_ids = [add_bundle(shop, me, bundle_id)["id"], shop.add(me, skus[0], 1)]
    resp = shop.place(me, line_ids, shop.address(me))

    assert resp.status_code == 201, resp.get_json()
    lines = resp.get_json()["sub_orders"][0]["lines"]
    found = sorted((ln["sku_id"], ln["bundle_id"] or 0, ln["quantity"]) for ln in lines)
    assert found == sorted([(skus[0], 0, 1), *((s, bundle_id, n) for s, (_, n) in zip(skus, PARTS, strict=True))])
    assert shop.stock(skus[0]) == 10 - 1 - 2


def test_one_part_out_of_stock_is_409_and_nothing_is_reserved(shop, bundle, app):
    bundle_id, brand, skus = bundle
    me = shop.shopper()
    line = add_bundle(shop, me, bundle_id, 2)
    with app.app_context():
        catalog.adjust_stock(db.session, actor=PLATFORM, sku_id=skus[2], delta=-9)  # 1 left, 2 needed
        db.session.commit()

    resp = shop.place(me, [line["id"]], shop.address(me))
    assert resp.status_code == 409, resp.get_json()
    assert resp.get_json()["code"] == "checkout.lines_unavailable"
    assert resp.get_json()["problems"] == [
        {"line_id": line["id"], "sku_id": skus[2], "bundle_id": bundle_id, "reason": "insufficient_stock"}
    ]
    assert [shop.stock(s) for s in skus] == [10, 10, 1]


def test_stock_gone_between_quote_and_placement_takes_no_part(shop, bundle, app):
    """The reservation itself is all or nothing (on PostgreSQL in the order's one statement): the last part runs
    out after the quote, and the parts before it keep their stock."""
    bundle_id, _, skus = bundle
    me = shop.shopper()
    line = add_bundle(shop, me, bundle_id, 2)
    user_id, address_id = shop.user_id(me), shop.address(me)
    with app.app_context():
        result = checkout.quote(db.session, shopper_id=user_id, line_ids=[line["id"]], address_id=address_id)
        catalog.adjust_stock(db.session, actor=PLATFORM, sku_id=skus[2], delta=-9)
        db.session.commit()
        before = state(skus)
        with pytest.raises(Conflict) as refused:
            write(user_id, address_id, [line["id"]], result)
        db.session.rollback()
        assert refused.value.code == "stock.insufficient"
        assert state(skus) == before == ([10, 10, 1], before[1])


def test_cancelling_returns_every_parts_stock(shop, bundle):
    bundle_id, _, skus = bundle
    me = shop.shopper()
    order = shop.place(me, [add_bundle(shop, me, bundle_id, 2)["id"]], shop.address(me)).get_json()
    assert [shop.stock(s) for s in skus] == [6, 8, 8]

    resp = shop.client.post(f"/api/v1/orders/{order['id']}/cancel", json={}, headers=me)
    assert resp.status_code == 200, resp.get_json()
    assert [shop.stock(s) for s in skus] == [10, 10, 10]


def test_a_part_line_is_refunded_on_its_own(shop, bundle, client):
    bundle_id, brand, skus = bundle
    me = shop.shopper()
    order = shop.place(me, [add_bundle(shop, me, bundle_id, 2)["id"]], shop.address(me)).get_json()
    assert shop.pay(me, order["id"]).status_code == 200
    sub = order["sub_orders"][0]
    part = sub["lines"][0]  # 4 units of the first part, for 2 bundles

    case = ask(client, me, sub["id"], part["id"], 1)
    assert case.status_code == 201, case.get_json()
    assert decide(client, shop, brand, case.get_json()["id"]).get_json()["status"] == "refunded"

    after = client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()
    lines = after["sub_orders"][0]["lines"]
    assert (lines[0]["refunded_quantity"], lines[0]["refunded_amount"]) == (1, part["payable"] // 4)
    assert [ln["refunded_amount"] for ln in lines[1:]] == [0, 0]
    assert after["refunded_total"] == part["payable"] // 4


@pytest.mark.parametrize(("combinable_with", "usable"), [(None, False), (["bundle"], True)])
def test_a_coupon_applies_on_a_bundle_only_when_its_template_combines_with_bundles(
    shop, bundle, combinable_with, usable
):
    from tests.coupon_helpers import Coupons, coupon_discount, listed

    coupons = Coupons(shop)
    me = shop.shopper()
    fields = {} if combinable_with is None else {"combinable_with": combinable_with}
    coupon = coupons.give(me, coupons.template(amount=1000, **fields))
    quote = coupons.quote(me, [add_bundle(shop, me, bundle[0])["id"]])

    assert (listed(quote, coupon)["usable"], listed(quote, coupon)["reason"]) == (
        usable, None if usable else "not_combinable"
    )  # fmt: skip
    assert coupon_discount(quote, coupon) == (1000 if usable else 0)
    assert quote["totals"]["payable"] == PRICE - (1000 if usable else 0)
    assert quote["bundles"][0]["payable"] == quote["totals"]["payable"]


def test_a_bundle_priced_above_its_parts_list_prices_cannot_be_bought(shop, bundle, app):
    from mall.catalog.models import Bundle

    bundle_id, _, skus = bundle
    with app.app_context():
        db.session.get(Bundle, bundle_id).price = sum(price * n for price, n in PARTS) + 1
        db.session.commit()
    me = shop.shopper()
    line = add_bundle(shop, me, bundle_id)
    assert line["problem"] == "price_above_parts"

    resp = shop.place(me, [line["id"]], shop.address(me))
    assert resp.status_code == 409 and resp.get_json()["code"] == "checkout.lines_unavailable"
    assert [shop.stock(s) for s in skus] == [10, 10, 10]
