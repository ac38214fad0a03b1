"""The payment gateway interface, and the offline gateway used by the embedded default and the demo."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Intent:
    intent_id: str
    status: str  # "succeeded" (money already in) or "requires_action" (the client must confirm)
    client_secret: str | None = None
    metadata: dict = field(default_factory=dict)  # as the provider holds it: whose intent this is


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # "succeeded" | "pending" | "failed"
    intent_id: str | None = None  # the payment it returns money of, as the provider holds it


@dataclass(frozen=True)
class Transfer:
    """A transfer of the platform's money to a connected account (Stripe Connect), as the provider holds it."""

    transfer_id: str
    amount: int
    currency: str  # upper case, as the mall writes currencies
    destination: str
    amount_reversed: int = 0
    metadata: dict = field(default_factory=dict)


def transfer_of(obj: dict) -> Transfer:
    """A transfer object (an API answer or a `transfer.*` webhook's data.object) as the mall reads it."""
    return Transfer(transfer_id=obj["id"], amount=int(obj["amount"]), currency=str(obj["currency"]).upper(),
                    destination=str(obj.get("destination") or ""), amount_reversed=int(obj.get("amount_reversed") or 0),
                    metadata=dict(obj.get("metadata") or {}))  # fmt: skip


@dataclass(frozen=True)
class WebhookPayload:
    event_id: str
    type: str
    data: dict


class PaymentGateway(Protocol):
    name: str
    remote: bool  # a provider behind a network: its calls are claimed, made after commit, then recorded

    def create_intent(self, *, amount: int, currency: str, idempotency_key: str, metadata: dict) -> Intent: ...

    def refund(self, *, intent_id: str, amount: int, idempotency_key: str, metadata: dict) -> RefundResult: ...

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookPayload: ...


class OfflineGateway:
    """Collects nothing over a network: `POST /orders/{id}/pay` marks the money received (demo, cash, tests)."""

    name = "offline"
    remote = False  # nothing leaves the process: claim, call and record in one transaction

    def create_intent(self, *, amount: int, currency: str, idempotency_key: str, metadata: dict) -> Intent:
        return Intent(intent_id=f"offline-{idempotency_key}", status="succeeded",
                      metadata={k: str(v) for k, v in metadata.items()})  # fmt: skip

    def refund(self, *, intent_id: str, amount: int, idempotency_key: str, metadata: dict) -> RefundResult:
        return RefundResult(refund_id=f"offline-refund-{idempotency_key}", status="succeeded", intent_id=intent_id)

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookPayload:
        from mall.errors import NotFound

        raise NotFound("payment.no_webhooks", "The offline gateway has no webhooks.")
