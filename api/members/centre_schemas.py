"""The shopper's member centre (GET /me/member): one object of sections (`points`, `level`, `catalogue`), the same
shapes as GET /me/points, /me/level and /me/points/catalogue, so a client reads the sections it knows."""

from marshmallow import Schema, fields

from api.members.catalogue_schemas import OfferedItemSchema
from api.members.level_schemas import MyLevelSchema
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
    level = fields.Nested(MyLevelSchema, metadata={"description": "as GET /me/level"})
    catalogue = fields.List(fields.Nested(OfferedItemSchema),
                            metadata={"description": "coupons offered for points now, as GET /me/points/catalogue"})  # fmt: skip
