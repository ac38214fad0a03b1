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
    )

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
