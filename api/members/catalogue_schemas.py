from marshmallow import Schema, fields, validate

from api.coupons.schemas import CouponSchema
from api.fields import Id
from api.members.points_schemas import PointsBalanceSchema, QueryId


def price(**kw) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(1, 10**9), metadata={"description": "points"}, **kw)


Limit = fields.Integer(strict=True, validate=validate.Range(1, 1000), metadata={"description": "per member"})
Stock = fields.Integer(strict=True, allow_none=True, validate=validate.Range(0, 10**9),
                       metadata={"description": "null: as many as the template gives out"})  # fmt: skip
Status = fields.String(validate=validate.OneOf(["active", "paused", "ended"]))


class CatalogueItemNewSchema(Schema):
    template_id = Id(required=True, metadata={"description": "the coupon template it issues (its brand is the item's)"})
    title = fields.String(validate=validate.Length(1, 100), metadata={"description": "default: the template's name"})
    points_price = price(required=True)
    per_member_limit = Limit
    stock = Stock
    starts_at = fields.AwareDateTime(allow_none=True)
    ends_at = fields.AwareDateTime(allow_none=True)
    status = Status


class CatalogueItemChangeSchema(Schema):
    title = fields.String(validate=validate.Length(1, 100))
    points_price = price()
    per_member_limit = Limit
    stock = Stock
    starts_at = fields.AwareDateTime(allow_none=True)
    ends_at = fields.AwareDateTime(allow_none=True)
    status = Status


class CatalogueItemSchema(Schema):
    id = fields.Integer()
    template_id = fields.Integer()
    brand_id = fields.Integer(allow_none=True, metadata={"description": "null: a platform coupon"})
    title = fields.String()
    points_price = fields.Integer()
    per_member_limit = fields.Integer()
    stock = fields.Integer(allow_none=True)
    redeemed_count = fields.Integer()
    starts_at = fields.AwareDateTime(allow_none=True)
    ends_at = fields.AwareDateTime(allow_none=True)
    status = fields.String()


class CatalogueArgs(Schema):
    brand_id = QueryId(load_default=None)


class OfferedItemSchema(Schema):
    item = fields.Nested(CatalogueItemSchema)
    redeemed = fields.Integer(metadata={"description": "how many of these this member redeemed"})
    left_for_me = fields.Integer(metadata={"description": "how many more this member may redeem"})


class RedeemedSchema(Schema):
    redemption_id = fields.Integer()
    item_id = fields.Integer()
    points = fields.Integer(metadata={"description": "points spent"})
    coupon = fields.Nested(CouponSchema)
    balance = fields.Nested(PointsBalanceSchema)
