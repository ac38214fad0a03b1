from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall import clock
from mall.db import Base, Timestamped


class GroupCampaign(Timestamped, Base):
    """A group-buy offer (拼团活动): a SKU at a group price once N shoppers have paid."""

    __tablename__ = "group_campaigns"
    __table_args__ = (
        sa.CheckConstraint("group_size BETWEEN 2 AND 50", name="group_size"),
        sa.CheckConstraint(
            "group_price >= 0 AND leader_discount >= 0 AND leader_discount <= group_price", name="prices"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"), index=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    group_price: Mapped[int] = mapped_column(sa.BigInteger)
    leader_discount: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # extra off for whoever opens a group
    group_size: Mapped[int]
    form_hours: Mapped[int] = mapped_column(default=24)
    per_shopper_limit: Mapped[int] = mapped_column(default=1)
    new_shoppers_only: Mapped[bool] = mapped_column(default=False)  # 老带新: joiners must never have paid an order
    complete_on_expiry: Mapped[bool] = mapped_column(default=False)  # explicit, and labelled on the group
    payment_minutes: Mapped[int] = mapped_column(default=15)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(10), default="active")


class Group(Base):
    """One group: forming until N members have paid (succeeded) or its time runs out (failed)."""

    __tablename__ = "groups"
    __table_args__ = (
        sa.CheckConstraint("paid_count <= seats_taken AND seats_taken <= group_size", name="seats"),
        sa.Index("ix_groups_forming_expiry", "expires_at", postgresql_where=sa.text("status = 'forming'"),
                 sqlite_where=sa.text("status = 'forming'")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("group_campaigns.id"), index=True)
    leader_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    group_size: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(12), default="opening")  # opening|forming|succeeded|failed
    seats_taken: Mapped[int] = mapped_column(default=1)  # members holding a seat (paid or within their payment window)
    paid_count: Mapped[int] = mapped_column(default=0)
    completed_on_expiry: Mapped[bool] = mapped_column(default=False)
    opened_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    members: Mapped[list[GroupMember]] = relationship(order_by="GroupMember.id")


class GroupMember(Base):
    __tablename__ = "group_members"
    __table_args__ = (sa.Index("ix_group_members_order", "order_id", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(sa.ForeignKey("groups.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"))
    is_leader: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(10), default="holding")  # holding|paid|left|refunded
    joined_at: Mapped[datetime] = mapped_column(default=clock.now)
