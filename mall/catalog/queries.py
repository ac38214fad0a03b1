"""Shopper-facing catalog reads: lean Core queries on indexed columns, keyset pagination.

Literal `status = 'active'` predicates (not bound parameters) let PostgreSQL match the
partial indexes even with prepared, generic plans.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.catalog.models import Brand, Category, Product, Sku
from mall.errors import Invalid, NotFound

P, B, S = Product.__table__.c, Brand.__table__.c, Sku.__table__.c
ACTIVE_PRODUCT = sa.text("products.status = 'active'")
ACTIVE_BRAND = sa.text("brands.status = 'active'")
ACTIVE_SKU = sa.text("skus.status = 'active'")

# sort name -> (key column, descending?)
SORTS = {
    "newest": (P.published_at, True),
    "price_asc": (P.price_min, False),
    "price_desc": (P.price_min, True),
    "sales": (P.sales_count, True),
}

_in_stock = (
    sa.select(sa.literal(1))
    .select_from(Sku.__table__)
    .where(S.product_id == P.id, ACTIVE_SKU, S.stock > 0)
    .correlate(Product.__table__)
    .exists()
)

_LIST_COLUMNS = (
    P.id,
    P.title,
    P.subtitle,
    P.images,
    P.tier,
    P.min_member_level,
    P.currency,
    P.price_min,
    P.price_max,
    P.sales_count,
    P.published_at,
    P.brand_id,
    B.name.label("brand_name"),
    _in_stock.label("in_stock"),
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
    session: Session, *, filters: ListFilters, sort: str = "newest", cursor: str | None = None, limit: int = 20
) -> tuple[list[dict], str | None]:
    """One page of active products and the cursor of the next page (None on the last page)."""
    key, desc = SORTS[sort]
    query = (
        sa.select(*_LIST_COLUMNS)
        .select_from(Product.__table__.join(Brand.__table__, B.id == P.brand_id))
        .where(ACTIVE_PRODUCT, ACTIVE_BRAND, *_filter_clauses(filters))
        .order_by(key.desc() if desc else key.asc(), P.id.desc() if desc else P.id.asc())
        .limit(limit + 1)
    )
    if cursor:
        value, last_id = _decode_cursor(cursor, sort)
        after = sa.tuple_(key, P.id)
        query = query.where(after < (value, last_id) if desc else after > (value, last_id))
    rows = session.execute(query).mappings().all()
    page = [_list_item(r) for r in rows[:limit]]
    has_more = len(rows) > limit
    return page, _encode_cursor(sort, rows[limit - 1], key.name) if has_more else None


def _filter_clauses(f: ListFilters) -> list:
    clauses = []
    if f.brand_id is not None:
        clauses.append(P.brand_id == f.brand_id)
    if f.category_id is not None:
        subtree = sa.select(Category.id).where(
            Category.path.startswith(sa.select(Category.path).where(Category.id == f.category_id).scalar_subquery())
        )
        clauses.append(P.category_id.in_(subtree))
    if f.keyword:
        clauses.append(P.title.icontains(f.keyword, autoescape=True))
    if f.price_min is not None:
        clauses.append(P.price_min >= f.price_min)
    if f.price_max is not None:
        clauses.append(P.price_min <= f.price_max)
    if f.tier:
        clauses.append(P.tier == f.tier)
    if f.in_stock is not None:
        clauses.append(_in_stock if f.in_stock else ~_in_stock)
    return clauses


def _list_item(r) -> dict:
    return {
        "id": r.id,
        "title": r.title,
        "subtitle": r.subtitle,
        "image": r.images[0] if r.images else None,
        "tier": r.tier,
        "min_member_level": r.min_member_level,
        "price": {"min": r.price_min, "max": r.price_max, "currency": r.currency},
        "sales_count": r.sales_count,
        "in_stock": bool(r.in_stock),
        "brand": {"id": r.brand_id, "name": r.brand_name},
    }


def _encode_cursor(sort: str, row, key_name: str) -> str:
    value = row[key_name]
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, row["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, last_id = json.loads(raw)
        if cursor_sort != sort or not isinstance(last_id, int):
            raise ValueError("cursor belongs to another sort")
        if sort == "newest":
            value = datetime.fromisoformat(value)
        elif not isinstance(value, int):
            raise ValueError("bad cursor value")
        return value, last_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("catalog.cursor_invalid", "The cursor is not valid for this listing.", field="cursor") from exc


def product_detail(session: Session, product_id: int) -> dict:
    """A product as shoppers see it: never drafts, never a suspended brand's."""
    row = (
        session.execute(
            sa.select(Product.__table__, B.name.label("brand_name"), B.logo_url.label("brand_logo"))
            .select_from(Product.__table__.join(Brand.__table__, B.id == P.brand_id))
            .where(P.id == product_id, P.status != "draft", ACTIVE_BRAND)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("product.not_found", f"Product {product_id} not found.")
    skus = (
        session.execute(
            sa.select(S.id, S.specs, S.price, S.list_price, S.stock)
            .where(S.product_id == product_id, ACTIVE_SKU)
            .order_by(S.id)
        )
        .mappings()
        .all()
    )
    on_sale = row["status"] == "active"
    return {
        "id": row["id"],
        "title": row["title"],
        "subtitle": row["subtitle"],
        "description": row["description"],
        "selling_points": row["selling_points"],
        "images": row["images"],
        "status": row["status"],
        "tier": row["tier"],
        "min_member_level": row["min_member_level"],
        "category_id": row["category_id"],
        "currency": row["currency"],
        "price": {"min": row["price_min"], "max": row["price_max"], "currency": row["currency"]},
        "sales_count": row["sales_count"],
        "available": on_sale and any(s["stock"] > 0 for s in skus),
        "brand": {"id": row["brand_id"], "name": row["brand_name"], "logo_url": row["brand_logo"]},
        "spec_options": _spec_options(skus),
        "skus": [{**s, "available": on_sale and s["stock"] > 0} for s in skus],
    }


def _spec_options(skus) -> dict[str, list[str]]:
    """{"colour": ["red", "blue"], "size": ["S", "M"]} in first-seen order, for the SKU picker."""
    options: dict[str, list[str]] = {}
    for sku in skus:
        for name, value in sku["specs"].items():
            values = options.setdefault(name, [])
            if value not in values:
                values.append(value)
    return options
