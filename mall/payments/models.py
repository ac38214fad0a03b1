from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base, JSONType, Timestamped


class Payment(Timestamped, Base):
    """One attempt to collect an order's payable through a gateway (a Stripe PaymentIntent, an offline receipt)."""

    __tablename__ = "payments"
    __table_args__ = (sa.UniqueConstraint("gateway", "intent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    gateway: Mapped[str] = mapped_column(sa.String(20))
    intent_id: Mapped[str] = mapped_column(sa.String(255))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")  # pending|succeeded|failed
    refunded_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(255))
    client_secret: Mapped[str | None] = mapped_column(sa.String(255))


CLAIMED = "claimed"  # written, not yet answered by the provider: the sender (or the sweep) calls it
_CLAIMED = sa.text("status = 'claimed'")


class Refund(Timestamped, Base):
    """Money sent back. The idempotency key makes a retried refund reach the gateway as the same refund.

    Claim -> commit -> call -> record: the row is written `claimed` with the change that returns the money, the
    provider is called after that commit, and a second transaction writes its answer (see ADR 0014)."""

    __tablename__ = "refunds"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.Index("ix_refunds_claimed", "retry_at", "id", postgresql_where=_CLAIMED, sqlite_where=_CLAIMED),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    reason: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")  # claimed|pending|succeeded|failed
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    gateway_refund_id: Mapped[str | None] = mapped_column(sa.String(255))
    attempts: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))  # provider calls taken
    retry_at: Mapped[datetime | None]  # claimed: when the sweep may call (again); the sender's lease until then
    last_error: Mapped[str | None] = mapped_column(sa.String(300))


class GatewayCall(Timestamped, Base):
    """A call to the payment provider that has an effect there (a PaymentIntent), claimed before it is made.

    The row commits before the call, under the idempotency key the call uses; the answer is recorded in a
    second transaction. A caller that dies between the two leaves it `claimed`, and the sweep repeats the
    call with the same key once the lease (`retry_at`) has run out: the provider answers with the same
    object, so nothing is lost or made twice. Refunds carry the same columns on their own row."""

    __tablename__ = "gateway_calls"
    __table_args__ = (
        sa.Index("ix_gateway_calls_claimed", "retry_at", "id", postgresql_where=_CLAIMED, sqlite_where=_CLAIMED),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # payment_intent
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    gateway: Mapped[str] = mapped_column(sa.String(20))
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    details: Mapped[dict] = mapped_column(JSONType, default=dict)  # the call's metadata, as sent
    status: Mapped[str] = mapped_column(sa.String(20), default=CLAIMED)  # claimed|done|failed
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(300))
    reference: Mapped[str | None] = mapped_column(sa.String(255))  # the provider's id, once answered


class WebhookEvent(Base):
    """A provider event, stored once by its id; processing happens in a job and is idempotent."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        sa.UniqueConstraint("provider", "event_id"),
        sa.Index("ix_webhook_events_received", "received_at"),  # retention (mall/retention.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(20))
    event_id: Mapped[str] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(80))
    payload: Mapped[dict] = mapped_column(JSONType)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(80))


class Installation(Base):
    """This installation's name at the payment provider: a random id made the first time it is needed and kept
    in the database. It scopes idempotency keys and is sent as intent metadata, so two databases sharing one
    Stripe account (a second environment, a copy) never get each other's PaymentIntents or refunds back."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1: one row
    installation_id: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]


class PaymentAnomaly(Base):
    """Money that did not match what the mall expected, kept for an operator (`GET /admin/payment-anomalies`):
    a signed event paying another amount than the order's payable, an intent or refund returned by the
    provider that belongs to another order or payment. The order is never marked paid by one."""

    __tablename__ = "payment_anomalies"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))  # amount_mismatch | foreign_intent | foreign_refund
    gateway: Mapped[str] = mapped_column(sa.String(20))
    reference: Mapped[str | None] = mapped_column(sa.String(255))  # the provider's intent or refund id
    expected_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    expected_currency: Mapped[str | None] = mapped_column(sa.String(3))
    received_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    received_currency: Mapped[str | None] = mapped_column(sa.String(3))
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime]


class UnassignedRefund(Base):
    """A refund made outside the mall (the Stripe dashboard) that returned part of an order's money but says
    nothing about which lines: parked here until an operator assigns it to units
    (`POST /admin/unassigned-refunds/{id}/assign`). The payment counts it at once; the order's lines and totals
    only once it is assigned (ADR 0012)."""

    __tablename__ = "unassigned_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"))
    refund_id: Mapped[int] = mapped_column(sa.ForeignKey("refunds.id"), unique=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(20), default="open")  # open | assigned
    assignment: Mapped[dict | None] = mapped_column(JSONType)  # what the operator assigned it to
    created_at: Mapped[datetime]
    assigned_at: Mapped[datetime | None]
    assigned_by: Mapped[int | None]
