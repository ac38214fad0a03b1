"""A coupon's life with an order: locked at placement, used at payment, back (or expired) on cancel.

These run as reactions inside the order's own transaction. Locking is a conditional UPDATE on
`status = 'available'`: of concurrent orders using one coupon, exactly one gets it. The others are told
what the quote would have told them had they come a moment later: 422 `coupon.not_available` (one
condition, one code, whichever step noticed it first; see ADR 0006).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.errors import Invalid
from mall.events import DomainEvent
from mall.notifications import guards
from mall.promotions.coupons.models import Coupon


def lock(session: Session, event: DomainEvent) -> None:
    ids = event.payload.get("coupon_ids") or []
    if not ids:
        return
    from mall.orders.models import Order

    user_id = session.scalar(sa.select(Order.user_id).where(Order.id == event.aggregate_id))
    locked = session.execute(
        sa.update(Coupon)
        .where(Coupon.id.in_(ids), Coupon.user_id == user_id, Coupon.status == "available")
        .values(status="locked", order_id=event.aggregate_id),
        execution_options={"synchronize_session": False},
    )
    if locked.rowcount != len(ids):
        raise not_available(sorted(ids))


def not_available(coupon_ids) -> Invalid:
    """A named coupon is not this shopper's to use now: unknown, another's, already used, or locked by another
    order, whether the quote saw it so or lost the race to lock it at placement (same code, same status)."""
    ids = ", ".join(map(str, coupon_ids))
    return Invalid("coupon.not_available", f"Coupon {ids} is not available to you now.", field="coupon_ids")


# Built once (a statement built per payment cost more Python than PostgreSQL spent running it).
_USE = (
    sa.update(Coupon.__table__)
    .where(Coupon.order_id == sa.bindparam("_order"), Coupon.status == "locked")
    .values(status="used", used_at=sa.bindparam("_now"))
)


def use(session: Session, event: DomainEvent) -> None:
    session.execute(_USE, {"_order": event.aggregate_id, "_now": clock.now()})


def release(session: Session, event: DomainEvent) -> None:
    """Cancelled or timed out: back to available, or expired if the window closed meanwhile."""
    now = clock.now()
    session.execute(
        sa.update(Coupon).where(Coupon.order_id == event.aggregate_id, Coupon.status == "locked")
        .values(status=sa.case((Coupon.valid_until <= now, "expired"), else_="available"), order_id=None),
        execution_options={"synchronize_session": False},
    )  # fmt: skip


def expire_due(session: Session) -> int:
    result = session.execute(
        sa.update(Coupon)
        .where(Coupon.status == "available", Coupon.valid_until <= clock.now())
        .values(status="expired"),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount


def _unused(session: Session, user_id: int, guard: dict) -> bool:
    status = session.scalar(sa.select(Coupon.status).where(Coupon.id == guard["coupon_id"]))
    return status == "available"


def install() -> None:
    events.react("order.placed", lock)
    events.react("order.paid", use)
    events.react("order.cancelled", release)
    guards.register("coupon_unused", _unused)


def return_after_full_refund(session: Session, event: DomainEvent) -> None:
    """A fully refunded order gives its coupons back if still valid. Installed only when the deployment
    chose to (COUPON_RETURN_ON_FULL_REFUND); by default a refunded order's coupons stay used."""
    now = clock.now()
    session.execute(
        sa.update(Coupon).where(Coupon.order_id == event.aggregate_id, Coupon.status == "used", Coupon.valid_until > now)
        .values(status="available", order_id=None, used_at=None),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
