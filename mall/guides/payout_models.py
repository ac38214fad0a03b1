"""Guide payouts' tables (ADR 0023): a brand's payout settings, the payouts themselves (a state machine whose every
move is one conditional UPDATE) and the nightly reconciliation's reports.

A payout debits the guide's available balance when it is requested (a 'payout' ledger entry) and gives it back when
it fails or is cancelled (a 'payout_return' entry, key `payout-return:{id}`): the money is never both available and
on its way out."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base, JSONType

GATEWAYS = ("manual", "stripe")
PAYOUT_STATES = ("requested", "approved", "processing", "paid", "failed", "cancelled")
OPEN_STATES = ("requested", "approved", "processing")
DONE_STATES = ("paid", "failed", "cancelled")


class PayoutSetting(Base):
    """A brand's payout terms; a brand without a row uses the defaults (mall/guides/payouts.py DEFAULTS).
    `weekdays`: the ISO weekdays (1 = Monday) a guide may request on, as digits ("12345" = working days)."""

    __tablename__ = "guide_payout_settings"
    __table_args__ = (
        sa.CheckConstraint("gateway IN ('manual', 'stripe')", name="gateway"),
        sa.CheckConstraint("minimum_amount >= 1 AND min_days_between >= 0", name="limits"),
    )

    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"), primary_key=True)
    gateway: Mapped[str] = mapped_column(sa.String(16))
    minimum_amount: Mapped[int] = mapped_column(sa.BigInteger)
    weekdays: Mapped[str] = mapped_column(sa.String(7))
    min_days_between: Mapped[int] = mapped_column(sa.Integer)
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime]


class Payout(Base):
    """A guide's withdrawal: requested -> approved -> processing -> paid | failed, or cancelled before it is sent
    (by the guide while requested, by the brand admin while requested or approved: a rejection is a cancellation
    with `rejected` set). `destination`: the connected account (stripe) or bank account (manual) when requested.
    Stripe transfers are claim -> commit -> call -> record (ADR 0014): `retry_at` is the caller's lease,
    `attempts` and `last_error` the calls made; the transfer's idempotency key is `transfer_key`."""

    __tablename__ = "guide_payouts"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount"),
        sa.CheckConstraint(f"state IN {PAYOUT_STATES}", name="state"),
        sa.CheckConstraint("gateway IN ('manual', 'stripe')", name="gateway"),
        sa.Index("ix_guide_payouts_guide", "guide_id", "id"),
        sa.Index("ix_guide_payouts_brand", "brand_id", "state", "id"),
        sa.Index("ix_guide_payouts_due", "retry_at", postgresql_where=sa.text("state = 'processing'"),
                 sqlite_where=sa.text("state = 'processing'")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    state: Mapped[str] = mapped_column(sa.String(16))
    gateway: Mapped[str] = mapped_column(sa.String(16))
    destination: Mapped[str] = mapped_column(sa.String(128))
    transfer_key: Mapped[str | None] = mapped_column(sa.String(128))
    reference: Mapped[str | None] = mapped_column(sa.String(128))  # the transfer id, or the bank's reference
    rejected: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(sa.String(300))  # why rejected, cancelled or failed
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(300))
    requested_at: Mapped[datetime]
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    processing_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    paid_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # manual: who marked it paid
    failed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class PayoutReconciliation(Base):
    """One run of the nightly reconciliation: how many payouts and gateway records it compared, and every
    difference found (`differences`: [{kind, payout_id, brand_id, ...}], [] when ledger and gateways agree)."""

    __tablename__ = "guide_payout_reconciliations"

    id: Mapped[int] = mapped_column(primary_key=True)
    ran_at: Mapped[datetime]
    checked: Mapped[int] = mapped_column(default=0)
    differences: Mapped[list] = mapped_column(JSONType)
