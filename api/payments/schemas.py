from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import MAX_ID, Id


class AnomalyListArgs(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(["amount_mismatch", "foreign_intent",
                                                                      "foreign_refund"]))  # fmt: skip
    order_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    before = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class AnomalySchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    kind = fields.String(metadata={"description": "amount_mismatch | foreign_intent | foreign_refund"})
    gateway = fields.String()
    reference = fields.String(allow_none=True, metadata={"description": "the provider's intent or refund id"})
    expected_amount = fields.Integer(allow_none=True)
    expected_currency = fields.String(allow_none=True)
    received_amount = fields.Integer(allow_none=True)
    received_currency = fields.String(allow_none=True)
    details = fields.Dict()
    created_at = fields.DateTime()


class UnassignedRefundListArgs(Schema):
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "assigned"]))
    order_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    before = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class UnassignedRefundSchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    payment_id = fields.Integer()
    refund_id = fields.Integer()
    amount = fields.Integer()
    currency = fields.String()
    status = fields.String(metadata={"description": "open | assigned"})
    assignment = fields.Dict(allow_none=True)
    created_at = fields.DateTime()
    assigned_at = fields.DateTime(allow_none=True)
    assigned_by = fields.Integer(allow_none=True)


class AssignedUnitsSchema(Schema):
    order_line_id = Id(required=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))


class AssignmentSchema(Schema):
    lines = fields.List(fields.Nested(AssignedUnitsSchema), load_default=list, validate=validate.Length(0, 100))
    shipping_sub_order_ids = fields.List(
        Id(),
        load_default=list,
        validate=validate.Length(0, 100),
        metadata={"description": "sub-orders whose remaining shipping fee it was"},
    )
