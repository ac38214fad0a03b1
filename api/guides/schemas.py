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


# ---- the workbench (a guide's own figures) and the brand admin's reads ---------------------------------------------


class PageArgs(Schema):
    before = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID),
                            metadata={"description": "the previous page's next_before"})  # fmt: skip
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class GuideOrderArgs(PageArgs):
    number = fields.String(load_default=None, validate=validate.Length(1, 32),
                           metadata={"description": "just this order (by its number), if it has a line of mine"})  # fmt: skip


class GuideVisitSchema(Schema):
    id = fields.Integer()
    visited_at = fields.AwareDateTime()
    link_id = fields.Integer()
    target = fields.String(metadata={"description": "product, live_room, storefront or store"})
    product_id = fields.Integer(allow_none=True)
    room_id = fields.Integer(allow_none=True)
    store_id = fields.Integer(allow_none=True)
    shopper_id = fields.Integer()
    shopper = fields.String(metadata={"description": "the shopper's name, masked"})


class GuideCustomerSchema(Schema):
    binding_id = fields.Integer()
    shopper_id = fields.Integer()
    name = fields.String(metadata={"description": "masked"})
    phone = fields.String(allow_none=True, metadata={"description": "masked: the latest address's phone"})
    since = fields.AwareDateTime()
    until = fields.AwareDateTime(allow_none=True, metadata={"description": "when the binding ends (none: no end)"})
    mode = fields.String(allow_none=True, metadata={"description": "the binding rule it was made under"})
    setting_version = fields.Integer(allow_none=True)


class GuideOrderSchema(Schema):
    order_id = fields.Integer()
    number = fields.String(allow_none=True)
    status = fields.String()
    currency = fields.String()
    placed_at = fields.AwareDateTime()
    paid_at = fields.AwareDateTime(allow_none=True)
    lines = fields.Integer(metadata={"description": "the order's lines attributed to me"})
    line_ids = fields.List(fields.Integer(), metadata={"description": "those lines (GET /guide/commission/why)"})
    quantity = fields.Integer()
    amount = fields.Integer(metadata={"description": "what my lines paid (minor units; 0 while unpaid)"})
    refunded = fields.Integer(metadata={"description": "what was refunded of my lines"})
    buyer = fields.String(metadata={"description": "masked"})
    buyer_phone = fields.String(allow_none=True, metadata={"description": "masked"})


def page_of(item) -> type[Schema]:
    return Schema.from_dict({"items": fields.List(fields.Nested(item)), "next_before": fields.Integer(allow_none=True)},
                            name=f"{item.__name__.removesuffix('Schema')}PageSchema")  # fmt: skip


class SummaryArgs(Schema):
    days = fields.Integer(load_default=30, validate=validate.Range(1, 90))


class SummarySchema(Schema):
    guide_id = fields.Integer()
    today = fields.Dict(metadata={"description": "date (shop's time zone), visits, orders paid"})
    currency = fields.String(allow_none=True)
    earnings = fields.Dict(allow_none=True, metadata={"description": "pending, available, on_hold (minor units)"})
    days = fields.List(fields.Dict(), metadata={"description": "per day, oldest first: date, earned (net)"})


class GuideListArgs(Schema):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID))
    status = fields.String(load_default=None, validate=validate.OneOf(("invited", "active", "suspended", "removed")))


class RuleArgs(Schema):
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID))


class RuleVersionSchema(BindingRuleSchema):
    created_by = fields.Integer(allow_none=True)


class RuleReadSchema(Schema):
    brand_id = fields.Integer()
    in_force = fields.Dict(metadata={"description": "mode, days, order_days, version (0: the default)"})
    versions = fields.List(fields.Nested(RuleVersionSchema), metadata={"description": "newest first"})


class ReportArgs(RuleArgs):
    # `from`/`to` are query names; Python keywords cannot be attribute names, hence data_key
    start = fields.Date(load_default=None, data_key="from", metadata={"description": "first day (default: to - 29)"})
    end = fields.Date(load_default=None, data_key="to", metadata={"description": "last day, inclusive (today)"})

    @validates_schema
    def _order(self, data, **kwargs):
        if data.get("start") and data.get("end") and (data["end"] - data["start"]).days not in range(0, 367):
            raise ValidationError("`to` is on or after `from`, at most 366 days later.", field_name="to")


class GuideReportRowSchema(Schema):
    guide_id = fields.Integer()
    name = fields.String()
    status = fields.String()
    store_id = fields.Integer(allow_none=True)
    visits = fields.Integer()
    new_customers = fields.Integer()
    bound_customers = fields.Integer(metadata={"description": "bound now"})
    orders = fields.Integer(metadata={"description": "orders paid in the period with a line attributed to the guide"})
    paid_gmv = fields.Integer(metadata={"description": "what the guide's lines of those orders paid"})
    refunded = fields.Integer(metadata={"description": "refunded of those lines so far (refund_lines)"})
    net_gmv = fields.Integer()
    commission = fields.Dict(metadata={"description": "commission posted in the period: currency -> state -> amount"})


class GuideReportSchema(Schema):
    brand_id = fields.Integer()
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    time_zone = fields.String()
    guides = fields.List(fields.Nested(GuideReportRowSchema))
