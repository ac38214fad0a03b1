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
