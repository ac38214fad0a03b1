"""Coupon templates and issuing: claims, automatic and staff grants, never past the limits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import audit, clock, events
from mall.catalog.models import Brand
from mall.db import insert_on_conflict
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity.models import User
from mall.identity.roles import Actor, Role
from mall.notifications.services import notify
from mall.promotions.coupons.models import ROOM_ONLY, Coupon, CouponTemplate

# Hooks the composition root fills (workers/composition.py), never configuration read from here:
# what runs when a coupon is issued (the expiry reminder, at the lead the settings give), and the
# shopper's tags for tag-targeted coupons and a member segment's clause on users.id for segment audiences and
# bulk grants (segment id, the template's brand id; raises if the brand may not use it) (the members capability).
ON_ISSUED: list[Callable[[Session, Coupon], None]] = []
tag_lookup: Callable[[Session, int], set[str]] | None = None
segment_audience: Callable[[Session, int, int | None], sa.ColumnElement[bool]] | None = None


def create_template(session: Session, *, actor: Actor, brand_id: int | None, **fields) -> CouponTemplate:
    """Brand admins make their brand's coupons; platform admins make platform (brand_id None) or any."""
    if not (actor.role == Role.PLATFORM_ADMIN or (actor.role == Role.BRAND_ADMIN and brand_id == actor.brand_id)):
        raise Forbidden("coupon.template_forbidden", "You may not create coupons for this brand.")
    if brand_id is not None and session.get(Brand, brand_id) is None:
        raise Invalid("coupon.brand_unknown", f"Brand {brand_id} does not exist.", field="brand_id")
    fields.setdefault("funded_by", "platform" if brand_id is None else "brand")
    if fields["funded_by"] == "platform" and actor.role != Role.PLATFORM_ADMIN:
        raise Forbidden("coupon.funding_forbidden", "Only the platform decides to fund a coupon itself.")
    if fields["funded_by"] == "brand" and brand_id is None:
        raise Invalid("coupon.funding_invalid", "A platform coupon has no brand to fund it.", field="funded_by")
    _check_template(fields)
    if fields.get("audience") == "segment":
        segment_clause(session, fields.get("audience_segment_id"), brand_id)
    template = CouponTemplate(brand_id=brand_id, **fields)
    session.add(template)
    session.flush()
    events.record(session, "coupon_template.created", aggregate="coupon_template", aggregate_id=template.id,
                  actor=actor)  # fmt: skip
    return template


def _check_template(f: dict) -> None:
    kind = f["value_type"]
    if kind in ("fixed", "threshold") and f.get("amount", 0) <= 0:
        raise Invalid("coupon.amount_required", "Fixed and threshold coupons take an amount off.", field="amount")
    if kind == "threshold" and f.get("threshold", 0) <= f.get("amount", 0):
        raise Invalid("coupon.threshold_too_low", "Spend X get Y off needs X above Y.", field="threshold")
    if kind == "percent" and not 0 < f.get("percent_bp", 0) < 10_000:
        raise Invalid("coupon.percent_invalid", "Percent off is 1-9999 basis points.", field="percent_bp")
    if (f.get("valid_days") is None) == (f.get("valid_until") is None):
        raise Invalid("coupon.validity", "Give either valid_until (a window) or valid_days (from claim).",
                      field="valid_until")  # fmt: skip
    if f.get("valid_until") and f.get("valid_from") and f["valid_until"] <= f["valid_from"]:
        raise Invalid("coupon.validity", "valid_until must be after valid_from.", field="valid_until")
    if f.get("scope_type", "mall") != "mall" and not f.get("scope_ids"):
        raise Invalid(
            "coupon.scope_ids_required", "Name the brands, categories or products in scope.", field="scope_ids"
        )


def segment_clause(session: Session, segment_id: int | None, brand_id: int | None) -> sa.ColumnElement[bool]:
    """The members of a segment this brand (None: the platform) may target, as a clause on users.id."""
    if segment_id is None or segment_audience is None:
        raise Invalid("coupon.segment_unknown", "Name the member segment.", field="audience_segment_id")
    return segment_audience(session, segment_id, brand_id)


def get_template(session: Session, template_id: int) -> CouponTemplate:
    template = session.get(CouponTemplate, template_id)
    if template is None:
        raise NotFound("coupon.template_not_found", f"Coupon template {template_id} not found.")
    return template


def set_template_status(session: Session, *, actor: Actor, template_id: int, status: str) -> CouponTemplate:
    template = get_template(session, template_id)
    if not (actor.role == Role.PLATFORM_ADMIN or (template.brand_id and actor.can_manage_brand(template.brand_id))):
        raise Forbidden("coupon.template_forbidden", "Not your coupon template.")
    template.status = status
    session.flush()
    return template


def list_templates(session: Session, *, brand_id: int | None = None, claimable: bool = False):
    query = sa.select(CouponTemplate).order_by(CouponTemplate.id)
    if brand_id is not None:
        query = query.where(CouponTemplate.brand_id == brand_id)
    if claimable:
        now = clock.now()
        open_window = sa.or_(CouponTemplate.valid_until.is_(None), CouponTemplate.valid_until > now)
        opened = sa.or_(CouponTemplate.valid_days.is_(None), CouponTemplate.valid_from.is_(None),
                        CouponTemplate.valid_from <= now)  # fmt: skip
        query = query.where(CouponTemplate.status == "active", CouponTemplate.auto_grant.is_(None), open_window, opened)
    return list(session.scalars(query))


def claim(session: Session, *, template_id: int, user_id: int) -> Coupon:
    template = get_template(session, template_id)
    if template.auto_grant == ROOM_ONLY:
        raise Forbidden("coupon.not_claimable", "This coupon is claimed in its live room, while the room is live.")
    if template.auto_grant is not None:
        raise Forbidden("coupon.not_claimable", "This coupon is granted automatically, not claimed.")
    return issue(session, template=template, user_id=user_id, source="claim")


def staff_grant(session: Session, *, actor: Actor, template_id: int, user_id: int) -> Coupon:
    """Guides (导购) and hosts hand out their brand's coupons; admins any they manage."""
    template = get_template(session, template_id)
    brand_staff = (
        actor.role in (Role.GUIDE, Role.HOST, Role.BRAND_ADMIN)
        and actor.brand_id is not None
        and actor.brand_id == template.brand_id
    )  # staff of no brand are not the platform's staff
    if not (brand_staff or actor.role == Role.PLATFORM_ADMIN):
        raise Forbidden("coupon.grant_forbidden", "You may only hand out your own brand's coupons.")
    source = {Role.GUIDE: "guide", Role.HOST: "live"}.get(actor.role, "staff")
    coupon = issue(session, template=template, user_id=user_id, source=source)
    audit.record(session, action="coupon.granted", object_type="coupon", object_id=coupon.id,
                 brand_id=template.brand_id, before=None, after={"template_id": template.id, "user_id": user_id})  # fmt: skip
    return coupon


def issue(session: Session, *, template: CouponTemplate, user_id: int, source: str, grant_ref: str | None = None,
          strict: bool = True) -> Coupon | None:  # fmt: skip
    """Give one coupon. Never past the total quantity (conditional update) nor the per-shopper limit
    (unique claim_seq). `strict=False` (automatic grants inside other changes) returns None instead of raising."""
    try:
        return _issue(session, template, user_id, source, grant_ref)
    except (Conflict, Forbidden):
        if strict:
            raise
        return None


def _issue(session: Session, template: CouponTemplate, user_id: int, source: str, grant_ref: str | None):
    now = clock.now()
    ensure_issuing(template)
    _check_audience(session, template, user_id)
    held = _held(session, template.id, user_id)
    # An automatic grant happens once per grant ref (sign-up, each year's birthday, each cart): that is
    # its limit. Counting every coupon ever held would end birthday coupons after the first year.
    automatic = grant_ref is not None and source == template.auto_grant  # not e.g. a bulk grant of this template
    if automatic and session.scalar(sa.select(Coupon.id).filter_by(template_id=template.id, user_id=user_id,
                                                                   grant_ref=grant_ref)) is not None:  # fmt: skip
        raise Conflict("coupon.limit_reached", "This coupon was already granted to you.")
    if held >= template.per_shopper_limit and not automatic:
        raise Conflict("coupon.limit_reached", "You already hold as many of these as allowed.")
    if not _take_one(session, template):
        raise Conflict("coupon.sold_out", "All of these coupons have been given out.")
    # _take_one's UPDATE holds the template row until commit, so issues of this template queue there: count
    # again now to see what the ones before us committed (else racing claims all take claim_seq 1 and a
    # shopper allowed 3 gets 1, the others told the limit is reached).
    held = _held(session, template.id, user_id)
    if held >= template.per_shopper_limit and not automatic:
        _give_back_one(session, template)
        raise Conflict("coupon.limit_reached", "You already hold as many of these as allowed.")
    valid_from = template.valid_from or now if template.valid_days is None else now
    valid_until = template.valid_until if template.valid_days is None else now + timedelta(days=template.valid_days)
    values = {"template_id": template.id, "user_id": user_id, "claim_seq": held + 1, "status": "available",
              "valid_from": valid_from, "valid_until": valid_until, "source": source,
              "grant_ref": grant_ref or f"{source}-{held + 1}", "claimed_at": now}  # fmt: skip
    if not insert_on_conflict(session, Coupon.__table__, values=values, index_elements=None):
        _give_back_one(session, template)  # a concurrent claim took this seq (or this grant happened already)
        raise Conflict("coupon.limit_reached", "You already hold as many of these as allowed.")
    coupon = session.scalar(sa.select(Coupon).filter_by(template_id=template.id, user_id=user_id, claim_seq=held + 1))
    for hook in ON_ISSUED:
        hook(session, coupon)
    return coupon


def _held(session: Session, template_id: int, user_id: int) -> int:
    query = sa.select(sa.func.count()).select_from(Coupon).filter_by(template_id=template_id, user_id=user_id)
    return session.scalar(query)


def ensure_issuing(template: CouponTemplate) -> None:
    """Active, its window not over, and, for a coupon valid N days from claim, claiming open (valid_from).
    A fixed-window coupon may be claimed before its window starts (it shows as not_started meanwhile)."""
    now = clock.now()
    if template.status != "active" or (template.valid_until is not None and template.valid_until <= now):
        raise Conflict("coupon.not_issuing", "This coupon is not being given out.")
    if template.valid_days is not None and template.valid_from is not None and template.valid_from > now:
        raise Conflict("coupon.not_issuing", "This coupon is not being given out yet.")


def _take_one(session: Session, template: CouponTemplate) -> bool:
    taken = session.execute(
        sa.update(CouponTemplate)
        .where(CouponTemplate.id == template.id)
        .where(
            sa.or_(CouponTemplate.total_quantity.is_(None), CouponTemplate.issued_count < CouponTemplate.total_quantity)
        )
        .values(issued_count=CouponTemplate.issued_count + 1),
        execution_options={"synchronize_session": False},
    )
    return taken.rowcount == 1


def _give_back_one(session: Session, template: CouponTemplate) -> None:
    session.execute(sa.update(CouponTemplate).where(CouponTemplate.id == template.id)
                    .values(issued_count=CouponTemplate.issued_count - 1))  # fmt: skip


def _check_audience(session: Session, template: CouponTemplate, user_id: int) -> None:
    from mall.orders.models import Order

    user = session.get(User, user_id)
    if user is None or user.role != Role.SHOPPER:
        raise Forbidden("coupon.audience", "Coupons are for shoppers.")
    if template.audience == "new_shoppers":
        ordered = session.scalar(
            sa.select(Order.id).where(Order.user_id == user_id, Order.paid_at.is_not(None)).limit(1)
        )
        ok = ordered is None
    elif template.audience == "levels":
        ok = user.member_level in (template.audience_levels or [])
    elif template.audience == "tags":
        ok = tag_lookup is not None and bool(tag_lookup(session, user_id) & set(template.audience_tags or []))
    elif template.audience == "segment":
        clause = segment_clause(session, template.audience_segment_id, template.brand_id)
        ok = session.scalar(sa.select(User.id).where(User.id == user_id, clause)) is not None
    else:
        ok = True
    if not ok:
        raise Forbidden("coupon.audience", "This coupon is not offered to you.")


def remind_before_expiry(session: Session, coupon: Coupon, *, before: timedelta) -> None:
    """An ON_ISSUED hook: the `coupon.expiring` reminder, `before` the end, skipped if the coupon was used."""
    when = coupon.valid_until - before
    notify(session, user_id=coupon.user_id, template_key="coupon.expiring", dedupe_key=f"coupon-expiring-{coupon.id}",
           payload={"coupon_id": coupon.id, "name": coupon.template.name, "valid_until": coupon.valid_until.isoformat()},
           send_after=max(when, clock.now()), guard={"type": "coupon_unused", "coupon_id": coupon.id})  # fmt: skip


def my_coupons(session: Session, *, user_id: int, status: str | None = None) -> list[Coupon]:
    query = sa.select(Coupon).where(Coupon.user_id == user_id).order_by(Coupon.valid_until, Coupon.id)
    if status:
        query = query.where(Coupon.status == status)
    return list(session.scalars(query))
