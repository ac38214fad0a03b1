"""Request and response schemas of the lucky-bag endpoints."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.fields import Id


class BagCreateSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(1, 100))
    prize_type = fields.String(required=True, validate=validate.OneOf(("coupon", "gift")))
    coupon_template_id = Id(load_default=None, metadata={"description": "prize_type coupon: the brand's template"})
    gift_sku_id = Id(load_default=None, metadata={"description": "prize_type gift: a SKU of the brand"})
    winner_count = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10_000))
    entry_condition = fields.String(load_default="in_room", validate=validate.OneOf(("in_room", "followed_link")),
                                    metadata={"description": "followed_link: the entrant's cart has a line from "
                                                             "one of this room's links"})  # fmt: skip
    opens_at = fields.AwareDateTime(required=True)
    closes_at = fields.AwareDateTime(required=True)

    @validates_schema
    def _prize(self, data, **kwargs):
        wanted = "coupon_template_id" if data.get("prize_type") == "coupon" else "gift_sku_id"
        other = "gift_sku_id" if wanted == "coupon_template_id" else "coupon_template_id"
        if data.get(wanted) is None or data.get(other) is not None:
            raise ValidationError(f"A {data.get('prize_type')} prize names {wanted} (only).", field_name=wanted)
        if data.get("opens_at") and data.get("closes_at") and data["closes_at"] <= data["opens_at"]:
            raise ValidationError("closes_at must be after opens_at.", field_name="closes_at")


class BagSchema(Schema):
    id = fields.Integer()
    room_id = fields.Integer()
    title = fields.String()
    status = fields.String(metadata={"description": "open | drawn | cancelled"})
    prize_type = fields.String()
    coupon_template_id = fields.Integer(allow_none=True)
    gift_sku_id = fields.Integer(allow_none=True)
    winner_count = fields.Integer()
    entry_condition = fields.String()
    opens_at = fields.AwareDateTime()
    closes_at = fields.AwareDateTime()
    seed_hash = fields.String(metadata={"description": "hex SHA-256 of the seed's bytes, published from creation"})
    entrant_count = fields.Integer()
    drawn_at = fields.AwareDateTime(allow_none=True)
    seed = fields.String(allow_none=True, metadata={"description": "hex, 32 bytes; revealed once drawn"})
    prizes_awarded = fields.Integer(allow_none=True, metadata={"description": "how many of the ranking won"})
    entrants = fields.List(fields.Integer(), allow_none=True, metadata={"description": "user ids, ascending"})
    winners = fields.List(fields.Integer(), allow_none=True, metadata={"description": "user ids, in rank order"})


class EntrySchema(Schema):
    bag_id = fields.Integer()
    entered = fields.Boolean(metadata={"description": "false: you had entered already"})


class PrizeSchema(Schema):
    bag_id = fields.Integer()
    rank = fields.Integer()
    status = fields.String(metadata={"description": "granted | not_granted | reserved | claimed | released"})
    coupon_id = fields.Integer(allow_none=True)
    sku_id = fields.Integer(allow_none=True)
    claim_by = fields.AwareDateTime(allow_none=True)
    order_id = fields.Integer(allow_none=True)


class ClaimSchema(Schema):
    address_id = Id(required=True)
