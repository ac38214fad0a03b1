"""Provider webhooks (the body is verified and stored once, then processed by an RQ job), the payment
anomalies operators look at, and dashboard refunds they assign to order lines."""

from __future__ import annotations

from flask import request

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.openapi import RATE_LIMITED
from api.payments.schemas import (
    AnomalyListArgs,
    AnomalySchema,
    AssignmentSchema,
    UnassignedRefundListArgs,
    UnassignedRefundSchema,
)
from api.settings import payment_gateway
from api.tx import commit, read_only
from mall.identity.roles import Role
from mall.payments import anomalies, external
from workers import queues
from workers.jobs.payments import process_payment_webhook

blp = MallBlueprint("payments", __name__, description="Payment provider webhooks and payment anomalies")


STRIPE_EVENT = {"required": True, "description": "A Stripe event, read as the raw bytes Stripe signed",
                "content": {"application/json": {"schema": {"type": "object"}}}}  # fmt: skip


@blp.post("/payments/stripe/webhook")
@blp.doc(requestBody=STRIPE_EVENT, **{RATE_LIMITED: False})  # not limited (api/limits.py UNLIMITED)
@blp.response(200)
def stripe_webhook():
    """Checks `Stripe-Signature` on the raw body (400 if bad or stale); a replayed event is acknowledged
    and ignored."""
    from mall.payments import services as payments

    row, is_new = payments.receive_webhook(db.session, gateway=payment_gateway(), body=request.get_data(),
                                           signature=request.headers.get("Stripe-Signature"))  # fmt: skip
    commit()
    if is_new:
        queues.enqueue(process_payment_webhook, row.id, queue_name=queues.HIGH, job_id=f"webhook-{row.id}")
    return {"received": True, "duplicate": not is_new}


@blp.get("/admin/payment-anomalies")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.arguments(AnomalyListArgs, location="query")
@blp.response(200, AnomalySchema(many=True))
def list_payment_anomalies(args):
    """Money that did not match: a signed event paying another amount than the order's payable (the order is
    not marked paid), or a provider answer that belonged to another order or payment (refused). Newest first;
    page with `before` = the last id seen. Platform admins only: one payment covers every brand of an order."""
    read_only()
    return anomalies.list_anomalies(db.session, **args)


@blp.get("/admin/unassigned-refunds")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.arguments(UnassignedRefundListArgs, location="query")
@blp.response(200, UnassignedRefundSchema(many=True))
def list_unassigned_refunds(args):
    """Refunds made in the provider's dashboard for part of an order's money: the payment counts them, the
    order's lines do not until an operator assigns them (ADR 0012). Newest first; `status` open by default."""
    read_only()
    return external.list_unassigned(db.session, **args)


@blp.post("/admin/unassigned-refunds/<int:unassigned_refund_id>/assign")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.arguments(AssignmentSchema)
@blp.response(200, UnassignedRefundSchema)
def assign_unassigned_refund(body, unassigned_refund_id):
    """Say which units (and which sub-orders' remaining shipping fees) the refund was for. They are priced by
    the cumulative split of what each line paid; the sum must be the refund's amount exactly (409
    `refund.assignment_mismatch` otherwise, nothing changes). Fully refunded sub-orders close."""
    row = external.assign(db.session, actor=current_actor(), unassigned_refund_id=unassigned_refund_id, **body)
    commit()
    return row
