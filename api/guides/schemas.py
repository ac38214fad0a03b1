"""Request and response schemas of the guide endpoints."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.fields import MAX_ID, Id
from mall.guides.models import MODES

TARGETS = ("product", "live_room", "storefront", "store")


class NewStoreSchema(Schema):
    brand_id = Id(load_default=None, metadata={"description": "a platform admin names the brand"})
    name = fields.String(required=True, validate=validate.Length(1, 100))


class StoreSchema(Schema):
    id = fields.Integer()
    brand_id = fields.Integer()
    name = fields.String()
    status = fields.String()


class InviteSchema(Schema):
    brand_id = Id(load_default=None, metadata={"description": "a platform admin names the brand"})
    user_id = Id(required=True, metadata={"description": "a staff user with role guide of the brand"})
    store_id = Id(load_default=None)
    name = fields.String(load_default="", validate=validate.Length(0, 100))
    shopper_user_id = Id(load_default=None, metadata={"description": "the shopper account the guide buys with"})


class GuideSchema(Schema):
    id = fields.Integer()
    user_id = fields.Integer()
    brand_id = fields.Integer()
    store_id = fields.Integer(allow_none=True)
    status = fields.String()
    shopper_user_id = fields.Integer(allow_none=True)
    name = fields.String()


class RemoveGuideSchema(Schema):
    hand_to = Id(load_default=None, metadata={"description": "the guide who takes over the customers"})


class HandOverSchema(Schema):
    to_guide_id = Id(required=True)


class HandedOverSchema(Schema):
    customers = fields.Integer(metadata={"description": "bindings handed over"})


class BindingRuleSchema(Schema):
    brand_id = Id(load_default=None, load_only=True, metadata={"description": "a platform admin names the brand"})
    mode = fields.String(required=True, validate=validate.OneOf(MODES))
    days = fields.Integer(strict=True, load_default=15, validate=validate.Range(1, 3650),
                          metadata={"description": "protection (protected) or lock after a click (click_lock)"})  # fmt: skip
    order_days = fields.Integer(strict=True, load_default=30, validate=validate.Range(1, 3650),
                                metadata={"description": "click_lock: the lock after an order"})  # fmt: skip
    id = fields.Integer(dump_only=True)
    version = fields.Integer(dump_only=True)
    effective_from = fields.AwareDateTime(dump_only=True)


class NewGuideLinkSchema(Schema):
    target = fields.String(required=True, validate=validate.OneOf(TARGETS))
    product_id = Id(load_default=None)
    sku_id = Id(load_default=None)
    room_id = Id(load_default=None)
    store_id = Id(load_default=None)

    @validates_schema
    def _target(self, data, **kwargs):
        needs = {"product": "product_id", "live_room": "room_id", "store": "store_id"}.get(data["target"])
        if needs is not None and data.get(needs) is None:
            raise ValidationError(f"A {data['target']} link names its {needs}.", field_name=needs)


class GuideLinkSchema(Schema):
    id = fields.Integer()
    guide_id = fields.Integer()
    brand_id = fields.Integer()
    target = fields.String()
    product_id = fields.Integer(allow_none=True)
    sku_id = fields.Integer(allow_none=True)
    room_id = fields.Integer(allow_none=True)
    store_id = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    token = fields.String(metadata={"description": "the link's short signed code"})
    path = fields.String(metadata={"description": "mini-program path: pages/guide/link?t=<token>"})
    qr_url = fields.String(metadata={"description": "a PNG QR code of the path"})


class OpenGuideLinkSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(1, 300))
    sku_id = Id(load_default=None, metadata={"description": "the SKU, when a product link names only the product"})
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 999))


class BindingEventSchema(Schema):
    id = fields.Integer()
    shopper_id = fields.Integer()
    brand_id = fields.Integer()
    guide_id = fields.Integer()
    binding_id = fields.Integer(allow_none=True)
    kind = fields.String(metadata={"description": "bound, extended, refused, kept, handed_over, ended"})
    reason = fields.Dict(metadata={"description": "why: the link, the rule, the window, the setting version"})
    created_at = fields.AwareDateTime()


class GuideLinkOpenedSchema(Schema):
    link_id = fields.Integer()
    guide_id = fields.Integer()
    target = fields.String()
    visit_id = fields.Integer()
    binding = fields.Nested(BindingEventSchema, metadata={"description": "what the brand's rule did, and why"})
    line_id = fields.Integer(allow_none=True, metadata={"description": "the cart line of a product link"})
    source = fields.Dict(allow_none=True)


class WhyArgs(Schema):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                              metadata={"description": "a platform admin names the brand"})  # fmt: skip


class GuideQrArgs(Schema):
    t = fields.String(required=True, validate=validate.Length(1, 300), metadata={"description": "a link's token"})
    scale = fields.Integer(load_default=8, validate=validate.Range(1, 20), metadata={"description": "px per module"})
