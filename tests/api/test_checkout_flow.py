"""The shopper's whole path over HTTP: cart -> quote -> order -> pay -> ship -> confirm, and refunds."""

from __future__ import annotations

import pytest

from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit  # every order's refunds add up after each test (ADR 0012)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def test_login_cart_quote_order_pay_ship_confirm_completes(shop, client):
    brand_a = shop.brand(fee=800, free_above=10000)
    brand_b = shop.brand(fee=600, free_above=None)
    sku_a, sku_b = shop.sku(brand_a, price=4500, stock=5), shop.sku(brand_b, price=1999, stock=5)
    me = shop.shopper()
    address = shop.address(me)
    lines = [shop.add(me, sku_a, 2), shop.add(me, sku_b, 1)]

    quote = client.post("/api/v1/checkout/quote", json={"line_ids": lines, "address_id": address}, headers=me)
    assert quote.status_code == 200, quote.get_json()
    q = quote.get_json()
    assert q["totals"] == {"items": 2 * 4500 + 1999, "discounts": 0, "shipping": 800 + 600,
                           "payable": 2 * 4500 + 1999 + 1400}  # fmt: skip
    assert {b["brand_id"]: b["shipping_fee"] for b in q["brands"]} == {brand_a: 800, brand_b: 600}

    placed = shop.place(me, lines, address, expected_payable=q["totals"]["payable"])
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    assert order["status"] == "pending_payment" and order["payable_total"] == q["totals"]["payable"]
    assert sorted(s["brand_id"] for s in order["sub_orders"]) == sorted([brand_a, brand_b])
    assert (shop.stock(sku_a), shop.stock(sku_b)) == (3, 4)  # reserved at placement
    assert client.get("/api/v1/cart", headers=me).get_json()["lines"] == []  # ordered lines left the cart

    paid = shop.pay(me, order["id"])
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["status"] == "succeeded" and paid.get_json()["amount"] == order["payable_total"]
    order = client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()
    assert order["status"] == "paid" and order["paid_total"] == order["payable_total"]

    sub_a = next(s for s in order["sub_orders"] if s["brand_id"] == brand_a)
    ship_a = f"/api/v1/admin/sub-orders/{sub_a['id']}/ship"
    shipped = client.post(ship_a, json={"carrier": "SF", "tracking_number": "SF1"}, headers=shop.merchant(brand_a))
    assert shipped.status_code == 200 and shipped.get_json()["status"] == "shipped"
    other_brand = client.post(ship_a, json={"carrier": "SF", "tracking_number": "x"}, headers=shop.merchant(brand_b))
    assert other_brand.status_code == 403

    done = client.post(f"/api/v1/sub-orders/{sub_a['id']}/confirm-receipt", headers=me)
    assert done.status_code == 200
    assert done.get_json()["status"] == "completed" and done.get_json()["after_sale_deadline"] is not None

    sub_b = next(s for s in order["sub_orders"] if s["brand_id"] == brand_b)
    client.post(f"/api/v1/admin/sub-orders/{sub_b['id']}/ship", json={"carrier": "YTO", "tracking_number": "Y1"},
                headers=shop.merchant(brand_b))  # fmt: skip
    client.post(f"/api/v1/sub-orders/{sub_b['id']}/confirm-receipt", headers=me)
    final = client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()
    assert final["status"] == "completed"
    history = [e["type"] for e in client.get(f"/api/v1/orders/{order['id']}/events", headers=me).get_json()]
    assert history[:2] == ["order.placed", "order.paid"] and history.count("sub_order.completed") == 2
    assert history[-1] == "order.completed"


def test_partial_refund_returns_exactly_what_was_paid_for_those_units(shop, client):
    brand = shop.brand(fee=500, free_above=None)
    sku = shop.sku(brand, price=3333, stock=10)
    me = shop.shopper()
    order = shop.place(me, [shop.add(me, sku, 3)], shop.address(me)).get_json()
    assert shop.pay(me, order["id"]).status_code == 200
    sub = order["sub_orders"][0]
    line = sub["lines"][0]

    asked = client.post(f"/api/v1/sub-orders/{sub['id']}/after-sales",
                        json={"reason": "too big", "lines": [{"order_line_id": line["id"], "quantity": 1}]},
                        headers=me)  # fmt: skip
    assert asked.status_code == 201, asked.get_json()
    assert asked.get_json()["amount"] == 3333
    approved = client.post(f"/api/v1/admin/after-sales/{asked.get_json()['id']}/approve", json={},
                           headers=shop.merchant(brand))  # fmt: skip
    assert approved.status_code == 200 and approved.get_json()["status"] == "refunded"

    after = client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()
    assert after["refunded_total"] == 3333 and after["paid_total"] == 3 * 3333 + 500
    assert after["sub_orders"][0]["lines"][0]["refunded_quantity"] == 1
    assert after["sub_orders"][0]["refunded_total"] == 3333
    assert shop.stock(sku) == 10 - 3 + 1  # not shipped yet: the unit goes back to stock

    too_many = client.post(f"/api/v1/sub-orders/{sub['id']}/after-sales",
                           json={"reason": "all", "lines": [{"order_line_id": line["id"], "quantity": 3}]},
                           headers=me)  # fmt: skip
    assert too_many.status_code == 422 and too_many.get_json()["code"] == "after_sale.quantity_exceeds"

    rest = client.post(
        f"/api/v1/sub-orders/{sub['id']}/after-sales",
        json={"reason": "all", "lines": [{"order_line_id": line["id"], "quantity": 2}]},
        headers=me,
    )
    client.post(f"/api/v1/admin/after-sales/{rest.get_json()['id']}/approve", json={}, headers=shop.merchant(brand))
    closed = client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()
    # every unit refunded before shipping: the shipping fee comes back too, and nothing more
    assert closed["refunded_total"] == closed["paid_total"] == 3 * 3333 + 500
    assert closed["status"] == "closed" and closed["sub_orders"][0]["status"] == "closed"
