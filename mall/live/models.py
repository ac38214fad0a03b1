"""Live rooms (直播间), their lineup and the pin segments (讲解) a host opens by pinning a product."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base, Timestamped

OPEN = sa.text("ended_at IS NULL")


class LiveRoom(Timestamped, Base):
    """A brand's broadcast, run by one host. `version` is bumped by every change a viewer can see (status, pin,
    lineup), in the transaction that makes it: the viewer cache (mall/live/cache.py) orders renders by it."""

    __tablename__ = "live_rooms"
    __table_args__ = (
        sa.CheckConstraint("scheduled_end > scheduled_start", name="window"),
        sa.CheckConstraint("status IN ('scheduled', 'live', 'ended', 'cancelled')", name="status"),
        sa.Index("ix_live_rooms_brand_start", "brand_id", "scheduled_start"),
        sa.Index("ix_live_rooms_host_start", "host_user_id", "scheduled_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    host_user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(sa.String(100))
    cover_url: Mapped[str] = mapped_column(sa.String(500), default="")
    scheduled_start: Mapped[datetime]
    scheduled_end: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(16), default="scheduled")
    # WeChat Channels live id, mini-program live component room id, or a player URL.
    stream_ref: Mapped[str | None] = mapped_column(sa.String(500))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    items: Mapped[list[LineupItem]] = relationship(
        back_populates="room", order_by="[LineupItem.position, LineupItem.id]"
    )


class LineupItem(Base):
    """A product (optionally one SKU) of the room's brand, in show order, with an optional live price (for the
    room's lines while it is live: applied by the pricing slice, not yet) and an optional live quota."""

    __tablename__ = "live_lineup_items"
    __table_args__ = (
        sa.CheckConstraint("live_price IS NULL OR (live_price >= 0 AND currency IS NOT NULL)", name="price"),
        sa.CheckConstraint("live_quota IS NULL OR live_quota > 0", name="quota"),
        sa.CheckConstraint("live_sold >= 0", name="sold"),
        sa.Index("ix_live_lineup_items_room", "room_id", "position", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(sa.ForeignKey("live_rooms.id"))
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"))
    sku_id: Mapped[int | None] = mapped_column(sa.ForeignKey("skus.id"))
    position: Mapped[int] = mapped_column(default=0)
    live_price: Mapped[int | None] = mapped_column(sa.BigInteger)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    live_quota: Mapped[int | None]
    # Units placed at the live price and not given back by a cancellation: moved by a conditional UPDATE at
    # placement (never past live_quota) and back on cancellation (mall/live/pricing.py, ADR 0018).
    live_sold: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))

    room: Mapped[LiveRoom] = relationship(back_populates="items")


class PinSegment(Base):
    """The time a lineup item was pinned: [started_at, ended_at), open while ended_at is NULL. A room's segments
    never overlap: one open segment per room (a partial unique index, both backends) and, on PostgreSQL, an
    exclusion constraint over the time ranges (migration 0019_live_rooms, when btree_gist is available)."""

    __tablename__ = "live_pin_segments"
    __table_args__ = (
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ordered"),
        sa.Index("ix_live_pin_segments_room", "room_id", "started_at"),
        sa.Index("ix_live_pin_segments_open", "room_id", unique=True, postgresql_where=OPEN, sqlite_where=OPEN),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(sa.ForeignKey("live_rooms.id"))
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("live_lineup_items.id"), index=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"))
    sku_id: Mapped[int | None] = mapped_column(sa.ForeignKey("skus.id"))
    pinned_by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # Milliseconds into the stream, when the player reports them: a replay seeks to them.
    start_offset_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    end_offset_ms: Mapped[int | None] = mapped_column(sa.BigInteger)


class LiveLink(Timestamped, Base):
    """A cart link (购物链接) for one lineup item of a room, optionally one SKU, made by the room's host or its
    brand's admin. It is shared as a signed token (mall/live/links.py) naming the link and its room; opening it
    before `expires_at` puts the product in the shopper's cart with the room's LIVE source."""

    __tablename__ = "live_links"
    __table_args__ = (sa.Index("ix_live_links_room", "room_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(sa.ForeignKey("live_rooms.id"))
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("live_lineup_items.id"))
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"))
    sku_id: Mapped[int | None] = mapped_column(sa.ForeignKey("skus.id"))
    created_by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    expires_at: Mapped[datetime]


class LiveFlashDeal(Base):
    """A flash deal announced in a room for one lineup item: a flash sale (mall/promotions/flash_sale) that
    starts after a countdown and runs a few minutes, bought through the flash sale's own admission."""

    __tablename__ = "live_flash_deals"
    __table_args__ = (sa.Index("ix_live_flash_deals_room", "room_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(sa.ForeignKey("live_rooms.id"))
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("live_lineup_items.id"))
    sale_id: Mapped[int] = mapped_column(sa.ForeignKey("flash_sales.id"), unique=True)
    flash_item_id: Mapped[int] = mapped_column(sa.ForeignKey("flash_items.id"))
    created_by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]


class RoomCoupon(Base):
    """A coupon template of the room's brand pinned to the room: claimable only through the room, while it is
    live (the template is marked `auto_grant = 'live_room'`, so the ordinary claim refuses it)."""

    __tablename__ = "live_room_coupons"

    template_id: Mapped[int] = mapped_column(sa.ForeignKey("coupon_templates.id"), primary_key=True)
    room_id: Mapped[int] = mapped_column(sa.ForeignKey("live_rooms.id"), index=True)
    pinned_by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    pinned_at: Mapped[datetime]
