from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall import clock
from mall.db import Base, JSONType, Timestamped

DEFAULT_COMBINABLE = ("member_price",)
ROOM_ONLY = "live_room"  # the `auto_grant` of a template pinned to a live room: claimed only there


class CouponTemplate(Timestamped, Base):
    """The rules of a coupon (优惠券模板). Instances shoppers hold are `Coupon` rows."""

    __tablename__ = "coupon_templates"
    __table_args__ = (
        sa.CheckConstraint("total_quantity IS NULL OR issued_count <= total_quantity", name="issued_within_total"),
        sa.CheckConstraint("amount >= 0 AND threshold >= 0 AND percent_bp BETWEEN 0 AND 10000", name="values"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int | None] = mapped_column(sa.ForeignKey("brands.id"), index=True)  # None: a platform coupon
    funded_by: Mapped[str] = mapped_column(sa.String(10))  # platform | brand (for settlement reports)
    name: Mapped[str] = mapped_column(sa.String(100))
    value_type: Mapped[str] = mapped_column(sa.String(16))  # fixed | threshold | percent | free_shipping
    amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # fixed/threshold: off, in minor units
    threshold: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # eligible spend needed (满)
    percent_bp: Mapped[int] = mapped_column(default=0)  # percent: basis points off (1000 = 10%)
    cap: Mapped[int | None] = mapped_column(sa.BigInteger)  # percent: at most this much off
    currency: Mapped[str] = mapped_column(sa.String(3))
    scope_type: Mapped[str] = mapped_column(sa.String(12), default="mall")  # mall | brand | categories | products
    scope_ids: Mapped[list] = mapped_column(JSONType, default=list)
    excluded_product_ids: Mapped[list] = mapped_column(JSONType, default=list)
    valid_from: Mapped[datetime | None]  # fixed window; also when claiming opens
    valid_until: Mapped[datetime | None]
    valid_days: Mapped[int | None]  # relative: N days from claim
    total_quantity: Mapped[int | None]
    issued_count: Mapped[int] = mapped_column(default=0)
    per_shopper_limit: Mapped[int] = mapped_column(default=1)
    # Promotion prices whose lines the coupon still applies to: flash_sale | group_buy | member_price | bundle | live.
    # By default not flash-sale or group-buy lines; member prices do take coupons.
    combinable_with: Mapped[list] = mapped_column(JSONType, default=lambda: list(DEFAULT_COMBINABLE))
    # anyone | new_shoppers | levels | tags | segment
    audience: Mapped[str] = mapped_column(sa.String(16), default="anyone")
    audience_levels: Mapped[list] = mapped_column(JSONType, default=list)
    audience_tags: Mapped[list] = mapped_column(JSONType, default=list)
    audience_segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("member_segments.id"))  # ADR 0028
    auto_grant: Mapped[str | None] = mapped_column(sa.String(16), index=True)  # signup | birthday | cart_recovery
    status: Mapped[str] = mapped_column(sa.String(10), default="active")  # active | paused | ended


class Coupon(Base):
    """A coupon a shopper holds. `claim_seq` (1..per_shopper_limit) is unique per shopper and template,
    so the per-shopper limit holds under concurrent claims."""

    __tablename__ = "coupons"
    __table_args__ = (
        sa.UniqueConstraint("template_id", "user_id", "claim_seq"),
        sa.Index("ix_coupons_holder", "user_id", "status", "valid_until"),
        sa.Index("ix_coupons_grant_ref", "template_id", "user_id", "grant_ref", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("coupon_templates.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    claim_seq: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(10), default="available")  # available|locked|used|expired|revoked
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    source: Mapped[str] = mapped_column(
        sa.String(16)
    )  # claim | signup | birthday | cart_recovery | live | guide | bulk
    grant_ref: Mapped[str] = mapped_column(sa.String(80))  # makes each automatic grant happen once
    claimed_at: Mapped[datetime] = mapped_column(default=clock.now)
    used_at: Mapped[datetime | None]

    template: Mapped[CouponTemplate] = relationship(lazy="joined")


class BulkGrant(Timestamped, Base):
    """Granting a template to a segment, done by a job in batches; `done`/`total` is the progress."""

    __tablename__ = "coupon_bulk_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("coupon_templates.id"))
    segment: Mapped[dict] = mapped_column(JSONType)  # {"user_ids": [...]} | {"min_level": 2} | {"segment_id": 3}
    status: Mapped[str] = mapped_column(sa.String(10), default="queued")  # queued | running | done
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    granted: Mapped[int] = mapped_column(default=0)
    last_user_id: Mapped[int] = mapped_column(default=0)
