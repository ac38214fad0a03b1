from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall import clock
from mall.catalog.models import Sku
from mall.db import Base, Timestamped


class FlashSale(Timestamped, Base):
    """A time slot (秒杀场次) holding flash items."""

    __tablename__ = "flash_sales"
    __table_args__ = (sa.CheckConstraint("ends_at > starts_at", name="window"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    payment_minutes: Mapped[int] = mapped_column(default=10)
    status: Mapped[str] = mapped_column(sa.String(10), default="scheduled")  # scheduled | cancelled

    items: Mapped[list[FlashItem]] = relationship(back_populates="sale", order_by="FlashItem.id")


class FlashItem(Base):
    """A SKU at a flash price with its own quota (drawn from the SKU's stock) and a per-shopper limit."""

    __tablename__ = "flash_items"
    __table_args__ = (
        sa.UniqueConstraint("sale_id", "sku_id"),
        sa.CheckConstraint("quota > 0 AND per_shopper_limit > 0 AND flash_price >= 0", name="values"),
        sa.CheckConstraint("sold >= 0 AND sold <= quota", name="sold_within_quota"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(sa.ForeignKey("flash_sales.id"))
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    flash_price: Mapped[int] = mapped_column(sa.BigInteger)
    quota: Mapped[int]
    per_shopper_limit: Mapped[int] = mapped_column(default=1)
    # The database's own count, moved by a conditional UPDATE: the last word even if Redis is wrong.
    sold: Mapped[int] = mapped_column(default=0)

    sale: Mapped[FlashSale] = relationship(back_populates="items")
    sku: Mapped[Sku] = relationship()


class FlashOrder(Base):
    """The record of an admission: PostgreSQL is the truth Redis counters are checked (and rebuilt) against.
    `active` while its order is pending or paid; `released` once its unit went back to the quota."""

    __tablename__ = "flash_orders"
    __table_args__ = (sa.Index("ix_flash_orders_item_user", "item_id", "user_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("flash_items.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), unique=True)
    quantity: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(10), default="active")  # active | released
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class FlashBuyer(Base):
    """Units each shopper holds of an item: the database's own per-shopper limit, moved by a conditional
    upsert, so the limit holds even while Redis counters are being rebuilt."""

    __tablename__ = "flash_buyers"
    __table_args__ = (sa.CheckConstraint("quantity >= 0", name="quantity_non_negative"),)

    item_id: Mapped[int] = mapped_column(sa.ForeignKey("flash_items.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    quantity: Mapped[int]


class FlashReminder(Base):
    """ "Remind me" (开抢提醒) subscriptions: one per shopper and sale."""

    __tablename__ = "flash_reminders"
    __table_args__ = (sa.UniqueConstraint("sale_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(sa.ForeignKey("flash_sales.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
