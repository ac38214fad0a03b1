"""The commission ledger's tables (ADR 0022): dated rate cards, the append-only entries and the cached balances.

An entry's amount never changes; only its state moves (pending -> available at settlement, on_hold -> pending or
void at review). A guide's balance is the sum of their entries by state; `guide_balances` caches it and is written
in the same transaction as every entry insert and state move (mall/guides/ledger.py, audited by `ledger.audit`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base, JSONType

Amount = sa.BigInteger
SCOPES = ("brand", "category", "product")
KINDS = ("earn", "reverse", "payout", "payout_return", "adjust")
STATES = ("pending", "available", "on_hold", "void")
PENDING = sa.text("state = 'pending'")


class RateCard(Base):
    """What a guide earns on a line: basis points of what the line paid, or a fixed amount per unit, for a brand,
    one of its categories or one product, for one guide grade or any (`guide_grade` NULL). Dated: a change closes
    the card (`valid_to`) and adds a new one, so an entry's `rate_card_id` always names the terms it was earned on.
    Campaign lines (flash sale, group-buy, live price) earn only on a card with `includes_campaign_lines`."""

    __tablename__ = "guide_rate_cards"
    __table_args__ = (
        sa.CheckConstraint("scope IN ('brand', 'category', 'product')", name="scope"),
        sa.CheckConstraint("(scope = 'category') = (category_id IS NOT NULL) AND "
                           "(scope = 'product') = (product_id IS NOT NULL)", name="scope_target"),
        sa.CheckConstraint("(basis_points IS NULL) <> (amount_per_unit IS NULL)", name="one_rate"),
        sa.CheckConstraint("basis_points IS NULL OR (basis_points >= 0 AND basis_points <= 10000)", name="bp"),
        sa.CheckConstraint("amount_per_unit IS NULL OR (amount_per_unit >= 0 AND currency IS NOT NULL)",
                           name="fixed"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="dates"),
        sa.Index("ix_guide_rate_cards_brand", "brand_id", "valid_from"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    scope: Mapped[str] = mapped_column(sa.String(16))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"))
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("products.id"))
    guide_grade: Mapped[str | None] = mapped_column(sa.String(32))
    basis_points: Mapped[int | None]
    amount_per_unit: Mapped[int | None] = mapped_column(Amount)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    includes_campaign_lines: Mapped[bool] = mapped_column(default=False)
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime]


class CommissionEntry(Base):
    """One append-only movement of a guide's commission: `earn` (a paid line), `reverse` (a refunded part of it),
    `payout` / `payout_return`, `adjust`. `reason` says why (card, paid base, rule); `idempotency_key` makes
    every posting safe to retry (earn:{line}, reverse:{refund_line}, payout:{id}, payout-return:{id})."""

    __tablename__ = "guide_commission_entries"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('earn', 'reverse', 'payout', 'payout_return', 'adjust')", name="kind"),
        sa.CheckConstraint("state IN ('pending', 'available', 'on_hold', 'void')", name="state"),
        sa.UniqueConstraint("idempotency_key", name="uq_guide_commission_entries_key"),
        sa.Index("ix_guide_commission_entries_guide", "guide_id", "id"),
        sa.Index("ix_guide_commission_entries_line", "order_line_id"),
        # The settlement's move: a settled sub-order's pending entries (partial: settled entries leave the index).
        sa.Index("ix_guide_commission_entries_pending", "sub_order_id", postgresql_where=PENDING,
                 sqlite_where=PENDING),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount: Mapped[int] = mapped_column(Amount)
    kind: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(16))
    order_id: Mapped[int | None]  # plain ids (no foreign keys): the ledger is written beside the orders, not into them
    sub_order_id: Mapped[int | None]
    order_line_id: Mapped[int | None]
    refund_line_id: Mapped[int | None]
    payout_id: Mapped[int | None]
    rate_card_id: Mapped[int | None]
    reason: Mapped[dict] = mapped_column(JSONType, default=dict)
    idempotency_key: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime]
    state_changed_at: Mapped[datetime]


class Balance(Base):
    """A guide's balance by state in one currency: the sums of their entries, cached (void entries count nowhere).
    Also the row payouts lock (`ledger.lock_balance`) before they check `available`."""

    __tablename__ = "guide_balances"

    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(3), primary_key=True)
    pending: Mapped[int] = mapped_column(Amount, default=0)
    available: Mapped[int] = mapped_column(Amount, default=0)
    on_hold: Mapped[int] = mapped_column(Amount, default=0)
    updated_at: Mapped[datetime]
