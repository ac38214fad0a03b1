"""The guide workbench's API: a guide's own visits, bound customers, attributed orders and today's summary, and a
brand admin's guide list, binding-rule read and per-guide report. Shoppers appear masked; a guide or admin of
another brand sees nothing (404 / empty), a shopper reads no guide endpoint (403)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.extensions import db
from mall import clock
from mall.orders import refunds
from mall.orders.models import OrderLine, SubOrder
from tests.guide_helpers import ADMIN, Guides
from tests.live_helpers import Live
from tests.shop_helpers import Shop

NOON = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, the shop's time zone


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def guides(shop) -> Guides:
    clock.freeze(NOON)
    return Guides(shop)


@pytest.fixture
def brand(shop, guides):
    """A brand with a ¥50 product, its admin, two active guides, and a shopper named Wang Fang who bought two
    units through guide A's product link (paid)."""
    brand_id = shop.brand()
    admin = guides.login("brand_admin", brand_id)
    product = Live(shop).product(brand_id, price=5000)
    a, b = guides.guide(admin, brand_id), guides.guide(admin, brand_id)
    shopper = guides.login(name="Wang Fang")
    link = guides.link(a, "product", product_id=product)
    order = guides.buy(shopper, link, quantity=2)
    return {"id": brand_id, "admin": admin, "product": product, "a": a, "b": b, "shopper": shopper, "link": link,
            "shopper_id": shop.user_id(shopper), "order": order}  # fmt: skip


def get(client, url: str, headers: dict, expect: int = 200, **query):
    resp = client.get(url, query_string=query, headers=headers)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def test_a_guide_reads_their_visits_newest_first_with_the_shopper_masked(client, guides, brand):
    store_link = guides.link(brand["a"])
    guides.opened(brand["shopper"], store_link)

    body = get(client, "/api/v1/guide/visits", brand["a"]["headers"])

    assert [(v["link_id"], v["target"]) for v in body["items"]] == [(store_link["id"], "storefront"),
                                                                    (brand["link"]["id"], "product")]  # fmt: skip
    first = body["items"][1]
    assert first["shopper"] == "W**" and first["shopper_id"] == brand["shopper_id"]
    assert first["product_id"] == brand["product"] and first["visited_at"].startswith("2026-12-03T04:00:00")
    assert "Wang" not in str(body) and body["next_before"] is None
    # pages of one: the cursor walks back
    one = get(client, "/api/v1/guide/visits", brand["a"]["headers"], limit=1)
    assert len(one["items"]) == 1 and one["next_before"] == one["items"][0]["id"]
    rest = get(client, "/api/v1/guide/visits", brand["a"]["headers"], limit=1, before=one["next_before"])
    assert rest["items"][0]["link_id"] == brand["link"]["id"] and rest["next_before"] is None
    assert get(client, "/api/v1/guide/visits", brand["b"]["headers"]) == {"items": [], "next_before": None}


def test_a_guide_reads_their_bound_customers_with_name_and_phone_masked(client, guides, brand):
    body = get(client, "/api/v1/guide/customers", brand["a"]["headers"])

    [customer] = body["items"]
    assert customer["shopper_id"] == brand["shopper_id"]
    assert customer["name"] == "W**" and customer["phone"] == "138****0000"  # the address's 13800000000
    assert customer["mode"] == "protected" and customer["setting_version"] == 0
    assert customer["since"].startswith("2026-12-03T04:00:00") and customer["until"].startswith("2026-12-18T04:00")
    assert get(client, "/api/v1/guide/customers", brand["b"]["headers"])["items"] == []

    # once the protection period is over, the shopper is no longer listed as bound
    guides.later(timedelta(days=16))
    assert get(client, "/api/v1/guide/customers", brand["a"]["headers"])["items"] == []


def test_a_guide_reads_their_orders_with_what_their_lines_paid_and_what_was_refunded(app, client, shop, guides, brand):
    other = shop.sku(shop.brand(), price=700)  # another brand's line in the same order is not the guide's
    order = guides.buy(brand["shopper"], brand["link"], quantity=3, extra_lines=(shop.add(brand["shopper"], other),))
    with app.app_context():
        line = db.session.query(OrderLine).filter_by(order_id=order["id"], guide_id=brand["a"]["id"]).one()
        refunds.refund_units(db.session, sub=db.session.get(SubOrder, line.sub_order_id),
                             units=[refunds.Units(line.id, 1)], shipping=refunds.NO_SHIPPING, reason="external",
                             reference="test-1")  # fmt: skip
        db.session.commit()

    body = get(client, "/api/v1/guide/orders", brand["a"]["headers"])

    newest, first = body["items"]
    assert newest["order_id"] == order["id"] and first["order_id"] == brand["order"]["id"]
    assert (newest["amount"], newest["refunded"], newest["quantity"], newest["lines"]) == (15000, 5000, 3, 1)
    assert (first["amount"], first["refunded"], first["quantity"]) == (10000, 0, 2)
    assert newest["number"] == order["number"] and newest["currency"] == "CNY" and newest["status"] == "paid"
    assert newest["paid_at"].startswith("2026-12-03T04:00") and newest["placed_at"].startswith("2026-12-03T04:00")
    assert newest["buyer"] == "W**" and newest["buyer_phone"] == "138****0000"
    assert "Wang" not in str(body) and "13800000000" not in str(body)
    page = get(client, "/api/v1/guide/orders", brand["a"]["headers"], limit=1)
    assert [o["order_id"] for o in page["items"]] == [order["id"]] and page["next_before"] == order["id"]
    rest = get(client, "/api/v1/guide/orders", brand["a"]["headers"], before=page["next_before"])
    assert [o["order_id"] for o in rest["items"]] == [brand["order"]["id"]] and rest["next_before"] is None
    assert get(client, "/api/v1/guide/orders", brand["b"]["headers"])["items"] == []


def test_an_unpaid_order_is_listed_with_nothing_paid_and_is_not_counted_today(client, shop, guides, brand):
    line_id = guides.open(brand["shopper"], brand["link"]).get_json()["line_id"]
    placed = shop.place(brand["shopper"], [line_id], shop.address(brand["shopper"])).get_json()

    newest = get(client, "/api/v1/guide/orders", brand["a"]["headers"])["items"][0]

    assert newest["order_id"] == placed["id"] and newest["paid_at"] is None and newest["amount"] == 0
    assert get(client, "/api/v1/guide/summary", brand["a"]["headers"])["today"]["orders"] == 1


def test_the_summary_counts_todays_visits_and_paid_orders_in_the_shops_day(client, shop, guides, brand):
    summary = get(client, "/api/v1/guide/summary", brand["a"]["headers"])
    assert summary["guide_id"] == brand["a"]["id"]
    assert summary["today"] == {"date": "2026-12-03", "visits": 1, "orders": 1}

    # 23:30 in Shanghai, still the 3rd: a second visit and order
    guides.later(timedelta(hours=11, minutes=30))
    guides.buy(brand["shopper"], brand["link"])
    assert get(client, "/api/v1/guide/summary", brand["a"]["headers"])["today"] == {
        "date": "2026-12-03", "visits": 2, "orders": 2}  # fmt: skip
    # 00:30 on the 4th: a new day
    guides.later(timedelta(hours=1))
    assert get(client, "/api/v1/guide/summary", brand["a"]["headers"], days=7)["today"] == {
        "date": "2026-12-04", "visits": 0, "orders": 0}  # fmt: skip
    assert get(client, "/api/v1/guide/summary", brand["b"]["headers"])["today"]["orders"] == 0
    get(client, "/api/v1/guide/summary", brand["a"]["headers"], 422, days=0)


def test_todays_orders_count_only_todays_payments_among_a_long_history(app, client, shop, guides, brand):
    """Orders paid on earlier days stay out of today's count, however many there are."""
    for _ in range(2):
        guides.later(timedelta(days=1))
        guides.buy(brand["shopper"], brand["link"])
    guides.later(timedelta(days=1))
    for _ in range(3):
        guides.buy(brand["shopper"], brand["link"])

    assert get(client, "/api/v1/guide/summary", brand["a"]["headers"])["today"]["orders"] == 3
    guides.later(timedelta(days=1))
    assert get(client, "/api/v1/guide/summary", brand["a"]["headers"])["today"]["orders"] == 0


@pytest.mark.parametrize("path", ["visits", "customers", "orders", "summary"])
def test_a_shopper_and_a_brand_admin_cannot_read_guide_endpoints(client, brand, path):
    get(client, f"/api/v1/guide/{path}", brand["shopper"], 403)
    get(client, f"/api/v1/guide/{path}", brand["admin"], 403)
    assert client.get(f"/api/v1/guide/{path}").status_code == 401


def test_another_brands_guide_sees_none_of_it(client, shop, guides, brand):
    other = shop.brand()
    stranger = guides.guide(guides.login("brand_admin", other), other)
    for path in ("visits", "customers", "orders"):
        assert get(client, f"/api/v1/guide/{path}", stranger["headers"]) == {"items": [], "next_before": None}
    assert get(client, "/api/v1/guide/summary", stranger["headers"])["today"] == {
        "date": "2026-12-03", "visits": 0, "orders": 0}  # fmt: skip


def test_a_brand_admin_lists_their_guides_and_reads_the_binding_rule(client, shop, guides, brand):
    listed = get(client, ADMIN, brand["admin"])
    assert [g["id"] for g in listed] == [brand["a"]["id"], brand["b"]["id"]]
    assert all(g["status"] == "active" and g["brand_id"] == brand["id"] for g in listed)
    client.post(f"{ADMIN}/{brand['b']['id']}/suspend", headers=brand["admin"])
    assert [g["id"] for g in get(client, ADMIN, brand["admin"], status="suspended")] == [brand["b"]["id"]]

    rule = get(client, f"{ADMIN}/binding-rule", brand["admin"])
    assert rule == {"brand_id": brand["id"], "versions": [],
                    "in_force": {"mode": "protected", "days": 15, "order_days": 30, "version": 0}}  # fmt: skip
    guides.rule(brand["admin"], "click_lock", days=7, order_days=20)
    guides.rule(brand["admin"], "last_click")
    rule = get(client, f"{ADMIN}/binding-rule", brand["admin"])
    assert rule["in_force"] == {"mode": "last_click", "days": 15, "order_days": 30, "version": 2}
    assert [(v["version"], v["mode"], v["days"]) for v in rule["versions"]] == [(2, "last_click", 15),
                                                                               (1, "click_lock", 7)]  # fmt: skip

    other = shop.brand()
    other_admin = guides.login("brand_admin", other)
    assert get(client, ADMIN, other_admin) == []
    for url in (ADMIN, f"{ADMIN}/binding-rule", f"{ADMIN}/report"):
        problem = get(client, url, other_admin, 404, brand_id=brand["id"])
        assert problem["code"] == "guides.brand_not_found"
        get(client, url, brand["shopper"], 403)
        get(client, url, brand["a"]["headers"], 403)
    platform = guides.login("platform_admin")
    assert len(get(client, ADMIN, platform, brand_id=brand["id"])) == 2
    assert get(client, ADMIN, platform, 404)["code"] == "guides.brand_not_found"  # a platform admin names one


def test_the_per_guide_report_counts_the_period_and_nets_refunds(app, client, shop, guides, brand):
    guides.opened(guides.login(name="Li Lei"), guides.link(brand["b"]))  # B: a visit and a customer, no order
    order = guides.buy(brand["shopper"], brand["link"], quantity=3)
    with app.app_context():
        line = db.session.query(OrderLine).filter_by(order_id=order["id"]).one()
        sub = db.session.get(SubOrder, line.sub_order_id)
        for n in (1, 2):  # refunded in two parts
            refunds.refund_units(db.session, sub=sub, units=[refunds.Units(line.id, 1)], shipping=refunds.NO_SHIPPING,
                                 reason="external", reference=f"test-{n}")  # fmt: skip
        db.session.commit()

    body = get(client, f"{ADMIN}/report", brand["admin"])

    assert (body["brand_id"], body["from"], body["to"], body["time_zone"]) == (
        brand["id"], "2026-11-04", "2026-12-03", "Asia/Shanghai")  # fmt: skip
    a, b = body["guides"]
    assert (a["guide_id"], a["visits"], a["new_customers"], a["bound_customers"], a["orders"]) == (
        brand["a"]["id"], 2, 1, 1, 2)  # fmt: skip
    assert (a["paid_gmv"], a["refunded"], a["net_gmv"]) == (25000, 10000, 15000)
    assert (b["guide_id"], b["visits"], b["bound_customers"], b["orders"], b["net_gmv"]) == (
        brand["b"]["id"], 1, 1, 0, 0)  # fmt: skip
    # another period: nothing
    empty = get(client, f"{ADMIN}/report", brand["admin"], **{"from": "2026-12-04", "to": "2026-12-10"})
    assert [(g["visits"], g["orders"], g["paid_gmv"]) for g in empty["guides"]] == [(0, 0, 0), (0, 0, 0)]
    assert empty["guides"][0]["bound_customers"] == 1  # bound now, whatever the period
    get(client, f"{ADMIN}/report", brand["admin"], 422, **{"from": "2026-12-04", "to": "2026-12-01"})
