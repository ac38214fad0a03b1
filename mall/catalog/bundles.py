"""Bundles (套餐): SKUs of one brand sold together at one price, limited by their parts' stock."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import events
from mall.catalog.models import Brand, Bundle, BundleItem, Product, Sku
from mall.catalog.services import _ensure_manages
from mall.errors import Invalid, NotFound
from mall.identity.roles import Actor


def create_bundle(
    session: Session, *, actor: Actor, brand_id: int, title: str, price: int, items: list[dict], **fields
) -> Bundle:
    _ensure_manages(actor, brand_id)
    skus = _bundle_skus(session, brand_id, items)
    if sum(i["quantity"] for i in items) < 2:
        raise Invalid("bundle.too_small", "A bundle holds at least two units.", field="items")
    currencies = {sku.product.currency for sku in skus.values()}
    if len(currencies) != 1:
        raise Invalid("bundle.mixed_currency", "All parts of a bundle share one currency.", field="items")
    if price < 0:
        raise Invalid("bundle.price_negative", "Price cannot be negative.", field="price")
    bundle = Bundle(brand_id=brand_id, title=title, price=price, currency=currencies.pop(), **fields)
    bundle.items = [BundleItem(sku_id=i["sku_id"], quantity=i["quantity"]) for i in items]
    session.add(bundle)
    session.flush()
    events.record(session, "bundle.created", aggregate="bundle", aggregate_id=bundle.id, actor=actor)
    return bundle


def _bundle_skus(session: Session, brand_id: int, items: list[dict]) -> dict[int, Sku]:
    ids = [i["sku_id"] for i in items]
    if len(set(ids)) != len(ids):
        raise Invalid("bundle.duplicate_sku", "List each SKU once, with its quantity.", field="items")
    skus = {s.id: s for s in session.scalars(sa.select(Sku).join(Product).where(Sku.id.in_(ids)))}
    for sku_id in ids:
        sku = skus.get(sku_id)
        if sku is None or sku.product.brand_id != brand_id:
            raise Invalid("bundle.sku_unknown", f"SKU {sku_id} is not one of this brand's SKUs.", field="items")
    return skus


def set_bundle_status(session: Session, *, actor: Actor, bundle_id: int, status: str) -> Bundle:
    bundle = get_bundle(session, bundle_id)
    _ensure_manages(actor, bundle.brand_id)
    bundle.status = status
    session.flush()
    events.record(session, f"bundle.{status}", aggregate="bundle", aggregate_id=bundle.id, actor=actor)
    return bundle


def get_bundle(session: Session, bundle_id: int) -> Bundle:
    bundle = session.get(Bundle, bundle_id)
    if bundle is None:
        raise NotFound("bundle.not_found", f"Bundle {bundle_id} not found.")
    return bundle


def available_quantity(bundle: Bundle) -> int:
    """How many whole bundles the parts' stock allows (0 if any part is archived or off sale,
    or the brand is suspended)."""
    if bundle.brand.status != "active":
        return 0
    counts = [
        item.sku.stock // item.quantity if item.sku.status == "active" and item.sku.product.status == "active" else 0
        for item in bundle.items
    ]
    return min(counts, default=0)


def list_bundles(session: Session, *, brand_id: int | None = None, active_only: bool = True) -> list[Bundle]:
    """Bundles by id; `active_only` (the shoppers' view) also leaves out suspended brands' bundles."""
    query = sa.select(Bundle).order_by(Bundle.id)
    if brand_id is not None:
        query = query.where(Bundle.brand_id == brand_id)
    if active_only:
        query = query.join(Brand, Brand.id == Bundle.brand_id).where(
            Bundle.status == "active", Brand.status == "active"
        )
    return list(session.scalars(query))
