"""What live attribution records besides the order lines: room visits (for viewers and the viewing session),
cart adds that came from a room (for the numbers' cart adds), and each brand's attribution windows."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base

DIRECT_WINDOW = timedelta(minutes=30)  # the viewing session: a line placed this soon after a link or a visit
INDIRECT_WINDOW = timedelta(days=7)  # later than that, but this soon: indirect; later still: no touch


class RoomVisit(Base):
    """A shopper opened a room (the mini-program calls it when the room opens). A second visit of the same
    shopper to the same room within VISIT_DEDUPE is not written (mall.live.attribution.record_visit)."""

    __tablename__ = "live_room_visits"
    __table_args__ = (
        # the shopper's latest visit to a room (placement), and a room's distinct viewers in a time range (numbers)
        sa.Index("ix_live_room_visits_user_room", "user_id", "room_id", "visited_at"),
        sa.Index("ix_live_room_visits_room", "room_id", "visited_at", "user_id"),
        sa.Index("ix_live_room_visits_at", "visited_at"),  # retention (mall/retention.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(sa.ForeignKey("live_rooms.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    visited_at: Mapped[datetime]


class LiveCartAdd(Base):
    """One add to the cart with a live source (a cart link opened, or an add carrying its token): written by the
    cart's add in the same transaction, so the numbers' cart adds are exact and survive the cart line being
    merged, ordered or removed. Room and segment are the source's."""

    __tablename__ = "live_cart_adds"
    __table_args__ = (sa.Index("ix_live_cart_adds_room", "room_id", "segment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int]  # from a signed source: not a foreign key (ADR 0017)
    segment_id: Mapped[int | None]
    link_id: Mapped[int | None]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    sku_id: Mapped[int | None]
    bundle_id: Mapped[int | None]
    quantity: Mapped[int]
    created_at: Mapped[datetime]


class LiveSettings(Base):
    """A brand's attribution windows, in seconds; a brand without a row has the defaults."""

    __tablename__ = "live_brand_settings"
    __table_args__ = (
        sa.CheckConstraint("direct_window_s > 0 AND indirect_window_s >= direct_window_s", name="windows"),
    )

    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"), primary_key=True)
    direct_window_s: Mapped[int] = mapped_column(default=int(DIRECT_WINDOW.total_seconds()))
    indirect_window_s: Mapped[int] = mapped_column(default=int(INDIRECT_WINDOW.total_seconds()))
    updated_at: Mapped[datetime]
