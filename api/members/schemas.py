"""Request and response shapes of the members operator API (tags, segments, RFM, lifecycle, cross-brand)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mall.members.models import GROUPS, STAGES

UserId = lambda: fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1))  # noqa: E731
Code = lambda **kw: fields.String(validate=validate.Length(1, 80), **kw)  # noqa: E731
Codes = lambda: fields.List(Code(), validate=validate.Length(max=50))  # noqa: E731
BrandIds = lambda: fields.List(UserId(), validate=validate.Length(max=50))  # noqa: E731


class ScopeArgs(Schema):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, 2**31 - 1))


class TagArgs(ScopeArgs):
    kind = fields.String(load_default=None, validate=validate.OneOf(["channel", "system", "manual"]))


class TagSchema(Schema):
    id = fields.Integer(dump_only=True)
    brand_id = fields.Integer(strict=True, load_only=True, load_default=None, validate=validate.Range(1, 2**31 - 1))
    scope = fields.Integer(dump_only=True, metadata={"description": "0: the platform, else the brand's id"})
    kind = fields.String(dump_only=True)
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_\-:.]{1,80}$"))
    name = fields.String(load_default="", validate=validate.Length(max=80))


class TagPatchSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 80))


class UserIdsSchema(Schema):
    user_ids = fields.List(UserId(), required=True, validate=validate.Length(1, 10_000))


class SegmentRefSchema(Schema):
    segment_id = UserId()


class CountSchema(Schema):
    count = fields.Integer()


class QueuedSchema(Schema):
    job_id = fields.String()


class DefinitionSchema(Schema):
    """Every filter given must hold (AND); within a list, any value (OR) except tags_all."""

    tags_any = Codes()
    tags_all = Codes()
    tags_none = Codes()
    levels = fields.List(fields.Integer(strict=True, validate=validate.Range(0, 100)), validate=validate.Length(max=50))
    min_level = fields.Integer(strict=True, validate=validate.Range(0, 100))
    rfm_groups = fields.List(fields.String(validate=validate.OneOf(GROUPS)), validate=validate.Length(max=11))
    stages = fields.List(fields.String(validate=validate.OneOf(STAGES)), validate=validate.Length(max=5))
    bought_brands = BrandIds()
    not_bought_brands = BrandIds()
    first_touch = fields.List(fields.String(validate=validate.OneOf(["signup", "live_room", "guide", "campaign"])),
                              validate=validate.Length(max=4))  # fmt: skip
    min_orders = fields.Integer(strict=True, validate=validate.Range(0, 10**6))
    min_spend = fields.Integer(strict=True, validate=validate.Range(0, 10**12))


class MemberSegmentSchema(Schema):
    id = fields.Integer(dump_only=True)
    brand_id = fields.Integer(strict=True, load_only=True, load_default=None, validate=validate.Range(1, 2**31 - 1))
    scope = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(1, 80))
    definition = fields.Nested(DefinitionSchema, required=True)


class MemberSegmentPatchSchema(Schema):
    name = fields.String(validate=validate.Length(1, 80))
    definition = fields.Nested(DefinitionSchema)


class PreviewSchema(Schema):
    brand_id = fields.Integer(strict=True, load_default=None, validate=validate.Range(1, 2**31 - 1))
    definition = fields.Nested(DefinitionSchema, required=True)


class PageArgs(Schema):
    after = fields.Integer(load_default=0, validate=validate.Range(0, 2**31 - 1))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


class MemberSchema(Schema):
    user_id = fields.Integer()
    display_name = fields.String()
    member_level = fields.Integer()
    rfm_group = fields.String(allow_none=True)
    stage = fields.String(allow_none=True)


class RunAbout(Schema):
    scope = fields.Integer()
    run_id = fields.Integer(allow_none=True)
    as_of = fields.AwareDateTime(allow_none=True)


class Cell(Schema):
    r = fields.Integer()
    f = fields.Integer()
    members = fields.Integer()


class GroupCount(Schema):
    group = fields.String()
    members = fields.Integer()


class GridSchema(RunAbout):
    cells = fields.List(fields.Nested(Cell))
    groups = fields.List(fields.Nested(GroupCount))


class Move(Schema):
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String()
    members = fields.Integer()
    because = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "members per changed score (r, f, m), or new_member"})  # fmt: skip


class MovementsSchema(RunAbout):
    previous_run_id = fields.Integer(allow_none=True)
    moves = fields.List(fields.Nested(Move))


class StageCount(Schema):
    stage = fields.String()
    members = fields.Integer()


class Transition(Schema):
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String()
    members = fields.Integer()


class LifecycleSchema(RunAbout):
    stages = fields.List(fields.Nested(StageCount))
    transitions = fields.List(fields.Nested(Transition))


class Pair(Schema):
    brand_a = fields.Integer()
    brand_b = fields.Integer()
    buyers = fields.Integer()
    repurchased = fields.Integer()
    rate_bp = fields.Integer()


class CrossBrandSchema(RunAbout):
    pairs = fields.List(fields.Nested(Pair))


class HeatCell(Schema):
    r = fields.Integer(metadata={"description": "recency score, 5: bought most recently"})
    fm = fields.Integer(metadata={"description": "the mean of the frequency and monetary scores, rounded half up"})
    group = fields.String(metadata={"description": "the named group every member of this cell is in"})
    members = fields.Integer()


class HeatmapSchema(RunAbout):
    members = fields.Integer(metadata={"description": "members scored in this scope"})
    cells = fields.List(fields.Nested(HeatCell), metadata={"description": "all 25 cells, R 5..1 then FM 1..5"})
    groups = fields.List(fields.Nested(GroupCount))


class ScopeSchema(Schema):
    scope = fields.Integer(metadata={"description": "0: the platform, else the brand's id"})
    brand_id = fields.Integer(allow_none=True, metadata={"description": "pass as brand_id; null: the platform"})
    name = fields.String()
