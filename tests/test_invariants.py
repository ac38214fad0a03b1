"""The invariant audit (mall/invariants.py: `make soak`'s verdict and `flask mall audit`): a small shop that did a bit
of everything passes it, and each planted violation is reported by its check."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock, invariants
from mall.members import ledger
from mall.notifications import services as outbox
from mall.promotions.coupons import services as coupons
from tests.shop_helpers import PLATFORM, Shop
from workers.flash import gate

START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def world(app, client, login):
    """Paid, refunded (one unit, before shipping: back in stock), cancelled and flash orders, a claimed coupon,
    points, and a 'paid' message that consumed a subscription grant."""
    shop = Shop(app, client, login)
    clock.freeze(START - timedelta(hours=1))
    brand = shop.brand()
    sku, flash_sku = shop.sku(brand, price=5000, stock=20), shop.sku(brand, price=10000, stock=50)
    body = {"name": "Double 12", "starts_at": START.isoformat(), "ends_at": (START + timedelta(hours=1)).isoformat(),
            "items": [{"sku_id": flash_sku, "flash_price": 3900, "quota": 3, "per_shopper_limit": 1}]}  # fmt: skip
    sale = client.post("/api/v1/admin/flash-sales", json=body, headers=shop.merchant(brand)).get_json()
    clock.freeze(START)
    me, other = shop.shopper(), shop.shopper()
    with app.app_context():
        user_id = shop.user_id(me)
        outbox.record_grants(db.session, user_id=user_id, results={"order.paid": "accept"})
        outbox.record_grants(db.session, user_id=user_id, results={"order.paid": "accept"})
        ledger.grant(db.session, user_id=user_id, amount=500, kind="adjust", key="audit:1", reason={"rule": "test"},
                     now=START, expires_at=START + timedelta(days=30))  # fmt: skip
        template = coupons.create_template(db.session, actor=PLATFORM, brand_id=None, currency="CNY", valid_days=30,
                                           name="5 off", value_type="fixed", amount=500, total_quantity=5)  # fmt: skip
        db.session.commit()
        template_id = template.id
    claimed = client.post(f"/api/v1/coupons/{template_id}/claim", headers={**me, "Idempotency-Key": uuid.uuid4().hex})
    assert claimed.status_code == 201, claimed.get_json()
    address = shop.address(me)
    order = shop.place(me, [shop.add(me, sku, 2)], address).get_json()
    assert shop.pay(me, order["id"]).status_code == 200
    sub, line = order["sub_orders"][0]["id"], order["sub_orders"][0]["lines"][0]["id"]
    case = client.post(f"/api/v1/sub-orders/{sub}/after-sales", headers=me,
                       json={"reason": "no", "lines": [{"order_line_id": line, "quantity": 1}]}).get_json()  # fmt: skip
    approved = client.post(f"/api/v1/admin/after-sales/{case['id']}/approve", json={}, headers=shop.merchant(brand))
    assert approved.status_code == 200, approved.get_json()
    unpaid = shop.place(me, [shop.add(me, sku, 1)], address).get_json()
    assert client.post(f"/api/v1/orders/{unpaid['id']}/cancel", json={}, headers=me).status_code == 200
    bought = client.post(f"/api/v1/flash-sales/{sale['id']}/items/{sale['items'][0]['id']}/purchase",
                         json={"address_id": shop.address(other)},
                         headers={**other, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert bought.status_code == 201, bought.get_json()
    assert shop.pay(other, bought.get_json()["id"]).status_code == 200
    return {"baseline": {sku: 20, flash_sku: 50}, "order": order["id"], "line": line, "sku": sku,
            "item": sale["items"][0]["id"], "template": template_id, "user": user_id}  # fmt: skip


def failed(app, world) -> dict[str, list]:
    with app.app_context():
        checks = invariants.run(db.session, gate=gate(), stock_baseline=world["baseline"])
        db.session.rollback()
    assert {c.name for c in checks} >= {"stock", "order_totals", "payments_cover_orders", "paid_orders_settled",
                                         "flash_quota", "coupon_counts", "messages_once", "refund_ledger",
                                         "commission_ledger", "points_ledger", "redis_counters"}  # fmt: skip
    return {c.name: c.violations for c in checks if not c.ok}


def test_a_shop_that_did_a_bit_of_everything_passes(app, world):
    assert failed(app, world) == {}
    with app.app_context():  # the scenario reached what the checks look at
        counts = db.session.execute(sa.text("""
            SELECT (SELECT COUNT(*) FROM refunds), (SELECT COUNT(*) FROM flash_orders),
                   (SELECT COUNT(*) FROM messages WHERE template_key = 'order.paid'),
                   (SELECT stock FROM skus WHERE id = :sku)"""), {"sku": world["sku"]}).one()  # fmt: skip
    assert tuple(counts) == (1, 1, 2, 20 - 2 + 1)  # the unit refunded before shipping went back to stock


PLANTS = {
    "stock": ["UPDATE skus SET stock = stock - 1 WHERE id = :sku"],
    "order_totals": ["UPDATE orders SET items_total = items_total + 1 WHERE id = :order"],
    "payments_cover_orders": ["UPDATE orders SET paid_total = paid_total - 1 WHERE id = :order"],
    "paid_orders_settled": ["UPDATE sub_orders SET status = 'pending_payment' WHERE order_id = :order"],
    "flash_quota": ["UPDATE flash_items SET sold = sold + 1 WHERE id = :item"],
    "coupon_counts": ["UPDATE coupon_templates SET issued_count = issued_count + 1 WHERE id = :template"],
    "messages_once": ["UPDATE subscription_grants SET message_id = (SELECT MAX(id) FROM messages)"],
    "refund_ledger": ["UPDATE order_lines SET refunded_amount = refunded_amount + 1 WHERE id = :line"],
    "points_ledger": ["UPDATE points_balances SET available = available + 1 WHERE user_id = :user"],
}


@pytest.mark.parametrize("check", sorted(PLANTS))
def test_a_planted_violation_is_reported_by_its_check(app, world, check):
    with app.app_context():
        for statement in PLANTS[check]:
            db.session.execute(sa.text(statement), {k: v for k, v in world.items() if k != "baseline"})
        db.session.commit()
    assert check in failed(app, world)


def test_flash_counters_in_redis_that_drifted_are_reported(app, world):
    gate().load(item_id=world["item"], remaining=3, buyers={})  # Redis says nothing was sold
    assert failed(app, world) == {"redis_counters": [world["item"]]}


def test_the_audit_command_exits_1_on_a_violation(app, world):
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["mall", "audit"])
    assert ok.exit_code == 0, ok.output
    assert "coupon_counts" in ok.output and "VIOLATED" not in ok.output
    with app.app_context():
        db.session.execute(sa.text("UPDATE coupon_templates SET issued_count = 0"))
        db.session.commit()
    bad = runner.invoke(args=["mall", "audit"])
    assert bad.exit_code == 1 and f"coupon_counts          VIOLATED by [{world['template']}]" in bad.output
