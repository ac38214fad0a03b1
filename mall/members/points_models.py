"""The points ledger's tables (ADR 0027): lots, append-only entries, a cached balance per member.

- A lot is one grant (an earn on a paid line, the sign-up or a check-in grant, an operator's credit, later a
  re-credit): `amount` granted, `remaining` still usable, `state` pending (earned on a line not settled yet) or
  available, `expires_at` (exclusive: at that instant it expires).
- Every change of a lot's `remaining` is an entry on that lot (`lot_id`), so a lot's `remaining` equals the sum
  of its entries; every entry has a unique `key` (its idempotency key) and a `reason`.
- `points_balances` caches per member the remaining of their pending and available lots (and `reserved`, for
  redemption at checkout), changed in the same transaction as the entries; `audit` proves both.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base, JSONType

KINDS = ("earn", "signup", "checkin", "adjust", "redeem", "return", "expire", "recredit", "clawback")
LIVE = sa.text("remaining > 0")
# The expiry sweep's candidates: available lots with points left, by expiry (spent and expired lots leave it).
DUE = sa.text("remaining > 0 AND state = 'available'")


class PointsLot(Base):
    __tablename__ = "points_lots"
    __table_args__ = (
        sa.CheckConstraint("remaining >= 0 AND remaining <= amount AND amount > 0", name="remaining"),
        sa.CheckConstraint("state IN ('pending', 'available')", name="state"),
        sa.Index("ix_points_lots_due", "expires_at", "id", postgresql_where=DUE, sqlite_where=DUE),
        # A member's live lots, oldest expiry first (FIFO spending, "what expires next").
        sa.Index("ix_points_lots_member", "user_id", "expires_at", "id", postgresql_where=LIVE, sqlite_where=LIVE),
        sa.Index("ix_points_lots_sub_order", "sub_order_id", postgresql_where=sa.text("sub_order_id IS NOT NULL"),
                 sqlite_where=sa.text("sub_order_id IS NOT NULL")),
        sa.Index("ix_points_lots_line", "order_line_id", postgresql_where=sa.text("order_line_id IS NOT NULL"),
                 sqlite_where=sa.text("order_line_id IS NOT NULL")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    brand_id: Mapped[int | None] = mapped_column(sa.ForeignKey("brands.id"))  # NULL: the platform granted it
    source: Mapped[str] = mapped_column(sa.String(16))  # earn | signup | checkin | adjust | recredit
    state: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    remaining: Mapped[int] = mapped_column(sa.BigInteger)
    earned_at: Mapped[datetime]
    available_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    expired_at: Mapped[datetime | None]
    order_id: Mapped[int | None]
    sub_order_id: Mapped[int | None]
    order_line_id: Mapped[int | None]
    key: Mapped[str] = mapped_column(sa.String(120), unique=True)  # the granting entry's key


class PointsEntry(Base):
    __tablename__ = "points_entries"
    __table_args__ = (
        sa.CheckConstraint(f"kind IN ({', '.join(repr(k) for k in KINDS)})", name="kind"),
        sa.Index("ix_points_entries_member", "user_id", "id"),
        sa.Index("ix_points_entries_lot", "lot_id"),
        # A refunded part's re-credit, looked up by its refund line (the replay guard); few rows have one.
        sa.Index("ix_points_entries_refund_line", "refund_line_id", postgresql_where=sa.text("refund_line_id IS NOT NULL"),
                 sqlite_where=sa.text("refund_line_id IS NOT NULL")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys: entries are written only by mall.members (the lot's own ids), and a foreign-key check per
    # row was a third of the expiry sweep's cost (ADR 0027); the audit finds an entry without its lot.
    user_id: Mapped[int]
    lot_id: Mapped[int]
    brand_id: Mapped[int | None]  # the lot's, copied: the liability report reads entries without the lot
    kind: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)  # signed: what the lot's remaining changed by
    key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    reason: Mapped[dict] = mapped_column(JSONType, default=dict)
    order_id: Mapped[int | None]
    order_line_id: Mapped[int | None]
    refund_line_id: Mapped[int | None]
    actor_id: Mapped[int | None]
    created_at: Mapped[datetime]


class PointsBalance(Base):
    __tablename__ = "points_balances"
    __table_args__ = (sa.CheckConstraint("available >= 0 AND pending >= 0 AND reserved >= 0", name="non_negative"),)

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    available: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    pending: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime]


class PointsCursor(Base):
    """Where a resumable sweep got to (the expiry reminder: the last (expires_at, user) it reminded)."""

    __tablename__ = "points_cursors"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    at: Mapped[datetime]
    user_id: Mapped[int] = mapped_column(default=0)


class PointsHold(Base):
    """Which lots paid for an order (ADR 0029): one row per lot a placement took points from. `held` while the
    order is unpaid (counted in the balance's `reserved`), `spent` once paid, `returned` if it was cancelled;
    `recredited` counts what refunds of the order's lines gave back to this lot (never above `amount`)."""

    __tablename__ = "points_holds"
    __table_args__ = (
        sa.CheckConstraint("amount > 0 AND recredited >= 0 AND recredited <= amount", name="amounts"),
        sa.CheckConstraint("state IN ('held', 'spent', 'returned')", name="state"),
        sa.Index("ix_points_holds_order", "order_id"),
        # The audit's `reserved`: a member's held holds.
        sa.Index("ix_points_holds_held", "user_id", postgresql_where=sa.text("state = 'held'"),
                 sqlite_where=sa.text("state = 'held'")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("points_lots.id"))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    recredited: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    state: Mapped[str] = mapped_column(sa.String(10))
    key: Mapped[str] = mapped_column(sa.String(160), unique=True)  # its redeem entry's key
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PointsCatalogueItem(Base):
    """A coupon shoppers buy with points (积分兑券, ADR 0029): the template it issues, its points price, how many
    one member may redeem, the stock (NULL: as many as the template gives out), the window it is offered in."""

    __tablename__ = "points_catalogue_items"
    __table_args__ = (
        sa.CheckConstraint("points_price > 0 AND per_member_limit > 0", name="positive"),
        sa.CheckConstraint("stock IS NULL OR redeemed_count <= stock", name="within_stock"),
        sa.CheckConstraint("status IN ('active', 'paused', 'ended')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("coupon_templates.id"))
    brand_id: Mapped[int | None] = mapped_column(sa.ForeignKey("brands.id"), index=True)  # the template's
    title: Mapped[str] = mapped_column(sa.String(100))
    points_price: Mapped[int] = mapped_column(sa.BigInteger)
    per_member_limit: Mapped[int] = mapped_column(default=1)
    stock: Mapped[int | None]
    redeemed_count: Mapped[int] = mapped_column(default=0)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(sa.String(10), default="active")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PointsCatalogueRedemption(Base):
    """One coupon bought with points: `seq` (1..per_member_limit) is unique per member and item, so the cap holds
    whatever the races; `key` is the points' redeem entry key (the shopper's Idempotency-Key)."""

    __tablename__ = "points_catalogue_redemptions"
    __table_args__ = (sa.UniqueConstraint("item_id", "user_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("points_catalogue_items.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    seq: Mapped[int]
    points: Mapped[int] = mapped_column(sa.BigInteger)
    coupon_id: Mapped[int] = mapped_column(sa.ForeignKey("coupons.id"))
    key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    created_at: Mapped[datetime]
