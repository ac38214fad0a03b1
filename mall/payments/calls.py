"""Calls to the payment provider that have an effect there: claim -> commit -> call -> record (ADR 0014).

1. The claim is written in a transaction of its own, or with the change that causes it (a refund is claimed
   in the after-sale approval or the group failure that returns the money): a `gateway_calls` row for a
   PaymentIntent, the `refunds` row itself for a refund, `claimed`, under the idempotency key the call uses,
   with a lease (`retry_at`) taken by whoever makes the call. It commits.
2. The call (`call`), with no transaction open and no row locked. What it raises is returned as a value.
3. The answer is recorded in a second transaction, only while the row is still `claimed`.

A caller that dies after the call, or whose record cannot commit, leaves the row `claimed`; once its lease
has run out the sweep takes it and calls again with the same key. The provider answers a repeated key with
the object it made the first time, so nothing is lost and nothing is charged or refunded twice. A call that
failed (timeout, provider down) is retried the same way with a growing delay, and given up after
MAX_ATTEMPTS or at once when the provider refuses the request itself (`Invalid`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.errors import DomainError, Invalid, Unavailable
from mall.payments.models import CLAIMED

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # far longer than a provider call (the Stripe client gives up well before)
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class IntentCall:
    """A PaymentIntent to create: everything the call needs, so nothing is read from the database during it.
    `call_id` is None for a gateway with no provider behind it (offline): nothing to claim."""

    order_id: int
    key: str
    amount: int
    currency: str
    metadata: dict = field(default_factory=dict)
    call_id: int | None = None
    loaded: Any = field(default=None, compare=False, repr=False)  # offline only: the claim's Order, same session

    def request(self) -> dict:
        return {"amount": self.amount, "currency": self.currency, "idempotency_key": self.key,
                "metadata": self.metadata}  # fmt: skip


@dataclass(frozen=True)
class RefundCall:
    refund_id: int
    order_id: int
    payment_id: int
    intent_id: str
    amount: int
    key: str  # the provider's idempotency key (payments.refund_key)
    attempt: int

    def request(self) -> dict:
        return {"intent_id": self.intent_id, "amount": self.amount, "idempotency_key": self.key,
                "metadata": {"order_id": self.order_id, "refund_id": self.refund_id}}  # fmt: skip


def call(method, request: dict):
    """Step 2: the provider call. Its answer, or the error it ended with (a timeout, the provider down, a
    refusal), as a value: the caller records either in its second transaction."""
    try:
        return method(**request)
    except DomainError as exc:
        log.warning("payment provider call %s failed: %s", request.get("idempotency_key"), exc.code)
        return exc
    except Exception as exc:  # an SDK or network error the gateway did not translate: no answer either
        log.exception("payment provider call %s failed", request.get("idempotency_key"))
        return Unavailable("payment.gateway_error", f"The payment provider call failed: {type(exc).__name__}.")


def take(session: Session, model, row_id: int) -> bool:
    """Take the lease on a claimed row whose lease is free (its claimer moved on, died, or was told to retry
    later): one conditional UPDATE, so two sweepers never call for one row at the same time."""
    now = clock.now()
    taken = session.execute(
        sa.update(model)
        .where(model.id == row_id, model.status == CLAIMED, model.retry_at <= now)
        .values(retry_at=now + LEASE, attempts=model.attempts + 1),
        execution_options={"synchronize_session": False},
    )
    return taken.rowcount == 1


def note_failure(session: Session, row, error: DomainError) -> str:
    """Record a failed call on its claimed row: retried later with a growing delay ("retry_later"), or given
    up ("failed") after MAX_ATTEMPTS or when the provider refused the request itself."""
    session.refresh(row)
    if row.status != CLAIMED:
        return "already_recorded"
    row.last_error = f"{error.code}: {error.detail}"[:300]
    if isinstance(error, Invalid) or row.attempts >= MAX_ATTEMPTS:
        row.status = "failed"
        return "failed"
    row.retry_at = clock.now() + min(timedelta(minutes=2**row.attempts), timedelta(hours=2))
    return "retry_later"


def due(session: Session, model, *, limit: int = 200) -> list[int]:
    """Claimed rows whose lease has run out: for the sweep (a partial index on claimed rows)."""
    query = (
        sa.select(model.id).where(model.status == CLAIMED, model.retry_at <= clock.now())
        .order_by(model.retry_at, model.id).limit(limit)
    )  # fmt: skip
    return list(session.scalars(query))
