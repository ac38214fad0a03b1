from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.fields import MAX_ID, Id, QueryBool
from mall.catalog.queries import SORTS
from mall.catalog.rules import MAX_STOCK, ProductStatus, Tier
from mall.money import CURRENCY_EXPONENT

TIERS = [t.value for t in Tier]
MAX_AMOUNT = 10**12
Amount = lambda **kw: fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_AMOUNT), **kw)  # noqa: E731


class PriceRangeSchema(Schema):
    min = fields.Integer()
    max = fields.Integer()
    currency = fields.String()


class BrandRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    logo_url = fields.String()


# ---- shopper reads ---------------------------------------------------------------------------


class ProductListArgs(Schema):
    # Query strings are text: these integers are parsed from it (strict fields would refuse every value).
    brand_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID))
    category_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID))
    q = fields.String(load_default=None, validate=validate.Length(1, 100))
    price_min = fields.Integer(load_default=None, validate=validate.Range(0, MAX_AMOUNT))
    price_max = fields.Integer(load_default=None, validate=validate.Range(0, MAX_AMOUNT))
    tier = fields.String(load_default=None, validate=validate.OneOf(TIERS))
    in_stock = QueryBool(load_default=None)
    sort = fields.String(load_default="newest", validate=validate.OneOf(list(SORTS)))
    cursor = fields.String(load_default=None, validate=validate.Length(1, 500))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class ProductCardSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    subtitle = fields.String()
    image = fields.String(allow_none=True)
    tier = fields.String()
    min_member_level = fields.Integer(allow_none=True)
    price = fields.Nested(PriceRangeSchema)
    sales_count = fields.Integer()
    in_stock = fields.Boolean()
    brand = fields.Nested(BrandRefSchema)


class ProductPageSchema(Schema):
    items = fields.List(fields.Nested(ProductCardSchema))
    next_cursor = fields.String(allow_none=True)


class SkuViewSchema(Schema):
    id = fields.Integer()
    specs = fields.Dict(keys=fields.String(), values=fields.String())
    price = fields.Integer()
    list_price = fields.Integer()
    stock = fields.Integer()
    available = fields.Boolean()


class ProductDetailSchema(ProductCardSchema):
    description = fields.String()
    selling_points = fields.List(fields.String())
    images = fields.List(fields.String())
    status = fields.String()
    category_id = fields.Integer()
    currency = fields.String()
    available = fields.Boolean()
    spec_options = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    skus = fields.List(fields.Nested(SkuViewSchema))


class BrandSchema(Schema):
    id = fields.Integer(dump_only=True)
    slug = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{1,63}$"))
    name = fields.String(required=True, validate=validate.Length(1, 100))
    logo_url = fields.URL(load_default="", allow_none=False, validate=validate.Length(0, 500))
    story = fields.String(load_default="", validate=validate.Length(0, 5000))
    status = fields.String(load_default="active", validate=validate.OneOf(["active", "suspended"]))


class CategorySchema(Schema):
    id = fields.Integer(dump_only=True)
    parent_id = Id(load_default=None, allow_none=True)
    name = fields.String(required=True, validate=validate.Length(1, 60))
    position = fields.Integer(load_default=0, strict=True, validate=validate.Range(-MAX_ID - 1, MAX_ID))
    path = fields.String(dump_only=True)


class BundleItemSchema(Schema):
    sku_id = Id(required=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(1, 99))


class BundleSchema(Schema):
    id = fields.Integer(dump_only=True)
    brand_id = Id(load_default=None)
    title = fields.String(required=True, validate=validate.Length(1, 200))
    description = fields.String(load_default="", validate=validate.Length(0, 5000))
    image = fields.String(load_default="", validate=validate.Length(0, 500))
    price = Amount(required=True)
    currency = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    items = fields.List(fields.Nested(BundleItemSchema), required=True, validate=validate.Length(1, 20))
    available_quantity = fields.Integer(dump_only=True)


# ---- brand admin writes ----------------------------------------------------------------------


def Specs(**kw) -> fields.Dict:
    """{"colour": "red", "size": "M"}: at most five spec names, each with one value."""
    return fields.Dict(
        keys=fields.String(validate=validate.Length(1, 30)),
        values=fields.String(validate=validate.Length(1, 60)),
        validate=validate.Length(max=5),
        **kw,
    )


def _selling_points(**kw) -> fields.List:
    return fields.List(fields.String(validate=validate.Length(1, 100)), validate=validate.Length(max=10), **kw)


def _images(**kw) -> fields.List:
    return fields.List(fields.String(validate=validate.Length(1, 500)), validate=validate.Length(max=20), **kw)


class SkuSchema(Schema):
    id = fields.Integer(dump_only=True)
    specs = Specs(required=True)
    price = Amount(required=True)
    list_price = Amount(load_default=None)
    stock = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, MAX_STOCK))
    weight_grams = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, 10**7))
    barcode = fields.String(load_default="", validate=validate.Length(0, 64))
    status = fields.String(dump_only=True)


class SkuPatchSchema(Schema):
    # Fresh fields, not SkuSchema's: a PATCH has no required fields and no defaults.
    specs = Specs()
    price = Amount()
    list_price = Amount()
    weight_grams = fields.Integer(strict=True, validate=validate.Range(0, 10**7))
    barcode = fields.String(validate=validate.Length(0, 64))
    status = fields.String(validate=validate.OneOf(["active", "archived"]))


class StockAdjustSchema(Schema):
    delta = fields.Integer(required=True, strict=True, validate=validate.Range(-MAX_STOCK, MAX_STOCK))


class ProductWriteSchema(Schema):
    brand_id = Id(load_default=None)
    category_id = Id(required=True)
    title = fields.String(required=True, validate=validate.Length(1, 200))
    subtitle = fields.String(load_default="", validate=validate.Length(0, 200))
    description = fields.String(load_default="", validate=validate.Length(0, 20000))
    selling_points = _selling_points(load_default=list)
    images = _images(load_default=list)
    tier = fields.String(load_default=Tier.PROFIT.value, validate=validate.OneOf(TIERS))
    min_member_level = fields.Integer(load_default=None, strict=True, validate=validate.Range(0, 100))
    currency = fields.String(load_default=None, validate=validate.OneOf(list(CURRENCY_EXPONENT)))
    skus = fields.List(fields.Nested(SkuSchema), load_default=list, validate=validate.Length(max=200))

    @validates_schema
    def _unique_specs(self, data, **kwargs):
        from mall.catalog.rules import spec_key

        keys = [spec_key(s["specs"]) for s in data.get("skus") or []]
        if len(keys) != len(set(keys)):
            raise ValidationError("Two SKUs have the same spec values.", field_name="skus")


class ProductPatchSchema(Schema):
    category_id = Id()
    title = fields.String(validate=validate.Length(1, 200))
    subtitle = fields.String(validate=validate.Length(0, 200))
    description = fields.String(validate=validate.Length(0, 20000))
    # Fresh fields, not ProductWriteSchema's: their load_default would blank what a PATCH leaves out.
    selling_points = _selling_points()
    images = _images()
    tier = fields.String(validate=validate.OneOf(TIERS))
    min_member_level = fields.Integer(strict=True, allow_none=True, validate=validate.Range(0, 100))


class ProductAdminSchema(Schema):
    id = fields.Integer()
    brand_id = fields.Integer()
    category_id = fields.Integer()
    title = fields.String()
    subtitle = fields.String()
    description = fields.String()
    selling_points = fields.List(fields.String())
    images = fields.List(fields.String())
    status = fields.String(validate=validate.OneOf([s.value for s in ProductStatus]))
    tier = fields.String()
    min_member_level = fields.Integer(allow_none=True)
    currency = fields.String()
    price_min = fields.Integer()
    price_max = fields.Integer()
    sales_count = fields.Integer()
    published_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    skus = fields.List(fields.Nested(SkuSchema))


class AdminProductListArgs(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf([s.value for s in ProductStatus]))
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_ID))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
