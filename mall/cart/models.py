from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall import clock
from mall.db import Base, JSONType, Timestamped


class Cart(Timestamped, Base):
    """One per shopper. `version` moves on every change: nudges are sent at most once per version."""

    __tablename__ = "carts"
    # Abandoned-cart sweeps read carts with lines by idle time.
    __table_args__ = (
        sa.Index("ix_carts_abandonable", "last_activity_at", postgresql_where=sa.text("line_count > 0"),
                 sqlite_where=sa.text("line_count > 0")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), unique=True)
    version: Mapped[int] = mapped_column(default=1)
    line_count: Mapped[int] = mapped_column(default=0)
    last_activity_at: Mapped[datetime] = mapped_column(default=clock.now)


class CartLine(Timestamped, Base):
    """A SKU, or a bundle (套餐: `bundle_id`, and no SKU; `quantity` counts bundles), with its quantity."""

    __tablename__ = "cart_lines"
    __table_args__ = (
        sa.UniqueConstraint("cart_id", "sku_id"),
        sa.UniqueConstraint("cart_id", "bundle_id"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("(sku_id IS NULL) <> (bundle_id IS NULL)", name="sku_or_bundle"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(sa.ForeignKey("carts.id", ondelete="CASCADE"))
    sku_id: Mapped[int | None] = mapped_column(sa.ForeignKey("skus.id"), index=True)
    bundle_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bundles.id"))
    quantity: Mapped[int]
    # {"type": "live", "room_id": 3, "host_id": 9}: attribution for reports and commission.
    source: Mapped[dict] = mapped_column(JSONType, default=lambda: {"type": "organic"})
