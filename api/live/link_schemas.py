"""Request and response schemas of the live cart-link endpoints."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.fields import Id

TOKEN = fields.String(required=True, validate=validate.Length(1, 500), metadata={"description": "a link's token"})


class NewLinkSchema(Schema):
    item_id = Id(load_default=None, metadata={"description": "the lineup item; or give product_id"})
    product_id = Id(load_default=None, metadata={"description": "the lineup item of this product"})
    sku_id = Id(load_default=None, metadata={"description": "one SKU of it (none: the shopper chooses)"})
    expires_in = fields.Integer(strict=True, load_default=None, validate=validate.Range(60, 30 * 24 * 3600),
                                metadata={"description": "seconds, 60 to 30 days; default 7 days"})  # fmt: skip

    @validates_schema
    def _one_target(self, data, **kwargs):
        if (data.get("item_id") is None) == (data.get("product_id") is None):
            raise ValidationError("Give item_id or product_id (one of them).", field_name="item_id")


class SharedLinkSchema(Schema):
    """A link as it is shared: its token, the mini-program path that opens it, and its QR code."""

    link_id = fields.Integer()
    room_id = fields.Integer()
    token = fields.String()
    path = fields.String(metadata={"description": "mini-program path: pages/live/link?t=<token>"})
    qr_url = fields.String(metadata={"description": "a PNG QR code of the path"})
    expires_at = fields.AwareDateTime()


class LinkSchema(SharedLinkSchema):
    id = fields.Integer()
    item_id = fields.Integer()
    product_id = fields.Integer()
    sku_id = fields.Integer(allow_none=True)
    created_by = fields.Integer()
    created_at = fields.AwareDateTime()


class LinkTokenSchema(Schema):
    token = TOKEN


class OpenLinkSchema(Schema):
    token = TOKEN
    room_id = Id(load_default=None, metadata={"description": "the room the shopper is in: another room's link is "
                                                             "refused (422 live.link_other_room)"})  # fmt: skip
    sku_id = Id(load_default=None, metadata={"description": "the SKU, when the link names only the product"})
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 999))


class LinkOpenedSchema(Schema):
    line_id = fields.Integer(metadata={"description": "the shopper's cart line"})
    link_id = fields.Integer()
    room_id = fields.Integer()
    product_id = fields.Integer()
    sku_id = fields.Integer()
    source = fields.Dict(metadata={"description": "the line's LIVE source: room_id, host_id, segment_id, link_id, "
                                                  "shared_by, opened_at"})  # fmt: skip


class QrArgs(Schema):
    t = fields.String(required=True, validate=validate.Length(1, 500), metadata={"description": "a link's token"})
    scale = fields.Integer(load_default=8, validate=validate.Range(1, 20), metadata={"description": "px per module"})
