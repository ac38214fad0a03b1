"""Request and response schemas of the live-room endpoints."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.fields import Id

STREAM_REF = "WeChat Channels live id, mini-program live component room id, or a player URL"


class LineupItemSchema(Schema):
    id = fields.Integer(dump_only=True)
    product_id = Id(required=True)
    sku_id = Id(load_default=None, allow_none=True, metadata={"description": "none: all the product's SKUs"})
    position = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(0, 10**6))
    live_price = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(0, 10**10),
                                metadata={"description": "minor units, at most the normal price"})  # fmt: skip
    currency = fields.String(
        dump_only=True, allow_none=True, metadata={"description": "the live price's; none without one"}
    )
    live_quota = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(1, 10**7))
    live_sold = fields.Integer(dump_only=True, metadata={"description": "units sold at the live price"})


class LineupItemPatchSchema(Schema):
    position = fields.Integer(strict=True, validate=validate.Range(0, 10**6))
    live_price = fields.Integer(strict=True, allow_none=True, validate=validate.Range(0, 10**10))
    live_quota = fields.Integer(strict=True, allow_none=True, validate=validate.Range(1, 10**7))


class RoomSchema(Schema):
    id = fields.Integer(dump_only=True)
    brand_id = Id(load_default=None)
    title = fields.String(required=True, validate=validate.Length(1, 100))
    cover_url = fields.URL(load_default="", validate=validate.Length(max=500))
    host_user_id = Id(required=True)
    scheduled_start = fields.AwareDateTime(required=True)
    scheduled_end = fields.AwareDateTime(required=True)
    stream_ref = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 500),
                               metadata={"description": "Channels live id, live component room id or player URL"})  # fmt: skip
    status = fields.String(dump_only=True)
    started_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    ended_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    lineup = fields.List(fields.Nested(LineupItemSchema), load_default=list, validate=validate.Length(max=200),
                         attribute="items")  # fmt: skip

    @validates_schema
    def _window(self, data, **kwargs):
        start, end = data.get("scheduled_start"), data.get("scheduled_end")
        if start and end and end <= start:
            raise ValidationError("scheduled_end must be after scheduled_start.", field_name="scheduled_end")


class RoomPatchSchema(Schema):
    title = fields.String(validate=validate.Length(1, 100))
    cover_url = fields.URL(validate=validate.Length(max=500))
    host_user_id = Id()
    scheduled_start = fields.AwareDateTime()
    scheduled_end = fields.AwareDateTime()
    stream_ref = fields.String(allow_none=True, validate=validate.Length(1, 500))


class RoomsArgs(Schema):
    brand_id = Id(load_default=None)


class OffsetSchema(Schema):
    """A query parameter of every show verb, so that those without other input take no body."""

    stream_offset_ms = fields.Integer(load_default=None, validate=validate.Range(0, 10**12),
                                      metadata={"description": "ms into the stream, as the player reports"})  # fmt: skip


class PinSchema(Schema):
    item_id = Id(load_default=None, metadata={"description": "the lineup item; or give product_id"})
    product_id = Id(load_default=None, metadata={"description": "the lineup's first item of this product"})

    @validates_schema
    def _one_target(self, data, **kwargs):
        if (data.get("item_id") is None) == (data.get("product_id") is None):
            raise ValidationError("Give item_id or product_id (one of them).", field_name="item_id")


class PinSegmentSchema(Schema):
    id = fields.Integer()
    item_id = fields.Integer()
    product_id = fields.Integer()
    sku_id = fields.Integer(allow_none=True)
    started_at = fields.AwareDateTime()
    ended_at = fields.AwareDateTime(allow_none=True)
    start_offset_ms = fields.Integer(allow_none=True)
    end_offset_ms = fields.Integer(allow_none=True)


class ReplayEntrySchema(PinSegmentSchema):
    title = fields.String()
    started_at = fields.String()
    ended_at = fields.String(allow_none=True)


class ReplaySchema(Schema):
    room_id = fields.Integer()
    stream_ref = fields.String(allow_none=True)
    segments = fields.List(fields.Nested(ReplayEntrySchema))


class ViewItemSchema(Schema):
    id = fields.Integer()
    product_id = fields.Integer()
    sku_id = fields.Integer(allow_none=True)
    position = fields.Integer()
    title = fields.String()
    image = fields.String(allow_none=True)
    on_sale = fields.Boolean()
    price = fields.Integer(metadata={"description": "the normal price (the SKU's, or the product's lowest)"})
    live_price = fields.Integer(allow_none=True)
    currency = fields.String()
    live_quota = fields.Integer(allow_none=True)
    remaining = fields.Integer(
        metadata={"description": "units on sale, within what is left of the live quota; may lag 5 s"}
    )


class PinnedSchema(Schema):
    segment_id = fields.Integer()
    since = fields.String()
    start_offset_ms = fields.Integer(allow_none=True)
    item = fields.Nested(ViewItemSchema, allow_none=True)


class HostSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class RoomBagSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "open | drawn"})
    title = fields.String()
    prize_type = fields.String()
    winner_count = fields.Integer()
    opens_at = fields.String()
    closes_at = fields.String()
    seed_hash = fields.String(metadata={"description": "hex SHA-256 of the seed, committed before opening"})


class ViewDealSchema(Schema):
    id = fields.Integer()
    item_id = fields.Integer(metadata={"description": "the lineup item"})
    sale_id = fields.Integer(
        metadata={"description": "bought at POST /flash-sales/{sale_id}/items/{flash_item_id}/purchase"}
    )
    flash_item_id = fields.Integer()
    sku_id = fields.Integer()
    flash_price = fields.Integer()
    quota = fields.Integer()
    per_shopper_limit = fields.Integer()
    starts_at = fields.String(metadata={"description": "the countdown ends here"})
    ends_at = fields.String()


class ViewCouponSchema(Schema):
    id = fields.Integer(metadata={"description": "the template: claimed at POST /live/rooms/{id}/coupons/{id}/claim"})
    name = fields.String()
    value_type = fields.String()
    amount = fields.Integer()
    threshold = fields.Integer()
    percent_bp = fields.Integer()
    currency = fields.String()


class RoomViewSchema(Schema):
    id = fields.Integer()
    brand_id = fields.Integer()
    title = fields.String()
    cover_url = fields.String()
    status = fields.String(metadata={"description": "scheduled | live | ended"})
    scheduled_start = fields.String()
    scheduled_end = fields.String()
    started_at = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    stream_ref = fields.String(allow_none=True)
    host = fields.Nested(HostSchema)
    pinned = fields.Nested(PinnedSchema, allow_none=True)
    lineup = fields.List(fields.Nested(ViewItemSchema))
    lucky_bag = fields.Nested(RoomBagSchema, allow_none=True,
                              metadata={"description": "the latest lucky bag with its seed hash (ADR 0020)"})  # fmt: skip
    deals = fields.List(fields.Nested(ViewDealSchema), metadata={"description": "live flash deals not over yet"})
    coupons = fields.List(fields.Nested(ViewCouponSchema), metadata={"description": "room coupons"})


class DealSchema(Schema):
    item_id = Id(required=True, metadata={"description": "a lineup item of the room"})
    sku_id = Id(
        load_default=None, allow_none=True, metadata={"description": "required when the item is a whole product"}
    )
    flash_price = fields.Integer(strict=True, required=True, validate=validate.Range(0, 10**10))
    quota = fields.Integer(strict=True, required=True, validate=validate.Range(1, 10**7))
    per_viewer_limit = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 100))
    countdown_seconds = fields.Integer(strict=True, required=True, metadata={"description": "10 to 300"})
    duration_minutes = fields.Integer(strict=True, required=True, metadata={"description": "1 to 20"})


class DealCreatedSchema(Schema):
    id = fields.Integer()
    room_id = fields.Integer()
    item_id = fields.Integer()
    sale_id = fields.Integer()
    flash_item_id = fields.Integer()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()


class RoomCouponSchema(Schema):
    template_id = Id(required=True)
    room_id = fields.Integer(dump_only=True)
    pinned_at = fields.AwareDateTime(dump_only=True)
