from marshmallow import Schema, fields, validate

from api.fields import Id
from mall.cart.services import MAX_QUANTITY

Quantity = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_QUANTITY))


class AddLineSchema(Schema):
    sku_id = Id(required=True)
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, MAX_QUANTITY))
    # A signed token from a live cart link, guide share or promotion; absent means organic.
    source_token = fields.String(load_default=None, validate=validate.Length(1, 2000))


class AddBundleSchema(Schema):
    bundle_id = Id(required=True)
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, MAX_QUANTITY))
    source_token = fields.String(load_default=None, validate=validate.Length(1, 2000))


class CartBundleItemSchema(Schema):
    sku_id = fields.Integer()
    quantity = fields.Integer()


class QuantitySchema(Schema):
    quantity = Quantity


class CartLineSchema(Schema):
    id = fields.Integer()
    sku_id = fields.Integer(allow_none=True, metadata={"description": "null on a bundle's line"})
    bundle_id = fields.Integer(allow_none=True, metadata={"description": "set on a bundle's line"})
    product_id = fields.Integer(allow_none=True)
    brand_id = fields.Integer(allow_none=True)
    title = fields.String()
    image = fields.String(allow_none=True)
    specs = fields.Dict()
    quantity = fields.Integer()
    unit_price = fields.Integer()
    list_price = fields.Integer()
    currency = fields.String()
    stock = fields.Integer()
    problem = fields.String(
        allow_none=True,
        metadata={"description": "archived|out_of_stock|insufficient_stock|member_level|price_above_parts"},
    )
    source = fields.Dict()
    bundle_items = fields.List(
        fields.Nested(CartBundleItemSchema), metadata={"description": "a bundle line's parts (units in one bundle)"}
    )


class CartSchema(Schema):
    id = fields.Integer()
    version = fields.Integer()
    last_activity_at = fields.DateTime()
    lines = fields.List(fields.Nested(CartLineSchema))
