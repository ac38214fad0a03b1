"""The workbench's commission figures: earnings by state from the ledger's balance, commission credited per day
(closed days kept in guide_earnings_days once summed, open days from the newest entries), an order looked up by
number with its lines for the ledger's "why", and the brand report's commission by state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.guides import earnings_days
from mall.guides.models import EarningsDay
from mall.orders import refunds
from mall.orders.models import OrderLine, SubOrder
from tests.commission_helpers import Commission
from tests.guide_helpers import ADMIN
from tests.shop_helpers import Shop

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai


@pytest.fixture
def world(app, client, login) -> Commission:
    clock.freeze(T0)
    world = Commission(Shop(app, client, login))
    world.card(scope="brand", basis_points=1000)  # 10%
    world.sku_id = world.sku(5000)[0]
    return world


def summary(world: Commission, **query) -> dict:
    resp = world.client.get("/api/v1/guide/summary", query_string=query, headers=world.guide["headers"])
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def refund_one(world: Commission, line_id: int, reference: str) -> None:
    with world.app.app_context():
        line = db.session.get(OrderLine, line_id)
        refunds.refund_units(db.session, sub=db.session.get(SubOrder, line.sub_order_id),
                             units=[refunds.Units(line.id, 1)], shipping=refunds.NO_SHIPPING, reason="external",
                             reference=reference)  # fmt: skip
        db.session.commit()


def kept(world: Commission) -> dict[str, int]:
    with world.app.app_context():
        rows = db.session.execute(sa.select(EarningsDay.day, EarningsDay.amount)
                                  .where(EarningsDay.guide_id == world.guide["id"])).all()  # fmt: skip
        return {day.isoformat(): amount for day, amount in rows}


def test_earnings_by_state_and_per_day_follow_the_ledger(world):
    first = world.buy([(world.sku_id, 2)])  # 10% of 100.00: 10.00 pending

    body = summary(world)
    assert body["currency"] == "CNY"
    assert body["earnings"] == {"pending": 1000, "available": 0, "on_hold": 0}
    assert len(body["days"]) == 30 and body["days"][0]["date"] == "2026-11-02"
    assert body["days"][-1] == {"date": "2026-12-01", "earned": 1000}
    assert sum(d["earned"] for d in body["days"]) == 1000
    assert body["today"]["orders"] == 1

    world.later(timedelta(days=1))  # 12-02, 17:00 in Shanghai
    world.buy([(world.sku_id, 3)])  # 15.00
    refund_one(world, first["line_ids"][world.sku_id], "r-1")  # reverses 5.00 of the first order, today

    body = summary(world, days=7)
    assert body["earnings"] == {"pending": 2000, "available": 0, "on_hold": 0}
    assert [(d["date"], d["earned"]) for d in body["days"][-2:]] == [("2026-12-01", 1000), ("2026-12-02", 1000)]
    assert len(body["days"]) == 7
    # closed days kept: November's from the first view (as zeros), 12-01 from this one; today's never
    assert kept(world) == {f"2026-11-{d:02d}": 0 for d in range(2, 31)} | {"2026-12-01": 1000}


def test_a_closed_day_is_read_from_its_kept_row_and_yesterday_stays_open_for_a_grace_period(world):
    world.buy([(world.sku_id, 1)])  # 5.00 on 12-01
    clock.freeze(datetime(2026, 12, 1, 16, 5, tzinfo=UTC))  # 00:05 on 12-02 in Shanghai: 12-01 still open
    world.guides.later(timedelta(0))
    assert summary(world)["days"][-2:] == [{"date": "2026-12-01", "earned": 500}, {"date": "2026-12-02", "earned": 0}]
    assert "2026-12-01" not in kept(world)

    clock.advance(timedelta(minutes=10))  # 00:15: 12-01 is closed, summed once and kept
    assert summary(world)["days"][-2]["earned"] == 500
    assert kept(world)["2026-12-01"] == 500
    with world.app.app_context():  # the kept row is what is read from now on
        db.session.execute(sa.update(EarningsDay).where(EarningsDay.day == datetime(2026, 12, 1).date())
                           .values(amount=777))  # fmt: skip
        db.session.commit()
    assert summary(world)["days"][-2]["earned"] == 777


def test_the_open_days_walk_steps_back_through_many_entries(world, monkeypatch):
    monkeypatch.setattr(earnings_days, "STEP", 2)
    world.buy([(world.sku_id, 1)])
    world.later(timedelta(days=1))
    for _ in range(3):
        world.buy([(world.sku_id, 1)])

    days = summary(world)["days"]
    assert [d["earned"] for d in days[-2:]] == [500, 1500]


def test_an_order_is_looked_up_by_number_with_its_lines_for_the_ledgers_why(world):
    order = world.buy([(world.sku_id, 2)])
    headers = world.guide["headers"]

    found = world.client.get("/api/v1/guide/orders", query_string={"number": order["number"]}, headers=headers)
    [row] = found.get_json()["items"]
    assert row["order_id"] == order["id"] and row["line_ids"] == [order["line_ids"][world.sku_id]]
    why = world.client.get("/api/v1/guide/commission/why", query_string={"order_line_id": row["line_ids"][0]},
                           headers=headers)  # fmt: skip
    assert why.status_code == 200 and why.get_json()["entries"][0]["amount"] == 1000
    missing = world.client.get("/api/v1/guide/orders", query_string={"number": "nope"}, headers=headers)
    assert missing.get_json() == {"items": [], "next_before": None}


def test_the_brand_report_shows_each_guides_commission_by_state(world):
    order = world.buy([(world.sku_id, 2)])
    refund_one(world, order["line_ids"][world.sku_id], "r-1")

    resp = world.client.get(f"{ADMIN}/report", headers=world.admin)

    [row] = resp.get_json()["guides"]
    assert row["commission"] == {"CNY": {"pending": 500}}  # 10.00 earned, 5.00 reversed
    assert (row["paid_gmv"], row["refunded"], row["net_gmv"]) == (10000, 5000, 5000)


def test_a_guide_with_no_entries_gets_a_month_of_zeros_and_no_earnings(world, client):
    other = world.guides.guide(world.admin, world.brand)
    body = client.get("/api/v1/guide/summary", headers=other["headers"]).get_json()
    assert body["earnings"] is None and body["currency"] is None
    assert len(body["days"]) == 30 and {d["earned"] for d in body["days"]} == {0}
