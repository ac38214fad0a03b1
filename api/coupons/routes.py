"""Coupons: templates (brand and platform admins), claiming and grants, the shopper's wallet."""

from __future__ import annotations

from api.auth import MallBlueprint, current_actor
from api.coupons.schemas import (
    BulkGrantSchema,
    CouponSchema,
    ListArgs,
    MyCouponArgs,
    SegmentSchema,
    StaffGrantSchema,
    StatusSchema,
    TemplateSchema,
)  # fmt: skip
from api.extensions import db
from api.idempotency import idempotent
from api.tx import commit
from mall.errors import Forbidden, NotFound
from mall.identity.roles import MERCHANT, Role
from mall.promotions.coupons import grants, services
from mall.promotions.coupons.models import BulkGrant
from workers import queues
from workers.jobs.coupons import run_bulk_grant

blp = MallBlueprint("coupons", __name__, description="Coupon templates, claims, grants and wallets")


@blp.post("/admin/coupon-templates")
@blp.auth(*MERCHANT)
@blp.arguments(TemplateSchema)
@blp.response(201, TemplateSchema)
def create_template(body):
    """Brand admins: their brand's coupons (brand_id defaults to theirs). Platform admins: platform coupons
    (no brand_id) or a brand's."""
    actor = current_actor()
    brand_id = body.pop("brand_id") or (actor.brand_id if actor.role == Role.BRAND_ADMIN else None)
    template = services.create_template(db.session, actor=actor, brand_id=brand_id, **body)
    commit()
    return template


@blp.get("/admin/coupon-templates")
@blp.auth(*MERCHANT)
@blp.arguments(ListArgs, location="query")
@blp.response(200, TemplateSchema(many=True))
def list_templates(args):
    actor = current_actor()
    brand_id = actor.brand_id if actor.role == Role.BRAND_ADMIN else args["brand_id"]
    return services.list_templates(db.session, brand_id=brand_id)


@blp.post("/admin/coupon-templates/<int:template_id>/status")
@blp.auth(*MERCHANT)
@blp.arguments(StatusSchema)
@blp.response(200, TemplateSchema)
def set_status(body, template_id):
    template = services.set_template_status(db.session, actor=current_actor(), template_id=template_id, **body)
    commit()
    return template


@blp.post("/admin/coupon-templates/<int:template_id>/bulk-grants")
@blp.auth(*MERCHANT)
@blp.arguments(SegmentSchema)
@blp.response(202, BulkGrantSchema)
def bulk_grant(body, template_id):
    """Grant to a segment in the background; poll the returned grant for progress."""
    bulk = grants.start_bulk_grant(db.session, actor=current_actor(), template_id=template_id, segment=body)
    commit()
    queues.enqueue(run_bulk_grant, bulk.id, queue_name=queues.LOW, job_id=f"bulk-grant-{bulk.id}")
    return bulk


@blp.get("/admin/coupon-bulk-grants/<int:bulk_id>")
@blp.auth(*MERCHANT)
@blp.response(200, BulkGrantSchema)
def bulk_grant_progress(bulk_id):
    bulk = db.session.get(BulkGrant, bulk_id)
    if bulk is None:
        raise NotFound("coupon.bulk_grant_not_found", f"Bulk grant {bulk_id} not found.")
    template = services.get_template(db.session, bulk.template_id)
    actor = current_actor()
    if not (actor.role == Role.PLATFORM_ADMIN or (template.brand_id and actor.can_manage_brand(template.brand_id))):
        raise Forbidden("coupon.template_forbidden", "Not your coupon template.")
    return bulk


@blp.get("/coupon-templates")
@blp.arguments(ListArgs, location="query")
@blp.response(200, TemplateSchema(many=True))
def claimable(args):
    """Coupons shoppers can claim now (public)."""
    return services.list_templates(db.session, brand_id=args["brand_id"], claimable=True)


@blp.post("/coupons/<int:template_id>/claim")
@blp.auth(Role.SHOPPER)
@idempotent("coupons.claim")
@blp.response(201, CouponSchema)
def claim(template_id):
    """Needs an `Idempotency-Key`. Never past the total quantity or your per-shopper limit."""
    return services.claim(db.session, template_id=template_id, user_id=current_actor().user_id)


@blp.post("/coupon-templates/<int:template_id>/grants")
@blp.auth(Role.GUIDE, Role.HOST, Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)
@blp.arguments(StaffGrantSchema)
@blp.response(201, CouponSchema)
def staff_grant(body, template_id):
    """A guide (导购) or live host hands one of their brand's coupons to a shopper."""
    coupon = services.staff_grant(db.session, actor=current_actor(), template_id=template_id, **body)
    commit()
    return coupon


@blp.get("/me/coupons")
@blp.auth(Role.SHOPPER)
@blp.arguments(MyCouponArgs, location="query")
@blp.response(200, CouponSchema(many=True))
def my_coupons(args):
    return services.my_coupons(db.session, user_id=current_actor().user_id, **args)
