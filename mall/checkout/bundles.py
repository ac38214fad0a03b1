"""Bundle lines of a cart at checkout (ADR 0010): each becomes one priced line per part, `quantity` the part's units
in all the bundles bought; the pricing pipeline's bundle step splits the bundle price over them."""

from __future__ import annotations

import functools
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.cart import services as cart_services
from mall.cart.services import PricingLine, PricingProduct, PricingSku
from mall.catalog.models import Brand, Bundle, BundleItem, Product, Sku
from mall.checkout import pricing
from mall.checkout.models import ShippingPolicy
from mall.db import among


class Part(NamedTuple):
    units: int  # of the SKU in one bundle
    sku: PricingSku
    product: PricingProduct


class BundleView(NamedTuple):
    id: int
    title: str
    price: int
    currency: str
    on_sale: bool  # the bundle and its brand are active
    policy: tuple[int | None, int | None]  # the brand's shipping (fee, free_above); NULLs without one
    parts: list[Part]


def bundles_of(session: Session, bundle_ids: set[int]) -> dict[int, BundleView]:
    """The bundles with their parts in the order they were listed, as plain values; one query."""
    found: dict[int, BundleView] = {}
    params = {"_bundles": sorted(bundle_ids)}
    for row in session.execute(_bundles_query(session.get_bind().dialect.name), params):
        bundle_id, title, price, currency, on_sale, fee, free_above, units, *rest = row
        view = found.setdefault(
            bundle_id, BundleView(bundle_id, title, price, currency, on_sale, (fee, free_above), [])
        )
        n = len(PricingSku._fields)
        view.parts.append(Part(units, PricingSku(*rest[:n]), PricingProduct(*rest[n:])))
    return found


@functools.cache
def _bundles_query(dialect: str) -> sa.Select:
    on_sale = sa.and_(Bundle.status == "active", Brand.status == "active").label("on_sale")
    columns = [getattr(Sku, name) for name in PricingSku._fields] + [
        getattr(Product, n) for n in PricingProduct._fields
    ]
    return (
        sa.select(Bundle.id, Bundle.title, Bundle.price, Bundle.currency, on_sale, ShippingPolicy.fee,
                  ShippingPolicy.free_above, BundleItem.quantity, *columns)
        .join(BundleItem, BundleItem.bundle_id == Bundle.id).join(Brand, Brand.id == Bundle.brand_id)
        .join(Sku, Sku.id == BundleItem.sku_id).join(Product, Product.id == Sku.product_id)
        .outerjoin(ShippingPolicy, ShippingPolicy.brand_id == Bundle.brand_id)
        .where(among(Bundle.id, "_bundles", dialect)).order_by(Bundle.id, BundleItem.id)
    )  # fmt: skip


def problem(line: PricingLine, bundle: BundleView | None, member_level: int) -> dict | None:
    """Why a bundle line cannot be bought now (the first part that stops it), or None. Like a SKU line's reasons,
    for every part at the units the line needs; and `price_above_parts` (see pricing.bundle_price_problem)."""
    if bundle is None or not bundle.on_sale or not bundle.parts:
        return {"line_id": line.id, "sku_id": None, "bundle_id": line.bundle_id, "reason": "archived"}
    for part in bundle.parts:
        needed = line._replace(quantity=part.units * line.quantity)
        if reason := cart_services.line_problem(needed, part.sku, part.product, member_level):
            return {"line_id": line.id, "sku_id": part.sku.id, "bundle_id": bundle.id, "reason": reason}
    if reason := pricing.bundle_price_problem(bundle.price, [(p.sku.list_price, p.units) for p in bundle.parts]):
        return {"line_id": line.id, "sku_id": None, "bundle_id": bundle.id, "reason": reason}
    return None


def priced_parts(line: PricingLine, bundle: BundleView, next_key: int) -> list[pricing.PricedLine]:
    """The line's parts as priced lines (keys `next_key`, `next_key - 1`, ...: negative, so never a cart line's id),
    at their list prices until the bundle step prices them."""
    return [
        pricing.PricedLine(
            key=next_key - i,
            sku_id=part.sku.id,
            product_id=part.product.id,
            brand_id=part.product.brand_id,
            category_id=part.product.category_id,
            title=part.product.title,
            specs=part.sku.specs,
            tier=part.product.tier,
            currency=part.product.currency,
            quantity=part.units * line.quantity,
            list_price=part.sku.list_price,
            unit_price=part.sku.list_price,
            source=line.source,
            cart_line_id=line.id,
            bundle_id=bundle.id,
            bundle_quantity=line.quantity,
            bundle_price=bundle.price,
            bundle_title=bundle.title,
        )  # fmt: skip
        for i, part in enumerate(bundle.parts)
    ]
