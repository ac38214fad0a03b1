from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base, Timestamped


class ShippingPolicy(Timestamped, Base):
    """A brand's flat shipping fee, waived when the brand's part of the order reaches `free_above`."""

    __tablename__ = "shipping_policies"
    __table_args__ = (sa.CheckConstraint("fee >= 0 AND (free_above IS NULL OR free_above >= 0)", name="amounts"),)

    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"), primary_key=True)
    fee: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    free_above: Mapped[int | None] = mapped_column(sa.BigInteger)
