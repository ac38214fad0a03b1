"""Shopper-facing catalog reads: lean Core queries on indexed columns, keyset pagination.

Literal `status = 'active'` predicates (not bound parameters) let PostgreSQL match the
partial indexes even with prepared, generic plans.

These are the hottest queries of the mall (bench/catalog.py measures them), so:
- one round trip per page or product: a page's brand names and stock flags, a product's
  SKUs, come back with it;
- statements are built once per shape (which filters, which sort, the page size) with
  bound parameters, and reused: no per-request statement building or cache-key hashing;
- the page is chosen before anything else is computed for it (see `list_products`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from mall.catalog.models import Brand, Category, Product, Sku
from mall.errors import Invalid, NotFound

P, B, S, C = Product.__table__.c, Brand.__table__.c, Sku.__table__.c, Category.__table__.c
ACTIVE_PRODUCT = sa.text("products.status = 'active'")
ACTIVE_BRAND = sa.text("brands.status = 'active'")
ACTIVE_SKU = sa.text("skus.status = 'active'")
SKU_IN_STOCK = sa.text("skus.stock > 0")

# sort name -> (key column, descending?)
SORTS = {
    "newest": (P.published_at, True),
    "price_asc": (P.price_min, False),
    "price_desc": (P.price_min, True),
    "sales": (P.sales_count, True),
}

_in_stock = (
    sa.select(sa.literal_column("1"))
    .select_from(Sku.__table__)
    .where(S.product_id == P.id, ACTIVE_SKU, SKU_IN_STOCK)
    .correlate(Product.__table__)
    .exists()
)

# A suspended brand's products never show. Written as "not one of the (few) suspended brands"
# rather than as a join, so that the planner walks the listing's ordered index and stops after
# one page, instead of starting from the brands table and sorting every active product.
_BRAND_NOT_SUSPENDED = P.brand_id.not_in(sa.select(B.id).where(sa.text("brands.status <> 'active'")))

_PAGE_COLUMNS = (
    P.id,
    P.title,
    P.subtitle,
    P.images[0].as_string().label("image"),  # a card shows the first image: no need to decode them all
    P.tier,
    P.min_member_level,
    P.currency,
    P.price_min,
    P.price_max,
    P.sales_count,
    P.published_at,
    P.brand_id,
)

_PAGE_INDEX = {column.name: i for i, column in enumerate(_PAGE_COLUMNS)}

# The ids of a category and everything below it (materialised path prefix).
_SUBTREE = sa.select(C.id).where(
    C.path.startswith(sa.select(C.path).where(C.id == sa.bindparam("category_id")).scalar_subquery())
)


@dataclass(frozen=True)
class ListFilters:
    brand_id: int | None = None
    category_id: int | None = None
    keyword: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    tier: str | None = None
    in_stock: bool | None = None


def list_products(
    session: Session | Connection,
    *,
    filters: ListFilters,
    sort: str = "newest",
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[dict], str | None]:
    """One page of active products and the cursor of the next page (None on the last page).

    `session` may be a Session or a Core Connection: the statements are Core.
    """
    key, _desc = SORTS[sort]
    params: dict = {}
    if cursor:
        params["after_key"], params["after_id"] = _decode_cursor(cursor, sort)
    f = filters
    if f.category_id is not None:
        # The subtree's ids first (a small table), then `category_id IN (ids)`: with the ids in
        # hand the planner can tell a big subtree (walk the sort index) from one leaf (fetch its
        # few rows), which it cannot from a `path LIKE (subquery)` inside the same statement.
        params["category_ids"] = session.execute(_SUBTREE, {"category_id": f.category_id}).scalars().all()
        if not params["category_ids"]:
            return [], None
    if f.brand_id is not None:
        params["brand_id"] = f.brand_id
    if f.keyword:
        params["keyword"] = _like_escape(f.keyword)
    if f.price_min is not None:
        params["price_min"] = f.price_min
    if f.price_max is not None:
        params["price_max"] = f.price_max
    if f.tier:
        params["tier"] = f.tier
    statement = _list_statement(sort, frozenset(params), f.in_stock, int(limit))
    rows = _fetch(session, statement, params)
    page = [_list_item(r) for r in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = rows[limit - 1]
    return page, _encode_cursor(sort, last[_PAGE_INDEX[key.name]], last[0])


@functools.lru_cache(maxsize=512)
def _list_statement(sort: str, params: frozenset[str], in_stock: bool | None, limit: int) -> sa.Select:
    """The listing statement for one shape: which parameters are given, the in-stock filter, the page size.

    Memoised: it holds SQL, never data. The LIMIT is a literal (at most 100 values) because a
    bound one makes a prepared, generic plan assume a tenth of the table will be read.
    """
    key, desc = SORTS[sort]
    clauses = [ACTIVE_PRODUCT, _BRAND_NOT_SUSPENDED]
    if "brand_id" in params:
        clauses.append(P.brand_id == sa.bindparam("brand_id"))
    if "category_ids" in params:
        clauses.append(P.category_id.in_(sa.bindparam("category_ids", expanding=True)))
    if "keyword" in params:
        clauses.append(P.title.icontains(sa.bindparam("keyword", type_=P.title.type), escape="/"))
    if "price_min" in params:
        clauses.append(P.price_min >= sa.bindparam("price_min", type_=P.price_min.type))
    if "price_max" in params:
        clauses.append(P.price_min <= sa.bindparam("price_max", type_=P.price_min.type))
    if "tier" in params:
        clauses.append(P.tier == sa.bindparam("tier"))
    if in_stock is not None:
        clauses.append(_in_stock if in_stock else ~_in_stock)
    if "after_key" in params:
        after = sa.tuple_(key, P.id)
        position = sa.tuple_(sa.bindparam("after_key", type_=key.type), sa.bindparam("after_id", type_=P.id.type))
        clauses.append(after < position if desc else after > position)
    order = (key.desc(), P.id.desc()) if desc else (key.asc(), P.id.asc())
    # The page is chosen first (one ordered index walk, LIMIT n+1); brand names and stock are
    # looked up for those rows only. Computing EXISTS(in stock) in the same SELECT as the LIMIT
    # made PostgreSQL hash every SKU on every request.
    page = (
        sa.select(*_PAGE_COLUMNS)
        .where(*clauses)
        .order_by(*order)
        .limit(sa.literal_column(str(limit + 1)))
        .subquery("page")
    )
    page_in_stock = (
        sa.select(sa.literal_column("1"))
        .select_from(Sku.__table__)
        .where(S.product_id == page.c.id, ACTIVE_SKU, SKU_IN_STOCK)
        .correlate(page)
        .exists()
    )
    page_key = page.c[key.name]
    return (
        sa.select(page, B.name.label("brand_name"), page_in_stock.label("in_stock"))
        .select_from(page.join(Brand.__table__, B.id == page.c.brand_id))
        .order_by(*((page_key.desc(), page.c.id.desc()) if desc else (page_key.asc(), page.c.id.asc())))
    )


def _like_escape(keyword: str) -> str:
    """The keyword as a literal LIKE fragment ('/' escapes): '100%' matches only '100%'."""
    return keyword.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _list_item(row) -> dict:
    # Unpacked by position (the columns of _list_statement: _PAGE_COLUMNS, brand_name, in_stock),
    # which is several times cheaper than 13 attribute lookups on a Row, 20 times a page.
    (id_, title, subtitle, image, tier, level, currency, low, high, sales, _published, brand_id, brand, in_stock) = row
    return {
        "id": id_,
        "title": title,
        "subtitle": subtitle,
        "image": image,
        "tier": tier,
        "min_member_level": level,
        "price": {"min": low, "max": high, "currency": currency},
        "sales_count": sales,
        "in_stock": bool(in_stock),
        "brand": {"id": brand_id, "name": brand},
    }


def _encode_cursor(sort: str, value, last_id: int) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat()
    raw = json.dumps([sort, value, last_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bounded_int(value) -> bool:
    """A real int that fits the BIGINT columns it is compared with (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _decode_cursor(cursor: str, sort: str):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, last_id = json.loads(raw)
        if cursor_sort != sort or not _bounded_int(last_id) or not 0 < last_id < 2**31:  # ids are INTEGER
            raise ValueError("cursor belongs to another sort")
        if sort == "newest":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:  # we only ever write aware UTC; a naive one was made by hand
                raise ValueError("naive cursor time")
        elif not _bounded_int(value):
            raise ValueError("bad cursor value")
        return value, last_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("catalog.cursor_invalid", "The cursor is not valid for this listing.", field="cursor") from exc


def product_detail(session: Session | Connection, product_id: int) -> dict:
    """A product as shoppers see it: never drafts, never a suspended brand's (a Session or a Connection)."""
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    row = _fetch(session, _detail_statement(dialect.name), {"product_id": product_id}, first=True)
    if row is None:
        raise NotFound("product.not_found", f"Product {product_id} not found.")
    (id_, title, subtitle, description, selling_points, images, status, tier, level, category_id, currency,
     low, high, sales, brand_id, brand, logo, skus) = row  # fmt: skip
    skus = sorted(skus or (), key=itemgetter("id"))
    on_sale = status == "active"
    # Keys in ProductDetailSchema's order: the route sends this dict as it is.
    return {
        "id": id_,
        "title": title,
        "subtitle": subtitle,
        "tier": tier,
        "min_member_level": level,
        "price": {"min": low, "max": high, "currency": currency},
        "sales_count": sales,
        "brand": {"id": brand_id, "name": brand, "logo_url": logo},
        "description": description,
        "selling_points": selling_points,
        "images": images,
        "status": status,
        "category_id": category_id,
        "currency": currency,
        "available": on_sale and any(s["stock"] > 0 for s in skus),
        "spec_options": _spec_options(skus),
        "skus": [
            {
                "id": s["id"],
                "specs": s["specs"],
                "price": s["price"],
                "list_price": s["list_price"],
                "stock": s["stock"],
                "available": on_sale and s["stock"] > 0,
            }
            for s in skus
        ],
    }


def _fetch(session: Session | Connection, statement: sa.Select, params: dict, *, first: bool = False):
    """The statement's rows (or first row, or None) as tuples.

    On a PostgreSQL Connection the statement's SQL, compiled once, runs straight on the psycopg
    connection underneath: SQLAlchemy's execution and result machinery cost about as much CPU
    as these indexed queries themselves, and psycopg already returns what the columns hold
    (JSON decoded, timestamps aware, booleans). Statements with an expanding IN (whose SQL
    depends on the list's length), Sessions and SQLite take the usual execute.
    """
    if isinstance(session, Connection) and session.dialect.name == "postgresql" and "category_ids" not in params:
        sql, defaults = _driver_sql(statement, session.dialect)
        cursor = session.connection.driver_connection.cursor()
        try:
            cursor.execute(sql, {**defaults, **params} if defaults else params)
            return cursor.fetchone() if first else cursor.fetchall()
        finally:
            cursor.close()
    result = session.execute(statement, params)
    return result.first() if first else result.all()


@functools.lru_cache(maxsize=1024)
def _driver_sql(statement: sa.Select, dialect) -> tuple[str, dict]:
    """The driver's SQL for a statement, and the values of the parameters the statement itself binds."""
    compiled = statement.compile(dialect=dialect)
    return str(compiled), {k: v for k, v in compiled.params.items() if v is not None}


@functools.lru_cache(maxsize=8)
def _detail_statement(dialect: str) -> sa.Select:
    """The product, its brand and its active SKUs (a JSON array) in one statement."""
    fields = ("id", S.id, "specs", S.specs, "price", S.price, "list_price", S.list_price, "stock", S.stock)
    if dialect == "postgresql":
        sku, array = sa.func.json_build_object, sa.func.json_agg
    else:  # SQLite's JSON1 functions; a JSON column is text there, so it is parsed before nesting
        sku, array = sa.func.json_object, sa.func.json_group_array
        fields = tuple(sa.func.json(f) if f is S.specs else f for f in fields)
    pairs = [sa.literal_column(f"'{f}'") if isinstance(f, str) else f for f in fields]
    skus = (
        sa.select(array(sku(*pairs)))
        .where(S.product_id == P.id, ACTIVE_SKU)
        .correlate(Product.__table__)
        .scalar_subquery()
    )
    return (
        sa.select(
            P.id,
            P.title,
            P.subtitle,
            P.description,
            P.selling_points,
            P.images,
            P.status,
            P.tier,
            P.min_member_level,
            P.category_id,
            P.currency,
            P.price_min,
            P.price_max,
            P.sales_count,
            P.brand_id,
            B.name.label("brand_name"),
            B.logo_url.label("brand_logo"),
            sa.type_coerce(skus, sa.JSON).label("skus"),
        )  # fmt: skip
        .select_from(Product.__table__.join(Brand.__table__, B.id == P.brand_id))
        .where(P.id == sa.bindparam("product_id"), sa.text("products.status <> 'draft'"), ACTIVE_BRAND)
    )


def _spec_options(skus) -> dict[str, list[str]]:
    """{"colour": ["red", "blue"], "size": ["S", "M"]} in first-seen order, for the SKU picker."""
    options: dict[str, list[str]] = {}
    for sku in skus:
        for name, value in sku["specs"].items():
            values = options.setdefault(name, [])
            if value not in values:
                values.append(value)
    return options
