"""A brand admin's side of commission holds (ADR 0024): the brand's hold thresholds and the coupon templates its
guides own."""

from __future__ import annotations

from dataclasses import asdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.catalog.taxonomy import get_brand
from mall.errors import Conflict, Forbidden, Invalid
from mall.guides import holds
from mall.guides.hold_models import GuideCoupon
from mall.guides.services import managed_guide
from mall.identity.roles import Actor
from mall.promotions.coupons.models import CouponTemplate


def _brand(actor: Actor, brand_id: int) -> None:
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("guides.not_your_brand", "Only the brand's admin manages its guides.")


def get_thresholds(session: Session, *, actor: Actor, brand_id: int) -> dict:
    _brand(actor, brand_id)
    return {"brand_id": brand_id, **asdict(holds.thresholds(session, brand_id))}


def set_thresholds(session: Session, *, actor: Actor, brand_id: int, **changes) -> dict:
    """Change some of the brand's thresholds (0 turns a rule off); in force for orders paid from now."""
    _brand(actor, brand_id)
    get_brand(session, brand_id)  # a platform admin may name any id: an unknown brand is a 404, not a 500
    unknown = set(changes) - set(holds.NAMES)
    if unknown:
        raise Invalid("guides.hold_setting_unknown", f"No such hold setting: {', '.join(sorted(unknown))}.")
    limits = holds.set_thresholds(session, brand_id=brand_id, by=actor.user_id, **changes)
    events.record(session, "guide.hold_settings_changed", aggregate="brand", aggregate_id=brand_id, actor=actor,
                  **changes)  # fmt: skip
    return {"brand_id": brand_id, **asdict(limits)}


def own_coupon(session: Session, *, actor: Actor, guide_id: int, template_id: int) -> GuideCoupon:
    """Make a coupon template of the brand the guide's own (导购专属券). Again for the same guide: the same row;
    a template already another guide's: 409 guides.coupon_owned."""
    guide = managed_guide(session, actor=actor, guide_id=guide_id)
    template = session.get(CouponTemplate, template_id)
    if template is None or template.brand_id != guide.brand_id:
        raise Invalid("guides.coupon_unknown", f"Coupon template {template_id} is not your brand's.",
                      field="template_id")  # fmt: skip
    owned = session.get(GuideCoupon, template_id)
    if owned is None:
        owned = GuideCoupon(template_id=template_id, guide_id=guide.id, brand_id=guide.brand_id,
                            created_by=actor.user_id, created_at=clock.now())  # fmt: skip
        session.add(owned)
        session.flush()
    elif owned.guide_id != guide.id:
        raise Conflict("guides.coupon_owned", f"Coupon template {template_id} is another guide's.",
                       guide_id=owned.guide_id)  # fmt: skip
    return owned


def guide_coupons(session: Session, *, actor: Actor, guide_id: int) -> list[GuideCoupon]:
    guide = managed_guide(session, actor=actor, guide_id=guide_id)
    query = sa.select(GuideCoupon).where(GuideCoupon.guide_id == guide.id).order_by(GuideCoupon.template_id)
    return list(session.scalars(query))
