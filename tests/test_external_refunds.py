"""Dashboard refunds at the service level (ADR 0012): a parked part assigned to a shipping fee, then the rest
of the order refunded by one more dashboard refund, each cent on exactly one line or fee."""

from __future__ import annotations

import functools

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.errors import Conflict
from mall.identity.roles import Actor, Role
from mall.payments import external
from mall.payments import services as payments
from mall.payments.models import Payment, UnassignedRefund
from tests.refund_audit import refund_facts
from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit

OPERATOR = Actor(user_id=0, role=Role.PLATFORM_ADMIN)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def dashboard(session, payment: Payment, refund_id: str, amount: int) -> str:
    record = functools.partial(payments.refund, session, gateway=payments._Recorded(refund_id), payment=payment,
                               amount=amount)  # fmt: skip
    return external.record(session, payment=payment, refund_id=refund_id, amount=amount, record_refund=record)


def test_a_parked_fee_refund_then_the_rest_refund_every_cent_once(shop, app):
    brand = shop.brand(fee=800)
    me = shop.shopper()
    order = shop.place(me, [shop.add(me, shop.sku(brand, price=3333), 3)], shop.address(me)).get_json()
    assert shop.pay(me, order["id"]).status_code == 200
    sub_id, line_id = order["sub_orders"][0]["id"], order["sub_orders"][0]["lines"][0]["id"]
    with app.app_context():
        session = db.session
        payment = session.scalar(sa.select(Payment).filter_by(order_id=order["id"]))
        assert dashboard(session, payment, "re_fee", 800) == "parked"
        assert dashboard(session, payment, "re_fee", 800) == "known"  # the same refund again
        session.commit()
        parked = session.scalar(sa.select(UnassignedRefund))
        with pytest.raises(Conflict) as wrong:  # a unit is 3333, not 800
            external.assign(session, actor=OPERATOR, unassigned_refund_id=parked.id,
                            lines=[{"order_line_id": line_id, "quantity": 1}], shipping_sub_order_ids=[])  # fmt: skip
        assert wrong.value.code == "refund.assignment_mismatch"
        session.rollback()

        parked = session.scalar(sa.select(UnassignedRefund))
        external.assign(session, actor=OPERATOR, unassigned_refund_id=parked.id, lines=[],
                        shipping_sub_order_ids=[sub_id])  # fmt: skip
        session.commit()
        facts = refund_facts(session, order["id"])
        assert (facts["refunded_total"], facts["status"], facts["ledger"]) == (
            800,
            "paid",
            [(None, 0, 800, "external")],
        )

        payment = session.scalar(sa.select(Payment).filter_by(order_id=order["id"]))
        assert dashboard(session, payment, "re_rest", 3 * 3333) == "refunded_rest"  # the fee is not refunded twice
        session.commit()
        facts = refund_facts(session, order["id"])
        assert facts["refunded_total"] == facts["paid_total"] == 3 * 3333 + 800 and facts["status"] == "closed"
        assert facts["ledger"][1:] == [(line_id, 3, 3 * 3333, "external")]


def test_two_operators_assigning_one_parked_refund_at_once_book_it_once(shop, app, login):
    from tests.concurrency.test_order_concurrency import race

    brand = shop.brand()
    me = shop.shopper()
    order = shop.place(me, [shop.add(me, shop.sku(brand, price=3333), 3)], shop.address(me)).get_json()
    assert shop.pay(me, order["id"]).status_code == 200
    line_id = order["sub_orders"][0]["lines"][0]["id"]
    with app.app_context():
        payment = db.session.scalar(sa.select(Payment).filter_by(order_id=order["id"]))
        assert dashboard(db.session, payment, "re_one", 3333) == "parked"
        db.session.commit()
        parked_id = db.session.scalar(sa.select(UnassignedRefund.id))
    operator = login("platform_admin")
    body = {"lines": [{"order_line_id": line_id, "quantity": 1}]}

    responses = race(app, [lambda c: c.post(f"/api/v1/admin/unassigned-refunds/{parked_id}/assign", json=body,
                                            headers=operator)] * 4)  # fmt: skip

    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409], [r.get_json() for r in responses]
    with app.app_context():
        facts = refund_facts(db.session, order["id"])
    assert (facts["refunded_total"], facts["ledger"]) == (3333, [(line_id, 1, 3333, "external")])
