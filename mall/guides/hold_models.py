"""The tables behind commission fraud holds (ADR 0024): a brand's hold thresholds, one signal row per attributed
paid order (what the cluster rules count), guide-owned coupon templates and their uses, and the review of every
held entry (release or void, by whom, why)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base
from mall.guides.ledger_models import CommissionEntry

FRESH = sa.text("fresh")
OUTSIDE = sa.text("outside")
HELD = sa.text("state = 'on_hold'")


class HoldSettings(Base):
    """A brand's hold thresholds; a brand without a row uses `mall.guides.holds.DEFAULTS`. A size of 0 turns that
    rule off. The thresholds in force are copied into every hold's reason, so a later change explains nothing
    away."""

    __tablename__ = "guide_hold_settings"
    __table_args__ = (
        sa.CheckConstraint("fresh_account_days >= 0 AND fresh_max_orders >= 0 AND fresh_cluster_size >= 0 AND "
                           "fresh_cluster_days > 0 AND address_cluster_size >= 0 AND address_cluster_days > 0 AND "
                           "coupon_spread_size >= 0", name="thresholds"),
    )  # fmt: skip

    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"), primary_key=True)
    fresh_account_days: Mapped[int]  # an account younger than this at payment is fresh ...
    fresh_max_orders: Mapped[int]  # ... if it has at most this many other paid orders
    fresh_cluster_size: Mapped[int]  # fresh shoppers ordering through one guide within the window: hold
    fresh_cluster_days: Mapped[int]
    address_cluster_size: Mapped[int]  # different shoppers under one guide shipping to one address in the window
    address_cluster_days: Mapped[int]
    coupon_spread_size: Mapped[int]  # shoppers not bound to the guide who used the guide's coupon
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime]


class OrderSignal(Base):
    """One attributed paid order of a guide, as the cluster rules see it: who bought, whether their account was
    fresh, and the normalised shipping address's key. Written once per (order, guide) at earn time, so it is also
    the guide's list of paid orders by payment time (the workbench counts today's)."""

    __tablename__ = "guide_order_signals"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "guide_id", name="uq_guide_order_signals_order"),
        sa.Index("ix_guide_order_signals_fresh", "guide_id", "paid_at", postgresql_where=FRESH, sqlite_where=FRESH),
        sa.Index("ix_guide_order_signals_address", "guide_id", "address_key", "paid_at"),
        sa.Index("ix_guide_order_signals_paid", "guide_id", "paid_at"),  # the workbench's orders paid today
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"))
    shopper_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    fresh: Mapped[bool]
    address_key: Mapped[str] = mapped_column(sa.String(32))
    paid_at: Mapped[datetime]


class GuideCoupon(Base):
    """A coupon template owned by a guide (导购专属券): the guide hands it out, and its spread is watched."""

    __tablename__ = "guide_coupons"
    __table_args__ = (sa.Index("ix_guide_coupons_guide", "guide_id"),)

    template_id: Mapped[int] = mapped_column(sa.ForeignKey("coupon_templates.id"), primary_key=True)
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime]


class CouponUse(Base):
    """A paid order that used a guide-owned coupon; `outside`: the order's lines of the brand were not attributed
    to the owning guide (the shopper was not bound to them when ordering)."""

    __tablename__ = "guide_coupon_uses"
    __table_args__ = (
        sa.UniqueConstraint("template_id", "order_id", name="uq_guide_coupon_uses_order"),
        sa.Index("ix_guide_coupon_uses_outside", "template_id", "shopper_id", postgresql_where=OUTSIDE,
                 sqlite_where=OUTSIDE),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("coupon_templates.id"))
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"))
    shopper_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    outside: Mapped[bool]
    paid_at: Mapped[datetime]


class HoldReview(Base):
    """A brand admin's decision on a held entry: `released` (to pending or available) or `voided`, with why."""

    __tablename__ = "guide_hold_reviews"
    __table_args__ = (
        sa.CheckConstraint("action IN ('released', 'voided')", name="action"),
        sa.Index("ix_guide_hold_reviews_entry", "entry_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("guide_commission_entries.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    action: Mapped[str] = mapped_column(sa.String(16))
    from_state: Mapped[str] = mapped_column(sa.String(16))
    to_state: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(500))
    by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime]


# A brand's held entries, newest first (the review list); partial: few entries are ever held.
_ENTRIES = CommissionEntry.__table__
sa.Index("ix_guide_commission_entries_held", _ENTRIES.c.brand_id, _ENTRIES.c.id, postgresql_where=HELD,
         sqlite_where=HELD)  # fmt: skip
