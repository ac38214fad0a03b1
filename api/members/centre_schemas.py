"""The shopper's member centre (GET /me/member): one object of sections. `points` today; levels and the points
catalogue add sections of their own beside it, so a client reads the sections it knows and ignores the rest."""

from marshmallow import Schema, fields

from api.members.points_schemas import PointsBalanceSchema, PointsNextExpirySchema


class MemberPointsSchema(PointsBalanceSchema):
    expiring = fields.List(fields.Nested(PointsNextExpirySchema),
                           metadata={"description": "the coming expiries (up to 3), soonest first"})  # fmt: skip
    entries_url = fields.String(dump_default="/api/v1/me/points/entries",
                                metadata={"description": "the ledger history, a page at a time"})  # fmt: skip


class MemberCentreSchema(Schema):
    user_id = fields.Integer()
    display_name = fields.String()
    member_since = fields.AwareDateTime()
    points = fields.Nested(MemberPointsSchema)
