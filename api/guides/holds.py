"""Commission holds (ADR 0024): a brand admin's hold thresholds and guide-owned coupons, the held entries and their
review (release or void)."""

from __future__ import annotations

from api.auth import MallBlueprint, acting_brand, current_actor
from api.extensions import db
from api.guides.hold_schemas import (
    BrandArgs,
    GuideCouponSchema,
    GuideHeldEntrySchema,
    HeldArgs,
    HeldEntrySchema,
    HoldSettingsSchema,
    ReviewedSchema,
    ReviewSchema,
)
from api.tx import commit, read_only
from mall.guides import hold_admin, hold_review
from mall.identity.roles import MERCHANT, Role

blp = MallBlueprint("guide_holds", __name__, description="Guides (导购): commission fraud holds and their review")

_CODE = "guides.brand_required"


@blp.get("/admin/guides/commission/hold-settings")
@blp.auth(*MERCHANT)
@blp.arguments(BrandArgs, location="query")
@blp.response(200, HoldSettingsSchema)
def get_settings(args):
    """The brand's hold thresholds (the defaults until changed)."""
    read_only()
    brand_id = acting_brand(args["brand_id"], code=_CODE)
    return hold_admin.get_thresholds(db.session, actor=current_actor(), brand_id=brand_id)


@blp.put("/admin/guides/commission/hold-settings")
@blp.auth(*MERCHANT)
@blp.arguments(HoldSettingsSchema)
@blp.response(200, HoldSettingsSchema)
def set_settings(body):
    """Change some thresholds (the others kept; 0 turns a rule off), in force for orders paid from now."""
    brand_id = acting_brand(body.pop("brand_id"), code=_CODE)
    limits = hold_admin.set_thresholds(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return limits


@blp.post("/admin/guides/<int:guide_id>/coupons")
@blp.auth(*MERCHANT)
@blp.arguments(GuideCouponSchema)
@blp.response(201, GuideCouponSchema)
def own_coupon(body, guide_id):
    """Make a coupon template of the brand this guide's own (导购专属券): its spread beyond the guide's customers is
    watched. 422 guides.coupon_unknown, 409 guides.coupon_owned (another guide's)."""
    owned = hold_admin.own_coupon(db.session, actor=current_actor(), guide_id=guide_id, **body)
    commit()
    return owned


@blp.get("/admin/guides/<int:guide_id>/coupons")
@blp.auth(*MERCHANT)
@blp.response(200, GuideCouponSchema(many=True))
def guide_coupons(guide_id):
    read_only()
    return hold_admin.guide_coupons(db.session, actor=current_actor(), guide_id=guide_id)


def _entries(entries) -> list[dict]:
    """Entries as a brand admin sees them: the hold's reason and the latest review."""
    latest = hold_review.reviews(db.session, entry_ids=[e.id for e in entries])
    return [{**{c: getattr(e, c) for c in _SHOWN}, "hold": (e.reason or {}).get("hold"), "review": latest.get(e.id)}
            for e in entries]  # fmt: skip


_SHOWN = ("id", "guide_id", "brand_id", "kind", "state", "amount", "currency", "order_id", "sub_order_id",
          "order_line_id", "created_at")  # fmt: skip


@blp.get("/admin/guides/commission/holds")
@blp.auth(*MERCHANT)
@blp.arguments(HeldArgs, location="query")
@blp.response(200, HeldEntrySchema(many=True))
def held(args):
    """The brand's commission entries on hold, newest first, each with why (rule, match, evidence)."""
    read_only()
    brand_id = acting_brand(args.pop("brand_id"), code=_CODE)
    return _entries(hold_review.held(db.session, actor=current_actor(), brand_id=brand_id, **args))


def _review(body, action: str) -> dict:
    done = hold_review.review(db.session, actor=current_actor(), action=action, **body)
    commit()
    return {**done, "entries": _entries(done["entries"])}


@blp.post("/admin/guides/commission/holds/release")
@blp.auth(*MERCHANT)
@blp.arguments(ReviewSchema)
@blp.response(200, ReviewedSchema)
def release(body):
    """Release held entries: pending again, or available if the sub-order has settled. Again: nothing changes;
    404 guides.entry_not_found (not the brand's), 409 guides.hold_decided (voided), guides.entry_not_held."""
    return _review(body, "release")


@blp.post("/admin/guides/commission/holds/void")
@blp.auth(*MERCHANT)
@blp.arguments(ReviewSchema)
@blp.response(200, ReviewedSchema)
def void(body):
    """Void held entries: their amount leaves the guide's balance. Again: nothing changes; 409
    guides.hold_decided (released), guides.entry_not_held; 404 guides.entry_not_found."""
    return _review(body, "void")


@blp.get("/guide/commission/holds")
@blp.auth(Role.GUIDE)
@blp.response(200, GuideHeldEntrySchema(many=True))
def my_held():
    """My commission entries under review (the reason is neutral: under review)."""
    read_only()
    return hold_review.my_held(db.session, actor=current_actor())
