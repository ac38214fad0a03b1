"""Catalog management: platform admins run brands and categories; brand admins their products."""

from __future__ import annotations

from api.auth import MallBlueprint, acting_brand, current_actor
from api.catalog.routes import _bundle_view
from api.catalog.schemas import (
    AdminProductListArgs,
    BrandSchema,
    BundleSchema,
    CategorySchema,
    ProductAdminSchema,
    ProductPatchSchema,
    ProductWriteSchema,
    SkuPatchSchema,
    SkuSchema,
    StockAdjustSchema,
)  # fmt: skip
from api.extensions import db
from api.settings import settings
from api.tx import commit
from mall.catalog import bundles, services, taxonomy
from mall.identity.roles import MERCHANT, Role

blp = MallBlueprint("catalog_admin", __name__, url_prefix="/admin", description="Manage brands, categories, products")
PLATFORM = (Role.PLATFORM_ADMIN,)


@blp.post("/brands")
@blp.auth(*PLATFORM)
@blp.arguments(BrandSchema)
@blp.response(201, BrandSchema)
def create_brand(body):
    brand = taxonomy.create_brand(db.session, actor=current_actor(), **body)
    commit()
    return brand


@blp.get("/brands")
@blp.auth(*PLATFORM)
@blp.response(200, BrandSchema(many=True))
def list_all_brands():
    return taxonomy.list_brands(db.session, include_suspended=True)


@blp.patch("/brands/<int:brand_id>")
@blp.auth(*PLATFORM)
@blp.arguments(BrandSchema(partial=True))
@blp.response(200, BrandSchema)
def update_brand(body, brand_id):
    brand = taxonomy.update_brand(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return brand


@blp.post("/categories")
@blp.auth(*PLATFORM)
@blp.arguments(CategorySchema)
@blp.response(201, CategorySchema)
def create_category(body):
    category = taxonomy.create_category(db.session, actor=current_actor(), **body)
    commit()
    return category


@blp.patch("/categories/<int:category_id>")
@blp.auth(*PLATFORM)
@blp.arguments(CategorySchema(partial=True))
@blp.response(200, CategorySchema)
def update_category(body, category_id):
    category = taxonomy.update_category(db.session, actor=current_actor(), category_id=category_id, **body)
    commit()
    return category


@blp.get("/brands/<int:brand_id>/products")
@blp.auth(*MERCHANT)
@blp.arguments(AdminProductListArgs, location="query")
@blp.response(200, ProductAdminSchema(many=True))
def list_brand_products(args, brand_id):
    """All of a brand's products in any status, by id; page with `after` = last id seen."""
    return services.list_brand_products(db.session, actor=current_actor(), brand_id=brand_id, **args)


@blp.post("/products")
@blp.auth(*MERCHANT)
@blp.arguments(ProductWriteSchema)
@blp.response(201, ProductAdminSchema)
def create_product(body):
    """A new product starts as a draft; publish it when it has an active SKU."""
    brand_id = acting_brand(body.pop("brand_id"))
    currency = body.pop("currency") or settings().default_currency
    product = services.create_product(db.session, actor=current_actor(), brand_id=brand_id, currency=currency, **body)
    commit()
    return product


@blp.get("/products/<int:product_id>")
@blp.auth(*MERCHANT)
@blp.response(200, ProductAdminSchema)
def get_product(product_id):
    return services.managed_product(db.session, actor=current_actor(), product_id=product_id)


@blp.patch("/products/<int:product_id>")
@blp.auth(*MERCHANT)
@blp.arguments(ProductPatchSchema)
@blp.response(200, ProductAdminSchema)
def update_product(body, product_id):
    product = services.update_product(db.session, actor=current_actor(), product_id=product_id, **body)
    commit()
    return product


def _status_route(status: str):
    def view(product_id):
        product = services.set_product_status(db.session, actor=current_actor(), product_id=product_id, status=status)
        commit()
        return product

    view.__name__ = f"{status}_product"
    view.__doc__ = {"active": "Publish: the product appears to shoppers.", "archived": "Take it off sale."}[status]
    return view


for _verb, _status in (("publish", "active"), ("archive", "archived")):
    blp.route(f"/products/<int:product_id>/{_verb}", methods=["POST"])(
        blp.auth(*MERCHANT)(blp.response(200, ProductAdminSchema)(_status_route(_status)))
    )


@blp.post("/products/<int:product_id>/skus")
@blp.auth(*MERCHANT)
@blp.arguments(SkuSchema)
@blp.response(201, SkuSchema)
def add_sku(body, product_id):
    sku = services.add_sku(db.session, actor=current_actor(), product_id=product_id, **body)
    commit()
    return sku


@blp.patch("/skus/<int:sku_id>")
@blp.auth(*MERCHANT)
@blp.arguments(SkuPatchSchema)
@blp.response(200, SkuSchema)
def update_sku(body, sku_id):
    sku = services.update_sku(db.session, actor=current_actor(), sku_id=sku_id, **body)
    commit()
    return sku


@blp.post("/skus/<int:sku_id>/stock")
@blp.auth(*MERCHANT)
@blp.arguments(StockAdjustSchema)
@blp.response(200, SkuSchema)
def adjust_stock(body, sku_id):
    """Restock (positive delta) or write off (negative); stock never goes below zero."""
    sku = services.adjust_stock(db.session, actor=current_actor(), sku_id=sku_id, delta=body["delta"])
    commit()
    return sku


@blp.post("/bundles")
@blp.auth(*MERCHANT)
@blp.arguments(BundleSchema)
@blp.response(201, BundleSchema)
def create_bundle(body):
    brand_id = acting_brand(body.pop("brand_id"))
    bundle = bundles.create_bundle(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return _bundle_view(bundle)


for _verb, _status in (("publish", "active"), ("archive", "archived")):

    def _bundle_status(bundle_id, _status=_status):
        bundle = bundles.set_bundle_status(db.session, actor=current_actor(), bundle_id=bundle_id, status=_status)
        commit()
        return _bundle_view(bundle)

    _bundle_status.__name__ = f"{_verb}_bundle"
    blp.route(f"/bundles/<int:bundle_id>/{_verb}", methods=["POST"])(
        blp.auth(*MERCHANT)(blp.response(200, BundleSchema)(_bundle_status))
    )
