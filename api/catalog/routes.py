"""The shopper's catalog: brands, categories, product listing and detail, bundles. Public."""

from __future__ import annotations

import contextlib
import functools

import marshmallow as ma
from flask import current_app, request
from webargs.flaskparser import abort

from api.auth import MallBlueprint
from api.catalog.schemas import (
    BrandSchema,
    BundleSchema,
    CategorySchema,
    ProductDetailSchema,
    ProductListArgs,
    ProductPageSchema,
)  # fmt: skip
from api.extensions import db
from mall.catalog import bundles, queries, taxonomy
from mall.errors import NotFound

blp = MallBlueprint("catalog", __name__, description="Browse brands, categories, products and bundles")


@blp.get("/brands")
@blp.response(200, BrandSchema(many=True))
def list_brands():
    return taxonomy.list_brands(db.session)


@blp.get("/brands/<int:brand_id>")
@blp.response(200, BrandSchema)
def get_brand(brand_id):
    brand = taxonomy.get_brand(db.session, brand_id)
    if brand.status != "active":
        raise NotFound("brand.not_found", f"Brand {brand_id} not found.")
    return brand


@blp.get("/categories")
@blp.response(200, CategorySchema(many=True))
def list_categories():
    """The whole tree, flattened in path order (parents before their children)."""
    return taxonomy.list_categories(db.session)


# The two hottest routes of the mall (bench/catalog.py). The schemas document the responses,
# but the queries already build exactly those dicts (tests/api/test_catalog_browse.py checks the
# shape), so the views send them as JSON themselves: flask-smorest passes a Response through
# untouched, and marshmallow's dump of a 20-card page cost more than the whole database work.


def _query_arguments(schema: ma.Schema):
    """`@blp.arguments(schema, location="query")`, documented the same, parsed with one schema load.

    webargs' per-request machinery (a proxy over the query, the location bookkeeping, two
    wrappers) cost about as much as the listing's database work; this does what it does for a
    query string: the first value of each known key, unknown keys ignored, and on invalid input
    the same 422 (messages under "query") through flask-smorest's error handler.
    """

    def decorator(view):
        documented = blp.arguments(schema, location="query")(view)  # only for its OpenAPI entry

        @functools.wraps(view)
        def parse_then_view(*args, **kwargs):
            try:
                parsed = schema.load(request.args.to_dict(), unknown=ma.EXCLUDE)
            except ma.ValidationError as error:
                abort(blp.ARGUMENTS_PARSER.DEFAULT_VALIDATION_STATUS, exc=error, messages={"query": error.messages})
            return view(parsed, *args, **kwargs)

        parse_then_view._apidoc = documented._apidoc  # flask-smorest reads the documentation from here
        return parse_then_view

    return decorator


@blp.get("/products")
@_query_arguments(ProductListArgs())
@blp.response(200, ProductPageSchema)
def list_products(args):
    """Active products with filters, a sort, and a cursor that stays correct while products are added."""
    sort, cursor, limit = args.pop("sort"), args.pop("cursor"), args.pop("limit")
    args["keyword"] = args.pop("q")
    with _read_only_connection() as connection:
        items, next_cursor = queries.list_products(
            connection, filters=queries.ListFilters(**args), sort=sort, cursor=cursor, limit=limit
        )
    return current_app.json.response({"items": items, "next_cursor": next_cursor})


@blp.get("/products/<int:product_id>")
@blp.response(200, ProductDetailSchema)
def get_product(product_id):
    with _read_only_connection() as connection:
        product = queries.product_detail(connection, product_id)
    return current_app.json.response(product)


@contextlib.contextmanager
def _read_only_connection():
    """A pooled connection in autocommit mode, for views that only read, back in the pool at once.

    Autocommit: no BEGIN before the query and no ROLLBACK after it, two round trips fewer on
    PostgreSQL, and psycopg keeps its prepared statements (a rollback discards them), so
    PostgreSQL stops parsing and planning the same statements every time. Each statement
    still sees one consistent snapshot, as under READ COMMITTED anyway. A Core connection
    rather than the request's ORM session: these reads need no identity map, and setting up
    and tearing down a session cost more than the connection itself.
    """
    with db.engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


@blp.get("/bundles")
@blp.response(200, BundleSchema(many=True))
def list_bundles():
    return [_bundle_view(b) for b in bundles.list_bundles(db.session)]


@blp.get("/bundles/<int:bundle_id>")
@blp.response(200, BundleSchema)
def get_bundle(bundle_id):
    bundle = bundles.get_bundle(db.session, bundle_id)
    if bundle.status != "active" or bundle.brand.status != "active":  # like products: a suspended brand's are gone
        raise NotFound("bundle.not_found", f"Bundle {bundle_id} not found.")
    return _bundle_view(bundle)


def _bundle_view(bundle) -> dict:
    view = {c: getattr(bundle, c) for c in ("id", "brand_id", "title", "description", "image", "price", "currency")}
    view["status"] = bundle.status
    view["items"] = [{"sku_id": i.sku_id, "quantity": i.quantity} for i in bundle.items]
    view["available_quantity"] = bundles.available_quantity(bundle)
    return view
