from marshmallow import Schema, fields, validate

from api.fields import Id

LineIds = fields.List(Id(), required=True,
                      validate=validate.Length(1, 100))  # fmt: skip


def coupon_ids(description: str) -> fields.List:
    """The coupons a purchase names: the same validation wherever they are taken."""
    return fields.List(Id(), load_default=None, allow_none=True, validate=validate.Length(max=10),
                       metadata={"description": description})  # fmt: skip


CouponIds = coupon_ids("Coupons to use; omitted or null: the best combination; []: none")
Points = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, 10**12), metadata={"description": (
    "Points to pay with: whole multiples of POINTS_PER_UNIT (default 100 = 1 currency unit), at most the quote's "
    "points.max_points (POINTS_MAX_SHARE_BP of the items' payable after other discounts, and what the member has); "
    "more is refused (422 points.over_limit, 409 points.insufficient), never clamped. 0 or omitted: none")})  # fmt: skip
# A flash purchase or a group-buy: coupons only when named (the flash hot path does no coupon work otherwise).
PromotionCouponIds = coupon_ids(
    "Coupons to use, by the checkout's rules (on a line priced by a promotion the template's combinable_with "
    "must name it: flash_sale, group_buy, live, bundle, member_price); omitted, null or []: none"
)


class QuoteRequestSchema(Schema):
    line_ids = LineIds
    address_id = Id(load_default=None)
    coupon_ids = CouponIds
    points = Points


class AmountSchema(Schema):
    source = fields.String()
    amount = fields.Integer()


class QuoteLineSchema(Schema):
    line_id = fields.Integer()
    sku_id = fields.Integer()
    product_id = fields.Integer()
    brand_id = fields.Integer()
    title = fields.String()
    specs = fields.Dict()
    quantity = fields.Integer()
    unit_price = fields.Integer()
    list_price = fields.Integer()
    price_source = fields.String()
    subtotal = fields.Integer()
    discounts = fields.List(fields.Nested(AmountSchema))
    discount_total = fields.Integer()
    payable = fields.Integer()
    source = fields.Dict()
    bundle_id = fields.Integer(allow_none=True, metadata={"description": "set on a part of a bundle line"})
    bundle_quantity = fields.Integer(allow_none=True, metadata={"description": "bundles bought (part lines)"})


class QuoteBundleSchema(Schema):
    line_id = fields.Integer()
    bundle_id = fields.Integer()
    title = fields.String()
    quantity = fields.Integer()
    unit_price = fields.Integer(metadata={"description": "the bundle's price"})
    subtotal = fields.Integer()
    discount_total = fields.Integer(metadata={"description": "coupons and points on its parts"})
    payable = fields.Integer()
    sku_ids = fields.List(fields.Integer())


class QuoteBrandSchema(Schema):
    brand_id = fields.Integer()
    subtotal = fields.Integer()
    discount_total = fields.Integer()
    shipping_fee = fields.Integer()
    shipping_waived = fields.Boolean()
    payable = fields.Integer()


class AllocationSchema(Schema):
    line_id = fields.Integer()
    sku_id = fields.Integer()
    amount = fields.Integer()


class DiscountSchema(Schema):
    step = fields.String()
    source = fields.String()
    label = fields.String()
    amount = fields.Integer()
    allocations = fields.List(fields.Nested(AllocationSchema))


class TotalsSchema(Schema):
    items = fields.Integer()
    discounts = fields.Integer()
    shipping = fields.Integer()
    payable = fields.Integer()


class ProblemLineSchema(Schema):
    line_id = fields.Integer()
    sku_id = fields.Integer(allow_none=True)
    bundle_id = fields.Integer(allow_none=True)
    reason = fields.String()


class QuoteCouponSchema(Schema):
    coupon_id = fields.Integer()
    template_id = fields.Integer()
    name = fields.String()
    value_type = fields.String()
    valid_until = fields.DateTime()
    usable = fields.Boolean()
    reason = fields.String(
        allow_none=True,
        metadata={
            "description": "why it cannot be used: expired, "
            "not_started, out_of_scope, below_threshold, not_combinable, currency_mismatch, locked"
        },
    )
    amount_alone = fields.Integer()
    best = fields.Boolean()
    applied = fields.Boolean()


class QuotePointsSchema(Schema):
    available = fields.Integer(metadata={"description": "the member's available points"})
    points_per_unit = fields.Integer(metadata={"description": "points that pay one currency unit"})
    max_share_bp = fields.Integer(metadata={"description": "the most points may pay of the items' payable, bp"})
    max_points = fields.Integer(metadata={"description": "the most points this order can use"})
    max_value = fields.Integer(metadata={"description": "what max_points pay, minor units"})
    applied_points = fields.Integer(metadata={"description": "the points this quote uses"})
    applied_value = fields.Integer(metadata={"description": "what they pay, minor units (discount source points)"})


class QuoteSchema(Schema):
    currency = fields.String()
    lines = fields.List(fields.Nested(QuoteLineSchema))
    bundles = fields.List(fields.Nested(QuoteBundleSchema))
    brands = fields.List(fields.Nested(QuoteBrandSchema))
    discounts = fields.List(fields.Nested(DiscountSchema))
    totals = fields.Nested(TotalsSchema)
    problems = fields.List(fields.Nested(ProblemLineSchema))
    coupons = fields.List(fields.Nested(QuoteCouponSchema))
    applied_coupon_ids = fields.List(fields.Integer())
    points = fields.Nested(
        QuotePointsSchema,
        allow_none=True,
        metadata={"description": "what points can pay and do pay (null: no points step)"},
    )


class ShippingPolicySchema(Schema):
    fee = fields.Integer(strict=True, required=True, validate=validate.Range(0, 10**9))
    free_above = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(0, 10**12))


# The signed live or guide link the shopper came with (as the cart takes it): kept on a flash or group-buy line.
SourceToken = fields.String(load_default=None, validate=validate.Length(1, 2000),
                            metadata={"description": "the signed live or guide link the shopper came with; "
                                                     "omitted: the source on their cart line of this SKU, if any"})  # fmt: skip
