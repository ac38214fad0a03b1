"""Member levels (ADR 0030): the platform's level table with each level's benefits, and each member's growth.

The level in force stays on `users.member_level` (the quote, carts and identity products read it there); it is
written only when a member's level changes. Growth and the grace period live here, never on `users` rows."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base


class MemberLevel(Base):
    """One level: reached at `threshold` growth (minor units of paid spend net of refunds over the term)."""

    __tablename__ = "member_levels"
    __table_args__ = (
        sa.CheckConstraint("level >= 1 AND threshold >= 0", name="level_threshold"),
        sa.CheckConstraint("discount_bp BETWEEN 0 AND 9999 AND multiplier_bp >= 0", name="benefits"),
    )

    level: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.String(40))
    threshold: Mapped[int] = mapped_column(sa.BigInteger)
    discount_bp: Mapped[int] = mapped_column(default=0)  # the member price: basis points off non-promoted lines
    multiplier_bp: Mapped[int] = mapped_column(default=10_000)  # points earned x this / 10000
    free_shipping_above: Mapped[int | None] = mapped_column(sa.BigInteger)  # a brand part this big ships free
    birthday_template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("coupon_templates.id"))
    updated_at: Mapped[datetime]


class MemberGrowth(Base):
    """A member's growth over the current term, and since when it has been below their level's threshold (the
    grace period's start; None while it is not). Plain ids: batches write many rows at once."""

    __tablename__ = "member_growth"

    user_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    growth: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    below_since: Mapped[datetime | None]
    updated_at: Mapped[datetime]
