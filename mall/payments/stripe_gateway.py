"""Stripe behind the PaymentGateway interface (the only module that imports the Stripe SDK)."""

from __future__ import annotations

import stripe

from mall.errors import BadRequest, Invalid, Unavailable
from mall.payments.gateway import Intent, RefundResult, Transfer, WebhookPayload, transfer_of


class StripeGateway:
    name = "stripe"
    remote = True

    def __init__(
        self, *, api_key: str, webhook_secret: str, payment_method_types: list[str], api_base: str | None = None,
        wechat_client: str = "web", timeout: float = 30.0, retries: int = 2,
    ):  # fmt: skip
        options = {"base_addresses": {"api": api_base}} if api_base else {}
        http = stripe.RequestsClient(timeout=timeout)  # no transaction waits on it, but a request or a job does
        self.client = stripe.StripeClient(api_key, max_network_retries=retries, http_client=http, **options)
        self.webhook_secret = webhook_secret
        self.payment_method_types = payment_method_types
        self.wechat_client = wechat_client

    def create_intent(self, *, amount: int, currency: str, idempotency_key: str, metadata: dict) -> Intent:
        params = {
            "amount": amount,
            "currency": currency.lower(),
            "payment_method_types": self.payment_method_types,
            "metadata": {k: str(v) for k, v in metadata.items()},
        }
        if "wechat_pay" in self.payment_method_types:
            params["payment_method_options"] = {"wechat_pay": {"client": self.wechat_client}}
        intent = self._call(self.client.v1.payment_intents.create, params, idempotency_key)
        status = "succeeded" if intent.status == "succeeded" else "requires_action"
        return Intent(intent_id=intent.id, status=status, client_secret=intent.client_secret,
                      metadata=intent.metadata.to_dict() if intent.metadata else {})  # fmt: skip

    def refund(self, *, intent_id: str, amount: int, idempotency_key: str, metadata: dict) -> RefundResult:
        params = {"payment_intent": intent_id, "amount": amount, "metadata": {k: str(v) for k, v in metadata.items()}}
        refund = self._call(self.client.v1.refunds.create, params, idempotency_key)
        status = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}.get(refund.status, "pending")
        return RefundResult(refund_id=refund.id, status=status, intent_id=refund.payment_intent)

    def transfer(self, *, amount: int, currency: str, destination: str, idempotency_key: str,
                 metadata: dict) -> Transfer:  # fmt: skip
        """A Connect transfer to `destination` (guide payouts, ADR 0023): the same key answers the same transfer."""
        params = {"amount": amount, "currency": currency.lower(), "destination": destination,
                  "metadata": {k: str(v) for k, v in metadata.items()}}  # fmt: skip
        return transfer_of(self._call(self.client.v1.transfers.create, params, idempotency_key).to_dict())

    def transfers(self, *, created_since: int) -> list[Transfer]:
        """Every transfer created since `created_since` (unix seconds), all pages: for the reconciliation."""
        try:
            page = self.client.v1.transfers.list(params={"limit": 100, "created": {"gte": created_since}})
            return [transfer_of(item.to_dict()) for item in page.auto_paging_iter()]
        except stripe.StripeError as exc:
            raise Unavailable("payment.gateway_unavailable", "The payment provider is unavailable.") from exc

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookPayload:
        """Verify the Stripe-Signature over the raw body; reject bad or stale (>5 min) signatures."""
        try:
            event = self.client.construct_event(payload, signature, self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise BadRequest("webhook.bad_signature", "The webhook signature is missing, wrong or stale.") from exc
        return WebhookPayload(event_id=event.id, type=event.type, data=event.data.object.to_dict())

    @staticmethod
    def _call(method, params: dict, idempotency_key: str):
        try:
            return method(params=params, options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            raise Invalid("payment.declined", exc.user_message or "The payment was declined.") from exc
        except stripe.InvalidRequestError as exc:
            raise Invalid("payment.rejected", str(exc.user_message or exc)) from exc
        except stripe.StripeError as exc:
            raise Unavailable("payment.gateway_unavailable", "The payment provider is unavailable.") from exc
