"""Abandoned-cart nudges: carts with lines, idle past a threshold, nudged at most once per version
per stage. Candidates come from one indexed query; the (cart, version, stage) row is the claim
that keeps two sweepers from nudging the same cart twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from mall import clock
from mall.cart.models import Cart, CartLine
from mall.catalog.models import Bundle, Product, Sku
from mall.db import Base, insert_on_conflict
from mall.notifications.services import notify

# Optional: the coupon capability registers a function granting a recovery coupon; returns its id.
recovery_coupon: Callable[[Session, int, int], int | None] | None = None


class CartNudge(Base):
    __tablename__ = "cart_nudges"
    __table_args__ = (
        sa.UniqueConstraint("cart_id", "version", "stage"),
        sa.Index("ix_cart_nudges_created", "created_at"),  # retention (mall/retention.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(sa.ForeignKey("carts.id", ondelete="CASCADE"))
    version: Mapped[int]
    stage: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


def abandoned_carts(session: Session, *, idle: timedelta, until: timedelta, stage: int, limit: int = 1000):
    """Carts idle for at least `idle` but less than `until` (older ones are past this stage), with
    lines, not yet nudged at this stage for their current version."""
    now = clock.now()
    nudged = sa.exists().where(CartNudge.cart_id == Cart.id, CartNudge.version == Cart.version,
                               CartNudge.stage == stage)  # fmt: skip
    query = (
        sa.select(Cart.id, Cart.user_id, Cart.version)
        .where(
            sa.text("carts.line_count > 0"), Cart.last_activity_at <= now - idle, Cart.last_activity_at > now - until
        )
        .where(~nudged)
        .order_by(Cart.last_activity_at)
        .limit(limit)
    )
    return session.execute(query).all()


def nudge(session: Session, *, cart_id: int, user_id: int, version: int, stage: int) -> bool:
    """Claim (cart, version, stage) and queue the message naming the lines. False if already claimed,
    or if the cart moved on (changed, emptied, ordered from) since it was found."""
    current = session.execute(sa.select(Cart.version, Cart.line_count).where(Cart.id == cart_id)).first()
    if current is None or current.version != version or current.line_count <= 0:
        return False
    if not insert_on_conflict(session, CartNudge.__table__, index_elements=["cart_id", "version", "stage"],
                              values={"cart_id": cart_id, "version": version, "stage": stage,
                                      "created_at": clock.now()}):  # fmt: skip
        return False
    lines = session.execute(_NUDGE_LINES, {"_cart": cart_id}).all()
    payload = {"cart_id": cart_id, "stage": stage, "lines": [{"title": t, "quantity": q} for t, q in lines]}
    coupon_id = recovery_coupon(session, user_id, cart_id) if recovery_coupon is not None else None
    if coupon_id is not None:
        payload["coupon_id"] = coupon_id
    notify(session, user_id=user_id, template_key="cart.abandoned", dedupe_key=f"cart-{cart_id}-v{version}-s{stage}",
           payload=payload, guard={"type": "cart_unchanged", "cart_id": cart_id, "version": version})  # fmt: skip
    return True


# The cart's lines by title: a SKU's product, or a bundle's own title. Built once.
_NUDGE_LINES = (
    sa.select(sa.func.coalesce(Product.title, Bundle.title), CartLine.quantity)
    .outerjoin(Sku, Sku.id == CartLine.sku_id).outerjoin(Product, Product.id == Sku.product_id)
    .outerjoin(Bundle, Bundle.id == CartLine.bundle_id)
    .where(CartLine.cart_id == sa.bindparam("_cart")).order_by(CartLine.id)
)  # fmt: skip


def stage_windows(hours: tuple[int, ...]) -> list[tuple[int, timedelta, timedelta]]:
    """(stage, idle, until) per configured threshold: stage n applies until stage n+1's threshold
    (the last one for two days more)."""
    bounds = [timedelta(hours=h) for h in hours]
    return [
        (stage, idle, bounds[stage] if stage < len(bounds) else idle + timedelta(days=2))
        for stage, idle in enumerate(bounds, start=1)
    ]
