"""Group-buy: seats, success, failure with exactly-once refunds, leaving, timeouts, no fake members."""

from __future__ import annotations

import contextlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.extensions import db
from mall import clock
from mall.events import DomainEvent
from mall.orders.models import Order, SubOrder
from mall.payments.models import Refund
from mall.promotions.group_buy import services
from mall.promotions.group_buy.models import Group
from tests.concurrency.test_order_concurrency import race
from tests.refund_audit import refund_facts
from tests.shop_helpers import Shop
from workers.jobs.group_buy import expire_group, sweep_due_groups
from workers.jobs.orders import expire_unpaid_order

pytestmark = pytest.mark.refund_audit  # every order's refunds add up after each test (ADR 0012)

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def shop(app, client, login) -> Shop:
    clock.freeze(NOW)
    return Shop(app, client, login)


def campaign(shop, client, *, size=3, fee=0, **extra) -> dict:
    brand = shop.brand(fee=fee)
    sku = shop.sku(brand, price=9900, stock=20)
    body = {"sku_id": sku, "name": "3 together", "group_price": 5900, "leader_discount": 500, "group_size": size,
            "starts_at": (NOW - timedelta(hours=1)).isoformat(), "ends_at": (NOW + timedelta(days=3)).isoformat(),
            **extra}  # fmt: skip
    resp = client.post("/api/v1/admin/group-campaigns", json=body, headers=shop.merchant(brand))
    assert resp.status_code == 201, resp.get_json()
    return {**resp.get_json(), "sku": sku, "brand": brand}


def shopper(shop):
    headers = shop.shopper()
    return headers, shop.address(headers)


def key(headers):
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


def open_paid_group(shop, client, camp):
    leader, address = shopper(shop)
    resp = client.post(
        f"/api/v1/group-campaigns/{camp['id']}/groups", json={"address_id": address}, headers=key(leader)
    )
    assert resp.status_code == 201, resp.get_json()
    opened = resp.get_json()
    assert opened["order"]["sub_orders"][0]["lines"][0]["unit_price"] == 5900 - 500  # leader discount
    assert shop.pay(leader, opened["order"]["id"]).status_code == 200
    return opened["group"]["id"], leader, opened["order"]


def join_and_pay(shop, client, group_id, pay=True):
    member, address = shopper(shop)
    resp = client.post(f"/api/v1/groups/{group_id}/join", json={"address_id": address}, headers=key(member))
    if resp.status_code == 201 and pay:
        assert shop.pay(member, resp.get_json()["id"]).status_code == 200
    return member, resp


def group(client, group_id) -> dict:
    return client.get(f"/api/v1/groups/{group_id}").get_json()


def refunds(app) -> list[tuple[int, int]]:
    with app.app_context():
        return [(r.order_id, r.amount) for r in db.session.scalars(sa.select(Refund).order_by(Refund.id))]


def test_group_succeeds_at_n_paid_members_and_then_ships(shop, client):
    camp = campaign(shop, client)
    group_id, leader, leader_order = open_paid_group(shop, client, camp)
    assert group(client, group_id)["status"] == "forming"
    sub = leader_order["sub_orders"][0]["id"]
    held = client.post(f"/api/v1/admin/sub-orders/{sub}/ship", json={"carrier": "SF", "tracking_number": "1"},
                       headers=shop.merchant(camp["brand"]))  # fmt: skip
    assert held.status_code == 409 and held.get_json()["code"] == "order.on_hold"  # paid but not shippable yet
    join_and_pay(shop, client, group_id)
    join_and_pay(shop, client, group_id)
    done = group(client, group_id)
    assert (done["status"], done["paid_count"], done["completed_on_expiry"]) == ("succeeded", 3, False)
    shipped = client.post(f"/api/v1/admin/sub-orders/{sub}/ship", json={"carrier": "SF", "tracking_number": "1"},
                          headers=shop.merchant(camp["brand"]))  # fmt: skip
    assert shipped.status_code == 200
    _, late = join_and_pay(shop, client, group_id)
    assert late.status_code == 409 and late.get_json()["code"] == "group_buy.full"


def test_failed_group_refunds_every_paid_member_exactly_once(app, shop, client):
    camp = campaign(shop, client)
    group_id, leader, leader_order = open_paid_group(shop, client, camp)
    _, member = join_and_pay(shop, client, group_id)
    _, unpaid = join_and_pay(shop, client, group_id, pay=False)
    clock.advance(timedelta(hours=24, minutes=1))
    assert expire_group(group_id) == "failed"
    assert expire_group(group_id) == "noop"
    assert sweep_due_groups() == 0
    paid = {
        leader_order["id"]: leader_order["payable_total"],
        member.get_json()["id"]: member.get_json()["payable_total"],
    }
    assert sorted(refunds(app)) == sorted(paid.items())  # each paid member once, the leader too
    with app.app_context():
        assert db.session.get(Order, unpaid.get_json()["id"]).status == "cancelled"
        assert {db.session.get(Order, oid).status for oid in paid} == {"closed"}
    assert group(client, group_id)["status"] == "failed"
    assert shop.stock(camp["sku"]) == 20  # every unit back


def test_concurrent_joins_into_the_last_seat_seat_exactly_one(app, shop, client):
    camp = campaign(shop, client, size=3)
    group_id, _, _ = open_paid_group(shop, client, camp)
    join_and_pay(shop, client, group_id)
    contenders = [shopper(shop) for _ in range(6)]

    def attempt(headers, address):
        return lambda c: c.post(f"/api/v1/groups/{group_id}/join", json={"address_id": address}, headers=key(headers))

    responses = race(app, [attempt(h, a) for h, a in contenders])
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    state = group(client, group_id)
    assert state["seats_taken"] == 3 and len([m for m in state["members"] if m["status"] == "holding"]) == 1


def test_unpaid_join_holds_the_seat_only_for_the_payment_window(shop, client):
    camp = campaign(shop, client, size=2)
    group_id, _, _ = open_paid_group(shop, client, camp)
    _, unpaid = join_and_pay(shop, client, group_id, pay=False)
    _, blocked = join_and_pay(shop, client, group_id)
    assert blocked.get_json()["code"] == "group_buy.full"
    clock.advance(timedelta(minutes=16))
    assert expire_unpaid_order(unpaid.get_json()["id"]) is True
    assert group(client, group_id)["seats_taken"] == 1
    join_and_pay(shop, client, group_id)
    assert group(client, group_id)["status"] == "succeeded"


def test_leader_refund_before_success_frees_the_seat_once(app, shop, client):
    camp = campaign(shop, client, size=3)
    group_id, leader, leader_order = open_paid_group(shop, client, camp)
    join_and_pay(shop, client, group_id)
    left = client.post(f"/api/v1/groups/{group_id}/leave", headers=leader)
    assert left.status_code == 200 and left.get_json()["status"] == "refunded"
    again = client.post(f"/api/v1/groups/{group_id}/leave", headers=leader)
    assert again.status_code == 404
    assert refunds(app) == [(leader_order["id"], leader_order["payable_total"])]
    state = group(client, group_id)
    assert (state["seats_taken"], state["paid_count"]) == (1, 1)
    clock.advance(timedelta(hours=25))
    expire_group(group_id)
    assert len(refunds(app)) == 2  # the remaining member, once; the leader not again


def test_complete_on_expiry_is_explicit_and_labelled(shop, client):
    camp = campaign(shop, client, size=3, complete_on_expiry=True)
    group_id, _, _ = open_paid_group(shop, client, camp)
    join_and_pay(shop, client, group_id)
    clock.advance(timedelta(hours=25))
    assert expire_group(group_id) == "succeeded_on_expiry"
    state = group(client, group_id)
    assert (state["status"], state["completed_on_expiry"], state["paid_count"]) == ("succeeded", True, 2)
    assert len(state["members"]) == 2  # no fake members


def test_new_shoppers_only_keeps_returning_shoppers_out(shop, client):
    camp = campaign(shop, client, size=3, new_shoppers_only=True)
    group_id, leader, _ = open_paid_group(shop, client, camp)
    regular, address = shopper(shop)
    other = shop.sku(shop.brand(), price=100, stock=5)
    order = shop.place(regular, [shop.add(regular, other, 1)], address).get_json()
    shop.pay(regular, order["id"])
    resp = client.post(f"/api/v1/groups/{group_id}/join", json={"address_id": address}, headers=key(regular))
    assert resp.status_code == 403 and resp.get_json()["code"] == "group_buy.new_shoppers_only"


def test_group_closing_reminder_is_queued_an_hour_before(app, shop, client):
    from mall.notifications.models import Message

    camp = campaign(shop, client)
    group_id, _, _ = open_paid_group(shop, client, camp)
    with app.app_context():
        closing = db.session.scalars(sa.select(Message).filter_by(template_key="group_buy.closing")).all()
        forming = db.session.get(Group, group_id)
        assert [m.send_after for m in closing] == [forming.expires_at - timedelta(hours=1)]


def ledger(app, order_id) -> dict:
    with app.app_context():
        return refund_facts(db.session, order_id)


def test_failed_group_refunds_each_member_per_line_and_shipping(app, shop, client):
    camp = campaign(shop, client, fee=600)
    group_id, leader, leader_order = open_paid_group(shop, client, camp)
    _, member = join_and_pay(shop, client, group_id)
    member_order = member.get_json()
    clock.advance(timedelta(hours=24, minutes=1))

    assert expire_group(group_id) == "failed"

    for order in (leader_order, member_order):
        line_id, payable = order["sub_orders"][0]["lines"][0]["id"], order["sub_orders"][0]["lines"][0]["payable"]
        facts = ledger(app, order["id"])
        assert facts["refunded_total"] == facts["paid_total"] == payable + 600 == order["payable_total"]
        assert facts["ledger"] == [(line_id, 1, payable, "group_failed"), (None, 0, 600, "group_failed")]
    seen = client.get(f"/api/v1/orders/{leader_order['id']}", headers=leader).get_json()["sub_orders"][0]
    assert (seen["refunded_total"], seen["lines"][0]["refunded_quantity"]) == (leader_order["payable_total"], 1)


def test_a_member_who_leaves_is_refunded_on_the_line(app, shop, client):
    camp = campaign(shop, client, size=3)
    group_id, _, _ = open_paid_group(shop, client, camp)
    member, resp = join_and_pay(shop, client, group_id)
    order = resp.get_json()

    assert client.post(f"/api/v1/groups/{group_id}/leave", headers=member).status_code == 200

    line = order["sub_orders"][0]["lines"][0]
    facts = ledger(app, order["id"])
    assert facts["ledger"] == [(line["id"], 1, line["payable"], "left_group")]
    assert (facts["refunded_total"], facts["status"]) == (order["payable_total"], "closed")


def test_an_open_after_sale_request_on_a_failed_group_order_is_closed_with_the_refund(app, shop, client):
    camp = campaign(shop, client)
    group_id, leader, leader_order = open_paid_group(shop, client, camp)
    sub = leader_order["sub_orders"][0]
    asked = client.post(f"/api/v1/sub-orders/{sub['id']}/after-sales", headers=leader,
                        json={"reason": "no", "lines": [{"order_line_id": sub["lines"][0]["id"], "quantity": 1}]})  # fmt: skip
    assert asked.status_code == 201, asked.get_json()
    clock.advance(timedelta(hours=24, minutes=1))

    assert expire_group(group_id) == "failed"

    assert refunds(app) == [(leader_order["id"], leader_order["payable_total"])]  # once, by the group's failure
    with app.app_context():  # the closed case no longer holds the sub-order back from settling
        assert db.session.get(SubOrder, sub["id"]).open_after_sales == 0
    decided = client.post(f"/api/v1/admin/after-sales/{asked.get_json()['id']}/approve", json={},
                          headers=shop.merchant(camp["brand"]))  # fmt: skip
    assert decided.status_code == 409 and decided.get_json()["code"] == "after_sale.already_decided"
    assert ledger(app, leader_order["id"])["refunded_total"] == leader_order["payable_total"]


def test_two_expiry_runs_at_the_same_moment_fail_the_group_once(app, shop, client):
    """Both runs read the group as forming before either writes (on SQLite `with_for_update` locks nothing):
    the conditional status update lets one of them fail it; `group.failed` is recorded once, each paid member
    refunded once."""
    camp = campaign(shop, client)
    group_id, leader, leader_order = open_paid_group(shop, client, camp)
    _, member = join_and_pay(shop, client, group_id)
    clock.advance(timedelta(hours=24, minutes=1))
    outcomes = both_read_before_either_writes(lambda: expire_group(group_id))
    assert sorted(outcomes) == ["failed", "noop"]
    with app.app_context():
        failed = sa.select(sa.func.count()).select_from(DomainEvent).filter_by(type="group.failed")
        assert db.session.scalar(failed) == 1
    paid = {
        leader_order["id"]: leader_order["payable_total"],
        member.get_json()["id"]: member.get_json()["payable_total"],
    }
    assert sorted(refunds(app)) == sorted(paid.items())
    assert group(client, group_id)["status"] == "failed"


def both_read_before_either_writes(run) -> list:
    """Run `run` in two threads; each waits at its first write until the other has reached its own (or 3 s
    have passed: on PostgreSQL a row lock may hold the second one back before it writes)."""
    barrier, local = threading.Barrier(2), threading.local()

    def first_write_waits(conn, cursor, statement, *args):
        if getattr(local, "racing", False) and statement.lstrip()[:6].upper() in ("UPDATE", "INSERT", "DELETE"):
            local.racing = False
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=3)

    def racer(_):
        local.racing = True
        return run()

    sa.event.listen(Engine, "before_cursor_execute", first_write_waits)
    try:
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(racer, range(2)))
    finally:
        sa.event.remove(Engine, "before_cursor_execute", first_write_waits)


def test_a_member_whose_settlement_fails_is_rolled_back_alone_and_settled_by_the_sweep(app, shop, client, monkeypatch):
    camp = campaign(shop, client)
    group_id, leader, leader_order = open_paid_group(shop, client, camp)
    _, member = join_and_pay(shop, client, group_id)
    member_order = member.get_json()
    clock.advance(timedelta(hours=24, minutes=1))
    original, broken = services._close_refunded_order, [member_order["id"]]

    def closing(session, order):
        if order.id in broken:
            broken.clear()
            raise RuntimeError("injected: this member's settlement fails")
        return original(session, order)

    monkeypatch.setattr(services, "_close_refunded_order", closing)
    assert expire_group(group_id) == "failed"
    assert refunds(app) == [(leader_order["id"], leader_order["payable_total"])]  # the leader's went through
    with app.app_context():
        assert db.session.get(Order, member_order["id"]).status == "paid"  # the member's rolled back, whole
    assert sweep_due_groups() == 0  # no group left to expire; the failed group's member is settled
    assert sorted(refunds(app)) == sorted([(leader_order["id"], leader_order["payable_total"]),
                                           (member_order["id"], member_order["payable_total"])])  # fmt: skip
    with app.app_context():
        assert db.session.get(Order, member_order["id"]).status == "closed"
    assert sweep_due_groups() == 0 and len(refunds(app)) == 2
