"""Guides (导购), their stores and share links, the visits links bring, and customer binding (客户绑定): which guide
a shopper belongs to in a brand, why, and every take-over refused or handed over. See ADR 0021."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base, JSONType, Timestamped

ACTIVE = sa.text("ended_at IS NULL")
MODES = ("permanent", "protected", "last_click", "click_lock")


class Store(Timestamped, Base):
    """A brand's physical store; guides may belong to one, and its printable QR codes are store links."""

    __tablename__ = "stores"
    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'closed')", name="status"),
        sa.Index("ix_stores_brand", "brand_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")


class Guide(Timestamped, Base):
    """A user with role `guide` selling for one brand (optionally in one store). `shopper_user_id`: the
    mini-program account the guide buys with, so self-purchase is recognised and self-binding refused."""

    __tablename__ = "guides"
    __table_args__ = (
        sa.CheckConstraint("status IN ('invited', 'active', 'suspended', 'removed')", name="status"),
        sa.UniqueConstraint("user_id", name="uq_guides_user"),
        sa.Index("ix_guides_brand", "brand_id", "status"),
        sa.Index("ix_guides_shopper", "shopper_user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    status: Mapped[str] = mapped_column(sa.String(16), default="invited")
    shopper_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    grade: Mapped[str | None] = mapped_column(sa.String(32))  # rate cards may be per grade (mall/guides/rates.py)
    stripe_account_id: Mapped[str | None] = mapped_column(sa.String(64))  # Connect account payouts transfer to
    bank_account: Mapped[str | None] = mapped_column(sa.String(128))  # manual payouts' bank-transfer CSV
    invited_by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))


class GuideLink(Timestamped, Base):
    """A guide's share link: a product (optionally one SKU), a live room, the brand's storefront or a store (a
    printable in-store QR code). Shared as a short signed code naming the link (mall/guides/links.py)."""

    __tablename__ = "guide_links"
    __table_args__ = (
        sa.CheckConstraint("target IN ('product', 'live_room', 'storefront', 'store')", name="target"),
        sa.CheckConstraint("target != 'product' OR product_id IS NOT NULL", name="product"),
        sa.CheckConstraint("target != 'live_room' OR room_id IS NOT NULL", name="room"),
        sa.CheckConstraint("target != 'store' OR store_id IS NOT NULL", name="store"),
        sa.Index("ix_guide_links_guide", "guide_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    target: Mapped[str] = mapped_column(sa.String(16))
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("products.id"))
    sku_id: Mapped[int | None] = mapped_column(sa.ForeignKey("skus.id"))
    room_id: Mapped[int | None] = mapped_column(sa.ForeignKey("live_rooms.id"))
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))


class GuideVisit(Base):
    """A shopper opening a guide's link."""

    __tablename__ = "guide_visits"
    __table_args__ = (
        sa.Index("ix_guide_visits_guide", "guide_id", "visited_at"),
        sa.Index("ix_guide_visits_shopper", "shopper_id", "brand_id"),
        sa.Index("ix_guide_visits_at", "visited_at"),  # retention (mall/retention.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    shopper_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    link_id: Mapped[int] = mapped_column(sa.ForeignKey("guide_links.id"))
    visited_at: Mapped[datetime]


class BindingSetting(Base):
    """A dated version of a brand's binding rule. The version in force when a binding is made is the one it keeps:
    a change applies to new bindings only. `days`: protection (protected) or lock after a click (click_lock);
    `order_days`: click_lock's lock after an order."""

    __tablename__ = "guide_binding_settings"
    __table_args__ = (
        sa.CheckConstraint("mode IN ('permanent', 'protected', 'last_click', 'click_lock')", name="mode"),
        sa.CheckConstraint("days > 0 AND order_days > 0", name="days"),
        sa.UniqueConstraint("brand_id", "version", name="uq_guide_binding_settings_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    version: Mapped[int]
    mode: Mapped[str] = mapped_column(sa.String(16))
    days: Mapped[int] = mapped_column(default=15)
    order_days: Mapped[int] = mapped_column(default=30)
    effective_from: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class Binding(Base):
    """A shopper bound to a guide in a brand from `since`; `until` ends the window (None: no end); `ended_at` is
    set when it is replaced, handed over or the guide removed. At most one binding per (shopper, brand) is not
    ended: a partial unique index. `reason`: the link, rule, window and setting version that made it."""

    __tablename__ = "guide_bindings"
    __table_args__ = (
        sa.Index(
            "uq_guide_bindings_active",
            "shopper_id",
            "brand_id",
            unique=True,
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        ),  # fmt: skip
        sa.Index("ix_guide_bindings_guide", "guide_id", "since"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shopper_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))
    setting_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guide_binding_settings.id"))
    since: Mapped[datetime]
    until: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[dict] = mapped_column(JSONType, default=dict)


class BindingEvent(Base):
    """The binding history of a shopper in a brand: `bound`, `extended`, `refused` (a take-over refused, with
    why), `kept` (the same guide's link again), `handed_over`, `ended`."""

    __tablename__ = "guide_binding_events"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('bound', 'extended', 'refused', 'kept', 'handed_over', 'ended')", name="kind"),
        sa.Index("ix_guide_binding_events_shopper", "shopper_id", "brand_id", "id"),
        sa.Index("ix_guide_binding_events_guide", "guide_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shopper_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"))  # the guide the event is about
    binding_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guide_bindings.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime]


class EarningsDay(Base):
    """A closed day's commission credited to a guide (earn, reverse and adjust entries not void, by the day they were
    posted, in the shop's time zone), kept once the day is over so the workbench's chart reads 30 rows, not the
    day's entries (mall.guides.earnings_days, ADR 0025). A cache: rebuilt from the ledger at will."""

    __tablename__ = "guide_earnings_days"

    guide_id: Mapped[int] = mapped_column(sa.ForeignKey("guides.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(3), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
