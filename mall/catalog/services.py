"""Brand admins' product use cases: create, edit, SKUs, publish, archive, restock."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import audit, clock, events
from mall.catalog import rules
from mall.catalog.models import Brand, Category, Product, Sku
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity.roles import Actor

PRODUCT_FIELDS = (
    "title",
    "subtitle",
    "description",
    "selling_points",
    "images",
    "tier",
    "min_member_level",
    "category_id",
)


def _ensure_manages(actor: Actor, brand_id: int) -> None:
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("catalog.other_brand", "You can only manage your own brand's catalog.")


def get_product(session: Session, product_id: int, *, for_update: bool = False) -> Product:
    product = session.get(Product, product_id, with_for_update=for_update)
    if product is None:
        raise NotFound("product.not_found", f"Product {product_id} not found.")
    return product


def managed_product(session: Session, *, actor: Actor, product_id: int) -> Product:
    product = get_product(session, product_id)
    _ensure_manages(actor, product.brand_id)
    return product


def list_brand_products(session: Session, *, actor: Actor, brand_id: int, status: str | None = None, limit=50, after=0):
    _ensure_manages(actor, brand_id)
    query = sa.select(Product).where(Product.brand_id == brand_id, Product.id > after).order_by(Product.id).limit(limit)
    if status:
        query = query.where(Product.status == status)
    return list(session.scalars(query))


def create_product(session: Session, *, actor: Actor, brand_id: int, skus: list[dict], currency: str, **fields):
    _ensure_manages(actor, brand_id)
    brand = session.get(Brand, brand_id)
    if brand is None:
        raise Invalid("brand.unknown", f"Brand {brand_id} does not exist.", field="brand_id")
    _check_category(session, fields.get("category_id"))
    rules.check_tier(fields.get("tier", rules.Tier.PROFIT), fields.get("min_member_level"))
    product = Product(brand_id=brand_id, currency=currency, status=rules.ProductStatus.DRAFT, **fields)
    session.add(product)
    session.flush()
    for sku_fields in skus:
        _add_sku(session, product, **sku_fields)
    _refresh_price_range(session, product)
    events.record(session, "product.created", aggregate="product", aggregate_id=product.id, actor=actor)
    return product


def _check_category(session: Session, category_id: int | None) -> None:
    if category_id is not None and session.get(Category, category_id) is None:
        raise Invalid("category.unknown", f"Category {category_id} does not exist.", field="category_id")


def update_product(session: Session, *, actor: Actor, product_id: int, **fields) -> Product:
    product = managed_product(session, actor=actor, product_id=product_id)
    if product.status == rules.ProductStatus.ARCHIVED:
        raise Conflict("product.archived", "Restore an archived product before editing it.")
    _check_category(session, fields.get("category_id"))
    rules.check_tier(fields.get("tier", product.tier), fields.get("min_member_level", product.min_member_level))
    for name in PRODUCT_FIELDS:
        if name in fields:
            setattr(product, name, fields[name])
    session.flush()
    events.record(
        session, "product.updated", aggregate="product", aggregate_id=product.id, actor=actor, fields=sorted(fields)
    )
    return product


def set_product_status(session: Session, *, actor: Actor, product_id: int, status: str) -> Product:
    """Publish (draft/archived -> active) or archive. Publishing needs a sellable SKU."""
    product = managed_product(session, actor=actor, product_id=product_id)
    rules.check_transition(product.status, status)
    if status == rules.ProductStatus.ACTIVE:
        if not any(s.status == "active" for s in product.skus):
            raise Conflict("product.no_active_sku", "A product needs at least one active SKU to be published.")
        product.published_at = product.published_at or clock.now()
    product.status = status
    session.flush()
    events.record(session, f"product.{status}", aggregate="product", aggregate_id=product.id, actor=actor)
    return product


def add_sku(session: Session, *, actor: Actor, product_id: int, **fields) -> Sku:
    product = managed_product(session, actor=actor, product_id=product_id)
    sku = _add_sku(session, product, **fields)
    _refresh_price_range(session, product)
    events.record(session, "sku.created", aggregate="product", aggregate_id=product.id, actor=actor, sku_id=sku.id)
    return sku


def _add_sku(session: Session, product: Product, *, specs: dict, price: int, list_price: int | None = None, **rest):
    list_price = price if list_price is None else list_price
    rules.check_sku_prices(price, list_price)
    key = rules.spec_key(specs)
    if session.scalar(sa.select(Sku.id).filter_by(product_id=product.id, spec_key=key)) is not None:
        raise Conflict("sku.duplicate_specs", f"This product already has a SKU with specs {specs}.", field="specs")
    sku = Sku(product=product, specs=specs, spec_key=key, price=price, list_price=list_price, **rest)
    session.add(sku)
    session.flush()
    return sku


def _managed_sku(session: Session, actor: Actor, sku_id: int) -> Sku:
    sku = session.get(Sku, sku_id)
    if sku is None:
        raise NotFound("sku.not_found", f"SKU {sku_id} not found.")
    _ensure_manages(actor, sku.product.brand_id)
    return sku


def update_sku(session: Session, *, actor: Actor, sku_id: int, **fields) -> Sku:
    sku = _managed_sku(session, actor, sku_id)
    rules.check_sku_prices(fields.get("price", sku.price), fields.get("list_price", sku.list_price))
    archiving = fields.get("status", sku.status) != "active"
    others_active = any(s.status == "active" for s in sku.product.skus if s.id != sku.id)
    if archiving and sku.product.status == rules.ProductStatus.ACTIVE and not others_active:
        raise Conflict(
            "product.no_active_sku",
            "This is the product's last active SKU: archive the product instead.",
            field="status",
        )
    if "specs" in fields:
        key = rules.spec_key(fields["specs"])
        clash = sa.select(Sku.id).where(Sku.product_id == sku.product_id, Sku.spec_key == key, Sku.id != sku.id)
        if session.scalar(clash) is not None:
            raise Conflict("sku.duplicate_specs", "Another SKU of this product has these specs.", field="specs")
        sku.spec_key = key
    for name, value in fields.items():
        setattr(sku, name, value)
    session.flush()
    _refresh_price_range(session, sku.product)
    events.record(session, "sku.updated", aggregate="product", aggregate_id=sku.product_id, actor=actor, sku_id=sku.id)
    return sku


def adjust_stock(session: Session, *, actor: Actor, sku_id: int, delta: int) -> Sku:
    """Restock (+) or write off (-) in one conditional update, so it never races an order."""
    sku = _managed_sku(session, actor, sku_id)
    within = Sku.stock + delta >= 0 if delta < 0 else Sku.stock + delta <= rules.MAX_STOCK
    result = session.execute(
        sa.update(Sku).where(Sku.id == sku_id, within).values(stock=Sku.stock + delta),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:
        if delta < 0:
            raise Conflict("sku.stock_negative", "Stock cannot go below zero.", field="delta")
        raise Conflict("sku.stock_too_high", f"Stock cannot exceed {rules.MAX_STOCK}.", field="delta")
    session.refresh(sku)
    audit.record(session, action="sku.restocked", object_type="sku", object_id=sku.id, brand_id=sku.product.brand_id,
                 before={"stock": sku.stock - delta}, after={"stock": sku.stock})  # fmt: skip
    events.record(
        session,
        "sku.restocked",
        aggregate="product",
        aggregate_id=sku.product_id,
        actor=actor,
        sku_id=sku.id,
        delta=delta,
        stock=sku.stock,
    )
    return sku


def _refresh_price_range(session: Session, product: Product) -> None:
    """Keep the product's price_min/max (used to sort and filter listings) equal to its active SKUs'."""
    low, high = session.execute(
        sa.select(sa.func.min(Sku.price), sa.func.max(Sku.price)).where(
            Sku.product_id == product.id, Sku.status == "active"
        )
    ).one()
    product.price_min, product.price_max = low or 0, high or 0
    session.flush()
