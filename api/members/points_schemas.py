from marshmallow import Schema, fields, validate

Id = lambda **kw: fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1), **kw)  # noqa: E731


class PointsMoneySchema(Schema):
    amount = fields.Integer()
    currency = fields.String()


class PointsNextExpirySchema(Schema):
    points = fields.Integer()
    expires_at = fields.AwareDateTime()


class PointsBalanceSchema(Schema):
    available = fields.Integer(metadata={"description": "usable now"})
    pending = fields.Integer(metadata={"description": "earned on orders not settled yet"})
    reserved = fields.Integer(metadata={"description": "held by unpaid orders"})
    value = fields.Nested(PointsMoneySchema, metadata={"description": "what the available points are worth"})
    next_expiry = fields.Nested(PointsNextExpirySchema, allow_none=True)


class PointsEntrySchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    amount = fields.Integer(metadata={"description": "signed: + granted, - taken"})
    lot_id = fields.Integer()
    brand_id = fields.Integer(allow_none=True)
    order_id = fields.Integer(allow_none=True)
    order_line_id = fields.Integer(allow_none=True)
    refund_line_id = fields.Integer(allow_none=True)
    reason = fields.Dict()
    created_at = fields.AwareDateTime()


class PointsEntryPageSchema(Schema):
    items = fields.List(fields.Nested(PointsEntrySchema))
    next_before_id = fields.Integer(allow_none=True, metadata={"description": "pass as before_id for the next page"})


QueryId = lambda **kw: fields.Integer(validate=validate.Range(1, 2**31 - 1), **kw)  # noqa: E731


class PointsHistoryArgs(Schema):
    before_id = QueryId(load_default=None)
    limit = fields.Integer(strict=False, load_default=20, validate=validate.Range(1, 100))


class PointsCheckInSchema(Schema):
    day = fields.String(metadata={"description": "the shop's calendar day"})
    points = fields.Integer()
    granted = fields.Boolean(metadata={"description": "false: today's check-in was done already"})
    balance = fields.Nested(PointsBalanceSchema)


class PointsAdjustmentSchema(Schema):
    user_id = Id(required=True)
    points = fields.Integer(strict=True, required=True, validate=validate.Range(-(10**9), 10**9))
    reason = fields.String(required=True, validate=validate.Length(3, 200))
    brand_id = Id(load_default=None, metadata={"description": "platform admins: the brand funding a credit"})


class PointsAdjustedSchema(Schema):
    user_id = fields.Integer()
    available = fields.Integer()
    pending = fields.Integer()
    reserved = fields.Integer()


class PointsLiabilityArgs(Schema):
    brand_id = QueryId(load_default=None)


class PointsFunderSchema(Schema):
    brand_id = fields.Integer(allow_none=True, metadata={"description": "null: the platform funded these points"})
    available = fields.Integer()
    pending = fields.Integer()
    points = fields.Integer()
    value = fields.Integer(metadata={"description": "minor units"})
    breakage_bp = fields.Integer()
    cohort_points = fields.Integer()
    cohort_expired = fields.Integer()
    net_value = fields.Integer(metadata={"description": "value less expected breakage, minor units"})


class PointsTotalSchema(Schema):
    available = fields.Integer()
    pending = fields.Integer()
    points = fields.Integer()
    value = fields.Integer()
    net_value = fields.Integer()


class PointsLiabilitySchema(Schema):
    as_of = fields.AwareDateTime()
    currency = fields.String()
    points_per_unit = fields.Integer()
    funders = fields.List(fields.Nested(PointsFunderSchema))
    total = fields.Nested(PointsTotalSchema)
    method = fields.String()
