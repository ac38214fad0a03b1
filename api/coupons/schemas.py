from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mall.money import CURRENCY_EXPONENT
from mall.promotions.coupons.models import DEFAULT_COMBINABLE

PROMOTIONS = ["flash_sale", "group_buy", "member_price", "bundle", "live"]  # what a coupon may combine with

VALUE_TYPES = ["fixed", "threshold", "percent", "free_shipping"]
Amount = lambda **kw: fields.Integer(strict=True, validate=validate.Range(0, 10**10), **kw)  # noqa: E731
Ids = lambda: fields.List(fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1)),  # noqa: E731
                          load_default=list, validate=validate.Length(max=500))  # fmt: skip


class TemplateSchema(Schema):
    id = fields.Integer(dump_only=True)
    brand_id = fields.Integer(strict=True, load_default=None, validate=validate.Range(1, 2**31 - 1))
    funded_by = fields.String(validate=validate.OneOf(["platform", "brand"]))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    value_type = fields.String(required=True, validate=validate.OneOf(VALUE_TYPES))
    amount = Amount(load_default=0)
    threshold = Amount(load_default=0)
    percent_bp = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, 10_000))
    cap = Amount(load_default=None, allow_none=True)
    currency = fields.String(load_default="CNY", validate=validate.OneOf(list(CURRENCY_EXPONENT)))
    scope_type = fields.String(
        load_default="mall", validate=validate.OneOf(["mall", "brand", "categories", "products"])
    )
    scope_ids = Ids()
    excluded_product_ids = Ids()
    valid_from = fields.AwareDateTime(load_default=None, allow_none=True)
    valid_until = fields.AwareDateTime(load_default=None, allow_none=True)
    valid_days = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(1, 3650))
    total_quantity = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(1, 10**9))
    issued_count = fields.Integer(dump_only=True)
    per_shopper_limit = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 100))
    combinable_with = fields.List(fields.String(validate=validate.OneOf(PROMOTIONS)),
                                  load_default=lambda: list(DEFAULT_COMBINABLE),
                                  metadata={"description": "promotion prices the coupon applies on top of "
                                                           "(default: member prices only)"})  # fmt: skip
    audience = fields.String(
        load_default="anyone", validate=validate.OneOf(["anyone", "new_shoppers", "levels", "tags", "segment"])
    )
    audience_levels = fields.List(fields.Integer(strict=True, validate=validate.Range(0, 100)), load_default=list)
    audience_tags = fields.List(fields.String(validate=validate.Length(1, 40)), load_default=list)
    audience_segment_id = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(1, 2**31 - 1)
    )
    auto_grant = fields.String(load_default=None, allow_none=True,
                               validate=validate.OneOf(["signup", "birthday", "cart_recovery", "level_birthday"]))  # fmt: skip
    status = fields.String(dump_only=True)

    @validates_schema
    def _window(self, data, **kwargs):
        if data.get("valid_from") and data.get("valid_until") and data["valid_until"] <= data["valid_from"]:
            raise ValidationError("valid_until must be after valid_from.", field_name="valid_until")


class StatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["active", "paused", "ended"]))


class CouponSchema(Schema):
    id = fields.Integer()
    template_id = fields.Integer()
    name = fields.String(attribute="template.name")
    value_type = fields.String(attribute="template.value_type")
    status = fields.String()
    valid_from = fields.DateTime()
    valid_until = fields.DateTime()
    order_id = fields.Integer(allow_none=True)
    source = fields.String()
    claimed_at = fields.DateTime()


class StaffGrantSchema(Schema):
    user_id = fields.Integer(strict=True, required=True, validate=validate.Range(1, 2**31 - 1))


class SegmentSchema(Schema):
    user_ids = fields.List(fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1)),
                           validate=validate.Length(1, 100_000))  # fmt: skip
    min_level = fields.Integer(strict=True, validate=validate.Range(0, 100))
    segment_id = fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1))  # a member segment

    @validates_schema
    def _one(self, data, **kwargs):
        if len(data) != 1:
            raise ValidationError("Give exactly one of user_ids, min_level or segment_id.")


class BulkGrantSchema(Schema):
    id = fields.Integer()
    template_id = fields.Integer()
    segment = fields.Dict()
    status = fields.String()
    total = fields.Integer()
    done = fields.Integer()
    granted = fields.Integer()


class ListArgs(Schema):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, 2**31 - 1))


class MyCouponArgs(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(["available", "locked", "used", "expired"]))
