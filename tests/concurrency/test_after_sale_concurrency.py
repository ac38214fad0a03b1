"""Concurrent after-sale requests for the same units: one is taken, the others are refused (PostgreSQL is
where this means something; SQLite runs it serialised)."""

from __future__ import annotations

import pytest

from mall.orders.after_sale import AfterSale
from tests.api.test_after_sale import ask, decide, line_units, paid_line
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
