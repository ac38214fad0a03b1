"""Lucky bags (福袋): a room's prize draw with a committed seed, its entrants and the prizes it gave."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base, Timestamped

OPEN = sa.text("status = 'open'")


class LuckyBag(Timestamped, Base):
    """One draw of a live room. `seed_hash` (SHA-256 of the seed) is published from creation, the seed itself
    only once drawn. At most one open bag per room (a partial unique index, both backends)."""

    __tablename__ = "live_lucky_bags"
    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'drawn', 'cancelled')", name="status"),
        sa.CheckConstraint("prize_type IN ('coupon', 'gift')", name="prize_type"),
        sa.CheckConstraint("(prize_type = 'coupon') = (coupon_template_id IS NOT NULL)", name="coupon_prize"),
        sa.CheckConstraint("(prize_type = 'gift') = (gift_sku_id IS NOT NULL)", name="gift_prize"),
        sa.CheckConstraint("winner_count > 0", name="winner_count"),
        sa.CheckConstraint("closes_at > opens_at", name="window"),
        sa.CheckConstraint("entry_condition IN ('in_room', 'followed_link')", name="entry_condition"),
        sa.Index("ix_live_lucky_bags_room", "room_id", "id"),
        sa.Index("ix_live_lucky_bags_open", "room_id", unique=True, postgresql_where=OPEN, sqlite_where=OPEN),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(sa.ForeignKey("live_rooms.id"))
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    created_by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(sa.String(100))
    prize_type: Mapped[str] = mapped_column(sa.String(8))  # coupon | gift
    coupon_template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("coupon_templates.id"))
    gift_sku_id: Mapped[int | None] = mapped_column(sa.ForeignKey("skus.id"))
    winner_count: Mapped[int]
    entry_condition: Mapped[str] = mapped_column(sa.String(16), default="in_room")  # in_room | followed_link
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    seed_hash: Mapped[str] = mapped_column(sa.String(64))  # hex SHA-256 of the seed's 32 bytes, the commitment
    seed: Mapped[str] = mapped_column(sa.String(64))  # hex; secret until the draw
    entrant_count: Mapped[int] = mapped_column(default=0)
    drawn_at: Mapped[datetime | None]
    prizes_awarded: Mapped[int | None]  # winners at the draw: min(winner_count, entrants, gift stock)


class LuckyBagEntry(Base):
    """A shopper in the draw; the entries of a drawn bag are its snapshot (no entry is taken once drawn)."""

    __tablename__ = "live_lucky_bag_entries"
    __table_args__ = (sa.UniqueConstraint("bag_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bag_id: Mapped[int] = mapped_column(sa.ForeignKey("live_lucky_bags.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    entered_at: Mapped[datetime]


class LuckyBagPrize(Base):
    """A winner's prize. Coupon: `granted` (with the coupon) or `not_granted` (the template's limits said no).
    Gift: `reserved` (one unit of stock held) until `claim_by`, then `claimed` (with the zero-priced order) or
    `released` (the stock given back by the sweep)."""

    __tablename__ = "live_lucky_bag_prizes"
    __table_args__ = (
        sa.UniqueConstraint("bag_id", "user_id"),
        sa.CheckConstraint("status IN ('granted', 'not_granted', 'reserved', 'claimed', 'released')", name="status"),
        sa.Index("ix_live_lucky_bag_prizes_due", "status", "claim_by"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bag_id: Mapped[int] = mapped_column(sa.ForeignKey("live_lucky_bags.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    rank: Mapped[int]  # 1-based place in the draw's ranking
    status: Mapped[str] = mapped_column(sa.String(12))
    coupon_id: Mapped[int | None] = mapped_column(sa.ForeignKey("coupons.id"))
    sku_id: Mapped[int | None] = mapped_column(sa.ForeignKey("skus.id"))
    claim_by: Mapped[datetime | None]
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"))
    settled_at: Mapped[datetime | None]  # claimed or released
