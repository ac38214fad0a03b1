"""Shoppers' orders: place, read, cancel, pay, confirm receipt, ask for a refund."""

from __future__ import annotations

import sqlalchemy as sa

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.idempotency import idempotent
from api.orders.schemas import (
    AfterSaleRequestSchema,
    AfterSaleSchema,
    OrderEventSchema,
    OrderListArgs,
    OrderSchema,
    PaymentSchema,
    PlaceOrderSchema,
    SubOrderSchema,
)  # fmt: skip
from api.settings import payment_gateway, settings
from api.tx import commit, read_only
from mall.errors import DomainError
from mall.events import DomainEvent
from mall.identity.roles import Role
from mall.orders import after_sale
from mall.orders import services as orders
from mall.payments import calls
from mall.payments import services as payments
from mall.payments.models import Payment

blp = MallBlueprint("orders", __name__, description="Orders, payment, receipt and after-sale (shoppers)")


@blp.post("/orders")
@blp.auth(Role.SHOPPER)
@idempotent("orders.place")
@blp.arguments(PlaceOrderSchema)
@blp.response(201, OrderSchema)
def place_order(body):
    """Needs an `Idempotency-Key` header: a retry replays the first response instead of ordering twice."""
    return orders.place_order(db.session, shopper_id=current_actor().user_id, policy=settings().order_policy, **body)


@blp.get("/orders")
@blp.auth(Role.SHOPPER)
@blp.arguments(OrderListArgs, location="query")
@blp.response(200, OrderSchema(many=True))
def list_orders(args):
    """Newest first; page with `before` = the last id seen."""
    read_only()
    return orders.list_orders(db.session, shopper_id=current_actor().user_id, **args)


@blp.get("/orders/<int:order_id>")
@blp.auth(Role.SHOPPER)
@blp.response(200, OrderSchema)
def get_order(order_id):
    read_only()
    return orders.get_order(db.session, order_id=order_id, shopper_id=current_actor().user_id)


@blp.get("/orders/<int:order_id>/events")
@blp.auth(Role.SHOPPER)
@blp.response(200, OrderEventSchema(many=True))
def order_events(order_id):
    """The order's history: every status change with its actor and time."""
    read_only()
    orders.get_order(db.session, order_id=order_id, shopper_id=current_actor().user_id)
    query = sa.select(DomainEvent).filter_by(aggregate_type="order", aggregate_id=order_id).order_by(DomainEvent.id)
    return db.session.scalars(query).all()


@blp.post("/orders/<int:order_id>/cancel")
@blp.auth(Role.SHOPPER)
@blp.response(200, OrderSchema)
def cancel_order(order_id):
    """Cancel an unpaid order; its stock is released."""
    order = orders.cancel_order(db.session, order_id=order_id, actor=current_actor(), reason="shopper_cancelled")
    commit()
    return order


@blp.post("/orders/<int:order_id>/pay")
@blp.auth(Role.SHOPPER)
@idempotent("orders.pay")
@blp.response(200, PaymentSchema)
def pay_order(order_id):
    """Offline gateway: completes the payment now. Stripe: returns the PaymentIntent's client_secret.

    Claim -> commit -> call -> record (ADR 0014): the PaymentIntent call is claimed and committed first, the
    provider is called with no transaction open, and its answer is recorded with this request's key."""
    gateway = payment_gateway()
    claimed = payments.claim_intent(db.session, gateway=gateway, shopper_id=current_actor().user_id,
                                    order_id=order_id)  # fmt: skip
    if isinstance(claimed, Payment):
        return claimed
    if claimed.call_id is not None:
        commit()
    answer = calls.call(gateway.create_intent, claimed.request())
    outcome = payments.record_intent(db.session, gateway=gateway, call=claimed, answer=answer)
    if isinstance(outcome, DomainError):
        if claimed.call_id is not None:
            commit()  # the failed call (retried by the sweep) or the refused intent's anomaly
        raise outcome
    return outcome


@blp.post("/sub-orders/<int:sub_order_id>/confirm-receipt")
@blp.auth(Role.SHOPPER)
@blp.response(200, SubOrderSchema)
def confirm_receipt(sub_order_id):
    sub = orders.confirm_receipt(db.session, shopper_id=current_actor().user_id, sub_order_id=sub_order_id,
                                 policy=settings().order_policy)  # fmt: skip
    commit()
    return sub


@blp.post("/sub-orders/<int:sub_order_id>/after-sales")
@blp.auth(Role.SHOPPER)
@blp.arguments(AfterSaleRequestSchema)
@blp.response(201, AfterSaleSchema)
def request_refund(body, sub_order_id):
    """Ask for a refund of some units of some lines (with or without returning the goods)."""
    case = after_sale.request(db.session, shopper_id=current_actor().user_id, sub_order_id=sub_order_id, **body)
    commit()
    return case
