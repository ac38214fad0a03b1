from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import MAX_ID


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
