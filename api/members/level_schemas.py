from marshmallow import Schema, fields, validate

Bp = lambda top, **kw: fields.Integer(strict=True, validate=validate.Range(0, top), **kw)  # noqa: E731
Money = lambda **kw: fields.Integer(strict=True, validate=validate.Range(0, 10**12), **kw)  # noqa: E731


class LevelSchema(Schema):
    level = fields.Integer(strict=True, required=True, validate=validate.Range(1, 100))
    name = fields.String(required=True, validate=validate.Length(1, 40))
    threshold = Money(required=True, metadata={"description": "growth (minor units) that reaches the level"})
    discount_bp = Bp(9999, load_default=0, metadata={"description": "member price: basis points off item prices"})
    multiplier_bp = Bp(100_000, load_default=10_000, metadata={"description": "points multiplier (10000 = 1.0)"})
    free_shipping_above = Money(load_default=None, allow_none=True,
                                metadata={"description": "a brand part this big ships free"})  # fmt: skip
    birthday_template_id = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "a coupon template with auto_grant level_birthday"},
    )  # fmt: skip


class LevelTableSchema(Schema):
    levels = fields.List(fields.Nested(LevelSchema), required=True, validate=validate.Length(max=20))


class LevelProgrammeSchema(LevelTableSchema):
    term = fields.String(dump_only=True)
    grace_days = fields.Integer(dump_only=True)
    currency = fields.String(dump_only=True)


class LevelsReplacedSchema(LevelProgrammeSchema):
    job_id = fields.String(metadata={"description": "the evaluation queued: members move by the new table"})


class LevelJobSchema(Schema):
    job_id = fields.String()


class DryRunLevelSchema(Schema):
    level = fields.Integer()
    name = fields.String()
    members_now = fields.Integer()
    members_after = fields.Integer(metadata={"description": "once every grace period has run out"})
    up_into = fields.Integer()
    down_into = fields.Integer()
    down_now_into = fields.Integer()


class DryRunSchema(Schema):
    as_of = fields.AwareDateTime()
    term = fields.String()
    grace_days = fields.Integer()
    up = fields.Integer(metadata={"description": "members raised at once"})
    down = fields.Integer(metadata={"description": "members lowered: at once (down_now) or when their grace ends"})
    down_now = fields.Integer()
    grace_starting = fields.Integer(metadata={"description": "grace periods that would start (a notice each)"})
    unchanged = fields.Integer()
    levels = fields.List(fields.Nested(DryRunLevelSchema))


class NextLevelSchema(Schema):
    level = fields.Integer()
    name = fields.String()
    threshold = fields.Integer()
    missing = fields.Integer(metadata={"description": "growth still needed"})


class BenefitsSchema(Schema):
    discount_bp = fields.Integer()
    multiplier_bp = fields.Integer()
    free_shipping_above = fields.Integer(allow_none=True)
    birthday_coupon = fields.Boolean()
    identity_products_level = fields.Integer(metadata={"description": "identity products up to this level"})


class MyLevelSchema(Schema):
    level = fields.Integer()
    name = fields.String()
    growth = fields.Integer(metadata={"description": "paid spend net of refunds over the term, minor units"})
    currency = fields.String()
    term = fields.String()
    term_started_at = fields.AwareDateTime(allow_none=True)
    managed = fields.Boolean(metadata={"description": "false: no level table, levels are set by operators"})
    next = fields.Nested(NextLevelSchema, allow_none=True)
    benefits = fields.Nested(BenefitsSchema)
    lowered_at = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "growth is below the level: when it is lowered unless growth recovers"},
    )
