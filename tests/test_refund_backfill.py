"""Migration 0017 brings refunds written before the ledger to the same truth (ADR 0012): rows written the old
way (group-buy and dashboard refunds on the order only, after-sale refunds on lines without a ledger) are
audited clean after its backfill."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.payments.models import Payment, Refund, UnassignedRefund
from tests.api.test_after_sale import decide, paid_line
from tests.api.test_group_buy import NOW, campaign, open_paid_group
from tests.refund_audit import audit, refund_facts
from tests.shop_helpers import Shop
from workers.jobs.group_buy import expire_group

pytestmark = pytest.mark.refund_audit

_PATH = Path(__file__).parent.parent / "migrations" / "versions" / "0017_refund_lines.py"


def migration():
    spec = importlib.util.spec_from_file_location("migration_0017", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shop(app, client, login) -> Shop:
    clock.freeze(NOW)
    return Shop(app, client, login)


def as_before_the_ledger(group_order_id: int, external: tuple[int, int]) -> None:
    """What the code before 0017 left: no ledger, group-buy refunds on the order only, a dashboard refund
    on the order only."""
    order_id, amount = external
    db.session.execute(sa.delete(UnassignedRefund))
    db.session.execute(sa.delete(db.metadata.tables["refund_lines"]))
    db.session.execute(sa.text("UPDATE order_lines SET refunded_quantity = 0, refunded_amount = 0 WHERE order_id = :o"),
                       {"o": group_order_id})  # fmt: skip
    db.session.execute(sa.text("UPDATE sub_orders SET refunded_total = 0 WHERE order_id = :o"), {"o": group_order_id})
    payment = db.session.scalar(sa.select(Payment).filter_by(order_id=order_id))
    payment.refunded_amount += amount
    db.session.add(Refund(payment_id=payment.id, order_id=order_id, amount=amount, currency="CNY", reason="external",
                          idempotency_key="external-re_old", status="succeeded", gateway_refund_id="re_old"))  # fmt: skip
    db.session.execute(sa.text("UPDATE orders SET refunded_total = refunded_total + :a WHERE id = :o"),
                       {"a": amount, "o": order_id})  # fmt: skip
    db.session.commit()


def test_refunds_written_before_the_ledger_are_audited_clean_after_the_backfill(shop, client, app):
    camp = campaign(shop, client, fee=600)
    _, _, group_order = open_paid_group(shop, client, camp)
    clock.advance(timedelta(hours=24, minutes=1))
    assert expire_group(_group_of(app, group_order["id"])) == "failed"
    me, brand, sub_id, line_id = paid_line(shop, units=3, price=3333)
    case = client.post(f"/api/v1/sub-orders/{sub_id}/after-sales", headers=me,
                       json={"reason": "no", "lines": [{"order_line_id": line_id, "quantity": 1}]}).get_json()  # fmt: skip
    assert decide(client, shop, brand, case["id"]).status_code == 200
    with app.app_context():
        other = db.session.scalar(sa.select(Payment.order_id).where(Payment.order_id != group_order["id"]))
        as_before_the_ledger(group_order["id"], (other, 500))
        assert audit(db.session) != []  # the old state disagrees with itself

        migration().backfill(db.session.connection())
        db.session.commit()

        assert audit(db.session) == []
        group = refund_facts(db.session, group_order["id"])
        assert group["refunded_total"] == group_order["payable_total"]
        assert [row[:3] for row in group["ledger"]] == [(group_order["sub_orders"][0]["lines"][0]["id"], 1,
                                                         group_order["payable_total"] - 600), (None, 0, 600)]  # fmt: skip
        assert refund_facts(db.session, other)["refunded_total"] == 3333  # the after-sale unit; the 500 is parked
        parked = db.session.scalars(sa.select(UnassignedRefund)).all()
        assert [(p.order_id, p.amount, p.status) for p in parked] == [(other, 500, "open")]


def _group_of(app, order_id: int) -> int:
    from mall.promotions.group_buy.models import GroupMember

    with app.app_context():
        return db.session.scalar(sa.select(GroupMember.group_id).filter_by(order_id=order_id))
