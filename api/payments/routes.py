"""Provider webhooks. The body is verified and stored once, then processed by an RQ job."""

from __future__ import annotations

from flask import request

from api.auth import MallBlueprint
from api.extensions import db
from api.settings import payment_gateway
from api.tx import commit
from workers import queues
from workers.jobs.payments import process_payment_webhook

blp = MallBlueprint("payments", __name__, description="Payment provider webhooks")


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
