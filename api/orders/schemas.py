from marshmallow import Schema, fields, validate

from api.checkout.schemas import CouponIds, LineIds, Points
from api.fields import MAX_ID, Bool, Id


class PlaceOrderSchema(Schema):
    line_ids = LineIds
    address_id = Id(required=True)
    # Optional guard: the payable the shopper saw on the quote; a different price is 409, not a surprise.
    expected_payable = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=0))
    coupon_ids = CouponIds
    points = Points


class OrderLineSchema(Schema):
    id = fields.Integer()
    sub_order_id = fields.Integer()
    sku_id = fields.Integer()
    product_id = fields.Integer()
    title = fields.String()
    specs = fields.Dict()
    unit_price = fields.Integer()
    quantity = fields.Integer()
    subtotal = fields.Integer()
    discount_total = fields.Integer()
    payable = fields.Integer()
    discounts = fields.Dict(keys=fields.String(), values=fields.Integer())
    source = fields.Dict()
    refunded_quantity = fields.Integer()
    refunded_amount = fields.Integer()
    requested_quantity = fields.Integer(metadata={"description": "units in open after-sale requests"})
    bundle_id = fields.Integer(allow_none=True, metadata={"description": "set on a part of a bundle bought"})
    bundle_quantity = fields.Integer(allow_none=True, metadata={"description": "bundles bought (part lines)"})


class SubOrderSchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    brand_id = fields.Integer()
    status = fields.String()
    fulfilment_hold = fields.String(allow_none=True)
    items_total = fields.Integer()
    discount_total = fields.Integer()
    shipping_fee = fields.Integer()
    payable_total = fields.Integer()
    refunded_total = fields.Integer()
    carrier = fields.String(allow_none=True)
    tracking_number = fields.String(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    auto_confirm_at = fields.DateTime(allow_none=True)
    after_sale_deadline = fields.DateTime(allow_none=True)
    settled_at = fields.DateTime(allow_none=True)  # no after-sale case can be opened any more
    lines = fields.List(fields.Nested(OrderLineSchema))


class OrderSchema(Schema):
    id = fields.Integer()
    number = fields.String()
    status = fields.String()
    currency = fields.String()
    items_total = fields.Integer()
    discount_total = fields.Integer()
    shipping_total = fields.Integer()
    payable_total = fields.Integer()
    paid_total = fields.Integer()
    refunded_total = fields.Integer()
    address = fields.Dict()
    discounts = fields.List(fields.Dict())
    expires_at = fields.DateTime()
    paid_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    sub_orders = fields.List(fields.Nested(SubOrderSchema))


class OrderListArgs(Schema):
    status = fields.String(load_default=None, validate=validate.Length(1, 20))
    before = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class OrderEventSchema(Schema):
    id = fields.Integer()
    type = fields.String()
    actor_id = fields.Integer(allow_none=True)
    actor_role = fields.String(allow_none=True)
    payload = fields.Dict()
    occurred_at = fields.DateTime()


class PaymentSchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    gateway = fields.String()
    intent_id = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    status = fields.String()
    client_secret = fields.String(allow_none=True, metadata={"description": "Stripe: confirm on the client"})
    refunded_amount = fields.Integer()


class ShipSchema(Schema):
    carrier = fields.String(required=True, validate=validate.Length(1, 40))
    tracking_number = fields.String(required=True, validate=validate.Length(1, 64))


class AfterSaleLineSchema(Schema):
    order_line_id = Id(required=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    amount = fields.Integer(dump_only=True)


class AfterSaleRequestSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(1, 200))
    return_goods = Bool(load_default=False)
    lines = fields.List(fields.Nested(AfterSaleLineSchema), required=True, validate=validate.Length(1, 100))


class AfterSaleSchema(AfterSaleRequestSchema):
    id = fields.Integer()
    order_id = fields.Integer()
    sub_order_id = fields.Integer()
    status = fields.String()
    amount = fields.Integer()
    decided_at = fields.DateTime(allow_none=True)
    decision_note = fields.String(allow_none=True)
    created_at = fields.DateTime()


class DecisionSchema(Schema):
    note = fields.String(load_default=None, validate=validate.Length(0, 200))
