"""Concurrent after-sale requests for the same units: one is taken, the others are refused (PostgreSQL is
where this means something; SQLite runs it serialised)."""

from __future__ import annotations

import pytest

from mall.orders.after_sale import AfterSale
from tests.api.test_after_sale import ask, decide, hundred_over_three, line_units, paid_line
from tests.concurrency.test_order_concurrency import count, race
from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit  # every order's refunds add up after each test (ADR 0012)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def test_concurrent_requests_for_the_same_units_leave_one_open_request_that_can_be_approved(shop, app):
    me, brand, sub_id, line_id = paid_line(shop, units=2)

    responses = race(app, [lambda client: ask(client, me, sub_id, line_id, 2)] * 6)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 5, [r.get_json() for r in responses]
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} == {"after_sale.units_requested"}
    assert count(app, AfterSale, status="requested") == 1
    assert line_units(app, line_id) == (2, 0)
    case = next(r.get_json() for r in responses if r.status_code == 201)
    approved = decide(app.test_client(), shop, brand, case["id"])
    assert approved.status_code == 200 and approved.get_json()["status"] == "refunded"
    assert line_units(app, line_id) == (0, 2)
    assert count(app, AfterSale, status="requested") == 0


def test_concurrent_approvals_of_two_requests_on_one_line_refund_exactly_what_it_paid(shop, app, client):
    from mall import clock
    from tests.coupon_helpers import DAYTIME, Coupons

    clock.freeze(DAYTIME)
    me, brand, order, sub_id, line_id = hundred_over_three(shop, Coupons(shop))
    cases = [ask(client, me, sub_id, line_id, n).get_json()["id"] for n in (1, 2)]
    merchant = shop.merchant(brand)

    def approve(case_id):
        return lambda c: c.post(f"/api/v1/admin/after-sales/{case_id}/approve", json={}, headers=merchant)

    responses = race(app, [approve(case_id) for case_id in cases])

    assert [r.status_code for r in responses] == [200, 200], [r.get_json() for r in responses]
    assert sum(r.get_json()["amount"] for r in responses) == 100  # 33 + 67 or 66 + 34, never 99
    after = client.get(f"/api/v1/orders/{order['id']}", headers=me).get_json()
    assert after["refunded_total"] == after["paid_total"] == 900 and after["status"] == "closed"
