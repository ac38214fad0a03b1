"""Request and response schemas of the commission hold endpoints (ADR 0024)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import MAX_ID, Id

_SIZE = {"validate": validate.Range(0, 10_000), "strict": True}
_DAYS = {"validate": validate.Range(1, 3650), "strict": True}


class BrandArgs(Schema):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                              metadata={"description": "a platform admin names the brand"})  # fmt: skip


class HoldSettingsSchema(Schema):
    """Every field optional on a change (the others are kept); a size of 0 turns that rule off."""

    brand_id = Id(load_default=None, metadata={"description": "a platform admin names the brand"})
    fresh_account_days = fields.Integer(validate=validate.Range(0, 3650), strict=True,
                                        metadata={"description": "an account younger than this is fresh (0: none)"})  # fmt: skip
    fresh_max_orders = fields.Integer(**_SIZE, metadata={"description": "... with at most this many other paid orders"})
    fresh_cluster_size = fields.Integer(**_SIZE, metadata={"description": "fresh shoppers of one guide in the window"})
    fresh_cluster_days = fields.Integer(**_DAYS)
    address_cluster_size = fields.Integer(**_SIZE, metadata={"description": "shoppers of one guide, one address"})
    address_cluster_days = fields.Integer(**_DAYS)
    coupon_spread_size = fields.Integer(**_SIZE, metadata={"description": "shoppers not bound to the coupon's guide"})


class GuideCouponSchema(Schema):
    template_id = Id(required=True)
    guide_id = fields.Integer(dump_only=True)
    brand_id = fields.Integer(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)


class HeldArgs(BrandArgs):
    guide_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID))
    before = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                            metadata={"description": "entries older than this id (the next page)"})  # fmt: skip
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class ReviewSchema(Schema):
    brand_id = Id(load_default=None, metadata={"description": "a platform admin names the brand"})
    entry_ids = fields.List(Id(), required=True, validate=validate.Length(1, 200))
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class HoldReviewSchema(Schema):
    action = fields.String(metadata={"description": "released or voided"})
    from_state = fields.String()
    to_state = fields.String()
    reason = fields.String()
    by = fields.Integer()
    created_at = fields.AwareDateTime()


class HeldEntrySchema(Schema):
    id = fields.Integer()
    guide_id = fields.Integer()
    brand_id = fields.Integer()
    kind = fields.String()
    state = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    order_id = fields.Integer(allow_none=True)
    sub_order_id = fields.Integer(allow_none=True)
    order_line_id = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    hold = fields.Dict(allow_none=True, metadata={"description": "why it was held: rule, match, evidence"})
    review = fields.Nested(HoldReviewSchema, allow_none=True, metadata={"description": "the latest review"})


class ReviewedSchema(Schema):
    changed = fields.List(fields.Integer(), metadata={"description": "entries this request moved"})
    unchanged = fields.List(fields.Integer(), metadata={"description": "entries already decided this way"})
    entries = fields.List(fields.Nested(HeldEntrySchema))


class GuideHeldEntrySchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    state = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    order_id = fields.Integer(allow_none=True)
    sub_order_id = fields.Integer(allow_none=True)
    order_line_id = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    reason = fields.Dict(metadata={"description": "for a held entry only {code: under_review, text}"})
