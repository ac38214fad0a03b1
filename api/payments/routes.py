"""Provider webhooks (the body is verified and stored once, then processed by an RQ job) and the payment
anomalies operators look at."""

from __future__ import annotations

from flask import request

from api.auth import MallBlueprint
from api.extensions import db
from api.payments.schemas import AnomalyListArgs, AnomalySchema
from api.settings import payment_gateway
from api.tx import commit, read_only
from mall.identity.roles import Role
from mall.payments import anomalies
from workers import queues
from workers.jobs.payments import process_payment_webhook

blp = MallBlueprint("payments", __name__, description="Payment provider webhooks and payment anomalies")


STRIPE_EVENT = {"required": True, "description": "A Stripe event, read as the raw bytes Stripe signed",
                "content": {"application/json": {"schema": {"type": "object"}}}}  # fmt: skip


@blp.post("/payments/stripe/webhook")
@blp.doc(requestBody=STRIPE_EVENT)
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
