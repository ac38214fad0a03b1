"""After-sale requests hold their units until decided: the same units cannot be in two open requests."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.orders.after_sale import AfterSale
from mall.orders.models import OrderLine
from tests.refund_audit import refund_facts
from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit  # every order's refunds add up after each test (ADR 0012)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def paid_line(shop, *, units=3, price=3333):
    """A paid order of `units` units: (shopper headers, brand, sub-order id, line id)."""
    brand = shop.brand()
    me = shop.shopper()
    order = shop.place(me, [shop.add(me, shop.sku(brand, price=price, stock=10), units)], shop.address(me)).get_json()
    assert shop.pay(me, order["id"]).status_code == 200
    sub = order["sub_orders"][0]
    return me, brand, sub["id"], sub["lines"][0]["id"]


def ask(client, headers, sub_id, line_id, quantity):
    return client.post(f"/api/v1/sub-orders/{sub_id}/after-sales", headers=headers,
                       json={"reason": "no", "lines": [{"order_line_id": line_id, "quantity": quantity}]})  # fmt: skip


def decide(client, shop, brand, case_id, verdict="approve"):
    return client.post(f"/api/v1/admin/after-sales/{case_id}/{verdict}", json={}, headers=shop.merchant(brand))


def line_units(app, line_id) -> tuple[int, int]:
    with app.app_context():
        line = db.session.get(OrderLine, line_id)
        return line.requested_quantity, line.refunded_quantity


def test_a_second_request_for_units_an_open_request_holds_is_409_and_the_first_stays_approvable(shop, client, app):
    me, brand, sub_id, line_id = paid_line(shop)
    first = ask(client, me, sub_id, line_id, 3)
    assert first.status_code == 201, first.get_json()

    second = ask(client, me, sub_id, line_id, 2)
    assert second.status_code == 409, second.get_json()
    assert second.get_json()["code"] == "after_sale.units_requested"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AfterSale)) == 1

    approved = decide(client, shop, brand, first.get_json()["id"])
    assert approved.status_code == 200 and approved.get_json()["status"] == "refunded"
    assert line_units(app, line_id) == (0, 3)


def test_units_of_one_open_request_leave_the_rest_of_the_line_askable(shop, client, app):
    me, brand, sub_id, line_id = paid_line(shop)
    assert ask(client, me, sub_id, line_id, 1).status_code == 201
    assert ask(client, me, sub_id, line_id, 2).status_code == 201  # the two units nobody asked for
    assert ask(client, me, sub_id, line_id, 1).status_code == 409
    assert line_units(app, line_id) == (3, 0)


def test_a_rejected_request_gives_its_units_back(shop, client, app):
    me, brand, sub_id, line_id = paid_line(shop)
    first = ask(client, me, sub_id, line_id, 2).get_json()
    assert decide(client, shop, brand, first["id"], "reject").status_code == 200
    assert line_units(app, line_id) == (0, 0)
    again = ask(client, me, sub_id, line_id, 3)
    assert again.status_code == 201, again.get_json()
    assert decide(client, shop, brand, again.get_json()["id"]).get_json()["status"] == "refunded"
    assert line_units(app, line_id) == (0, 3)


def test_more_units_than_the_line_has_left_is_still_422(shop, client):
    me, brand, sub_id, line_id = paid_line(shop)
    resp = ask(client, me, sub_id, line_id, 4)
    assert resp.status_code == 422 and resp.get_json()["code"] == "after_sale.quantity_exceeds"


@pytest.fixture
def coupons(shop):
    from mall import clock
    from tests.coupon_helpers import DAYTIME, Coupons

    clock.freeze(DAYTIME)
    return Coupons(shop)


def hundred_over_three(shop, coupons):
    """A paid order of one line: 3 units paying 100 together (150 less a 50 coupon), and an 8.00 shipping fee."""
    brand = shop.brand(fee=800)
    me = shop.shopper()
    coupon = coupons.give(me, coupons.template(amount=50))
    line = shop.add(me, shop.sku(brand, price=50, stock=10), 3)
    order = shop.place(me, [line], shop.address(me), coupon_ids=[coupon]).get_json()
    assert order["sub_orders"][0]["lines"][0]["payable"] == 100, order
    assert shop.pay(me, order["id"]).status_code == 200
    sub = order["sub_orders"][0]
    return me, brand, order, sub["id"], sub["lines"][0]["id"]


@pytest.mark.parametrize("approve_order", [(0, 1), (1, 0)], ids=["in_request_order", "reversed"])
def test_one_and_two_units_refund_exactly_what_the_line_paid_and_close_the_sub_order(shop, client, app, coupons,
                                                                                    approve_order):  # fmt: skip
    me, brand, order, sub_id, line_id = hundred_over_three(shop, coupons)
    cases = [ask(client, me, sub_id, line_id, 1).get_json(), ask(client, me, sub_id, line_id, 2).get_json()]

    approved = [decide(client, shop, brand, cases[i]["id"]).get_json() for i in approve_order]

    # priced at approval on the units refunded by then: 33 + 67 one way, 66 + 34 the other, 100 either way
    expected = {(0, 1): [33, 67], (1, 0): [66, 34]}[approve_order]
    assert [case["amount"] for case in approved] == expected
    assert [case["lines"][0]["amount"] for case in approved] == expected
    after = client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()
    assert after["sub_orders"][0]["lines"][0]["refunded_amount"] == 100
    assert after["refunded_total"] == after["paid_total"] == 100 + 800  # the fee with the last unit (not shipped)
    assert after["sub_orders"][0]["status"] == "closed" and after["status"] == "closed"
    ship = client.post(f"/api/v1/admin/sub-orders/{sub_id}/ship", json={"carrier": "SF", "tracking_number": "1"},
                       headers=shop.merchant(brand))  # fmt: skip
    assert ship.status_code == 409, ship.get_json()  # no longer shippable
    with app.app_context():
        assert refund_facts(db.session, order["id"])["ledger"] == [
            (line_id, 2 if approve_order == (1, 0) else 1, expected[0], "after_sale"),
            (line_id, 1 if approve_order == (1, 0) else 2, expected[1], "after_sale"),
            (None, 0, 800, "after_sale"),
        ]


def test_a_request_shows_the_estimate_after_units_other_requests_hold(shop, client, coupons):
    me, brand, order, sub_id, line_id = hundred_over_three(shop, coupons)
    assert ask(client, me, sub_id, line_id, 1).get_json()["amount"] == 33
    assert ask(client, me, sub_id, line_id, 2).get_json()["amount"] == 67  # was 66: priced as if unit 1 were not
