"""Automatic grants (sign-up, birthday month, abandoned-cart recovery) and bulk grants to a segment."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.events import DomainEvent
from mall.identity.models import User
from mall.promotions.coupons.models import BulkGrant, Coupon, CouponTemplate
from mall.promotions.coupons.services import ensure_issuing, get_template, issue, segment_clause

BATCH = 500


def _auto_templates(session: Session, kind: str) -> list[CouponTemplate]:
    query = sa.select(CouponTemplate).filter_by(auto_grant=kind, status="active").order_by(CouponTemplate.id)
    return list(session.scalars(query))


def on_signed_up(session: Session, event: DomainEvent) -> None:
    for template in _auto_templates(session, "signup"):
        issue(session, template=template, user_id=event.aggregate_id, source="signup", grant_ref="signup", strict=False)


def birthday_month(session: Session) -> int:
    """Daily: shoppers in their birthday month get each birthday template once a year."""
    now = clock.now()
    shoppers = session.scalars(
        sa.select(User.id).where(User.role == "shopper", sa.extract("month", User.birthday) == now.month)
    ).all()
    made = 0
    for template in _auto_templates(session, "birthday"):
        for user_id in shoppers:
            made += bool(issue(session, template=template, user_id=user_id, source="birthday",
                               grant_ref=f"birthday-{now.year}", strict=False))  # fmt: skip
    return made


def cart_recovery(session: Session, user_id: int, cart_id: int) -> int | None:
    """The coupon an abandoned-cart nudge carries (plugged into mall.notifications.nudges)."""
    for template in _auto_templates(session, "cart_recovery"):
        coupon = issue(session, template=template, user_id=user_id, source="cart_recovery",
                       grant_ref=f"cart-{cart_id}", strict=False)  # fmt: skip
        if coupon is not None:
            return coupon.id
    return None


def start_bulk_grant(session: Session, *, actor, template_id: int, segment: dict) -> BulkGrant:
    from mall.promotions.coupons.services import set_template_status

    template = get_template(session, template_id)
    set_template_status(session, actor=actor, template_id=template_id, status=template.status)  # ownership check
    ensure_issuing(template)  # a paused or ended template would grant nothing: say so now, not after the job
    bulk = BulkGrant(template_id=template_id, segment=segment,
                     total=_segment(session, segment, count=True, brand_id=template.brand_id))  # fmt: skip
    session.add(bulk)
    session.flush()
    return bulk


def _segment(session: Session, segment: dict, *, count: bool = False, after: int = 0, limit: int | None = None,
             brand_id: int | None = None):  # fmt: skip
    query = sa.select(sa.func.count() if count else User.id).where(User.role == "shopper")
    if "segment_id" in segment:  # a member segment (ADR 0028), evaluated as it is at each batch
        query = query.where(segment_clause(session, segment["segment_id"], brand_id))
    if "user_ids" in segment:
        query = query.where(User.id.in_(segment["user_ids"]))
    if "min_level" in segment:
        query = query.where(User.member_level >= segment["min_level"])
    if count:
        return session.scalar(query)
    return list(session.scalars(query.where(User.id > after).order_by(User.id).limit(limit or BATCH)))


def run_bulk_batch(session: Session, *, bulk_id: int) -> bool:
    """Grant to the next batch of the segment; returns True when finished. Safe to re-run: each
    shopper's grant has the fixed ref `bulk-<id>`, so a repeated batch grants nothing twice."""
    # Claim the row with a write before reading it: a row lock on PostgreSQL, the write lock on SQLite (where
    # FOR UPDATE does nothing and two workers read the same progress, then each overwrote the other's).
    claimed = session.execute(
        sa.update(BulkGrant).where(BulkGrant.id == bulk_id, BulkGrant.status != "done").values(status="running"),
        execution_options={"synchronize_session": False},
    )
    if claimed.rowcount != 1:
        return True
    bulk = session.get(BulkGrant, bulk_id, populate_existing=True)
    template = get_template(session, bulk.template_id)
    users = _segment(session, bulk.segment, after=bulk.last_user_id, brand_id=template.brand_id)
    for user_id in users:
        coupon = issue(session, template=template, user_id=user_id, source="bulk", grant_ref=f"bulk-{bulk.id}",
                       strict=False)  # fmt: skip
        bulk.granted += coupon is not None
    bulk.done += len(users)
    bulk.last_user_id = users[-1] if users else bulk.last_user_id
    bulk.status = "running" if len(users) == BATCH else "done"
    return bulk.status == "done"


def held_count(session: Session, template_id: int) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Coupon).filter_by(template_id=template_id))
