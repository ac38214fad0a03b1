"""Quote the chosen cart lines: build priced lines, run the pricing pipeline, report problems."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.cart import services as cart_services
from mall.cart.models import Cart
from mall.catalog.models import Product
from mall.checkout import bundles, pricing
from mall.checkout.models import ShippingPolicy
from mall.errors import Forbidden, Invalid
from mall.identity.models import SHIPPING_FIELDS, Address, User
from mall.identity.services import address_not_found

# The shopper's address asked for, as an order copies it.
ShippingAddress = NamedTuple("ShippingAddress", [(name, str) for name in SHIPPING_FIELDS])


@dataclass
class QuoteResult:
    quote: pricing.Quote
    cart_id: int | None
    problems: list[dict]
    address: ShippingAddress | None = None  # the quote does not price by it yet


def quote(
    session: Session,
    *,
    shopper_id: int,
    line_ids: list[int],
    address_id: int | None = None,
    coupon_ids: tuple[int, ...] | None = None,
    points: int = 0,
    placing: bool = False,
) -> QuoteResult:
    """Deterministic: the same lines, prices and inputs always give the same numbers.
    `coupon_ids=None` applies the best combination of the shopper's coupons; `()` applies none.
    `address_id`: must be one of the shopper's addresses (another's is reported missing).
    `placing`: the quote of a placement, in its transaction (steps may take what they price, e.g. a live quota)."""
    # One query: the shopper's role and level, their cart, the facts steps asked for, the address, and the chosen
    # lines of the cart with their brand's shipping policy, one row per line. No cart: no line of it can be
    # quoted (a quote writes nothing).
    facts = tuple(pricing.SHOPPER_FACTS.items())  # the registrations themselves: the query is built per set
    query = _quote_query(facts, with_address=address_id is not None, dialect=session.get_bind().dialect.name)
    params = {"_shopper": shopper_id, "_address": address_id, "_lines": sorted(set(line_ids))}
    found = session.execute(query, params).all()
    user = found[0] if found else None
    if user is None or user.role != "shopper":
        raise Forbidden("checkout.shoppers_only", "Only shoppers check out.")
    start = 3 + len(facts)  # role, level, cart id, the facts; then the address's id and fields; then the lines
    address = None
    if address_id is not None:
        if user[start] is None:
            raise address_not_found(address_id)
        address = ShippingAddress(*user[start + 1 : start + 1 + len(SHIPPING_FIELDS)])
        start += 1 + len(SHIPPING_FIELDS)
    rows = [row for r in found if (row := cart_services.pricing_row(r, start)) is not None]
    unknown = set(line_ids) - {line.id for line, *_ in rows}
    if unknown or not line_ids:
        raise Invalid("checkout.line_unknown", f"Not in your cart: {sorted(unknown) or 'no lines chosen'}.",
                      field="line_ids")  # fmt: skip
    lines, problems, currencies, policies = _lines_of(session, rows, user.member_level)
    if len(currencies) > 1:
        raise Invalid("checkout.mixed_currency", "Lines in different currencies cannot be paid together.")
    ctx = pricing.PricingContext(
        shopper_id=shopper_id, member_level=user.member_level, points=points,
        coupon_ids=None if coupon_ids is None else tuple(coupon_ids), shipping_policies=policies,
        session=session, facts={name: user._mapping[f"fact_{name}"] for name, _ in facts}, placing=placing,
    )  # fmt: skip
    return QuoteResult(pricing.price(pricing.Quote(currencies.pop(), lines), ctx), user.cart_id, problems, address)


def _lines_of(session: Session, rows: list, member_level: int) -> tuple[list, list[dict], set[str], dict]:
    """The priced lines of the chosen cart lines (a bundle's line gives one per part), the problems found, the
    currencies and the brands' shipping policies."""
    lines, problems, currencies, policies = [], [], set(), {}
    bundled = {line.bundle_id for line, *_ in rows if line.bundle_id is not None}
    found = bundles.bundles_of(session, bundled) if bundled else {}
    for line, sku, product, policy in rows:
        if line.bundle_id is None:
            if reason := cart_services.line_problem(line, sku, product, member_level):
                problems.append({"line_id": line.id, "sku_id": sku.id, "reason": reason})
            lines.append(_priced_line(line, sku, product))
            currencies.add(product.currency)
            if policy[0] is not None:
                policies[product.brand_id] = policy
            continue
        bundle = found.get(line.bundle_id)
        if found_problem := bundles.problem(line, bundle, member_level):
            problems.append(found_problem)
        if bundle is not None and bundle.parts:
            lines += bundles.priced_parts(line, bundle, next_key=-len(lines) - 1)
            currencies.add(bundle.currency)
            if bundle.policy[0] is not None:
                policies[bundle.parts[0].product.brand_id] = bundle.policy
    return lines, problems, currencies, policies


@functools.cache
def _quote_query(facts: tuple[tuple[str, object], ...], *, with_address: bool, dialect: str) -> sa.Select:
    """The shopper (:_shopper) with their cart's id, the registered facts, (:_address) the address's id and the
    fields an order copies, then the chosen lines (:_lines) with each brand's shipping policy (fee, free_above;
    NULLs without one). Plain columns, no entities: what the quote reads and nothing else. Built once."""
    query = (
        sa.select(User.role, User.member_level, Cart.id.label("cart_id")).outerjoin(Cart, Cart.user_id == User.id)
        .where(User.id == sa.bindparam("_shopper"))
        .add_columns(*(build(User.id).label(f"fact_{name}") for name, build in facts))
    )  # fmt: skip
    if with_address:
        mine = (Address.id == sa.bindparam("_address")) & (Address.user_id == User.id)
        query = query.add_columns(Address.id, *(Address.__table__.c[name] for name in SHIPPING_FIELDS))
        query = query.outerjoin(Address, mine)
    query = cart_services.with_pricing_lines(query, dialect)
    return query.outerjoin(ShippingPolicy, ShippingPolicy.brand_id == Product.brand_id).add_columns(
        ShippingPolicy.fee, ShippingPolicy.free_above
    )


def _priced_line(line, sku, product) -> pricing.PricedLine:
    return pricing.PricedLine(
        key=line.id, sku_id=sku.id, product_id=product.id, brand_id=product.brand_id,
        category_id=product.category_id, title=product.title, specs=sku.specs, tier=product.tier,
        currency=product.currency, quantity=line.quantity, list_price=sku.list_price, unit_price=sku.price,
        source=line.source, cart_line_id=line.id,
    )  # fmt: skip


def _shipping_policies(session: Session, brand_ids: set[int]) -> dict[int, tuple[int, int | None]]:
    rows = session.scalars(sa.select(ShippingPolicy).where(ShippingPolicy.brand_id.in_(brand_ids)))
    return {p.brand_id: (p.fee, p.free_above) for p in rows}


def _line_id(line: pricing.PricedLine) -> int:
    """The cart line a priced line comes from (a bundle's parts share their bundle's)."""
    return line.key if line.cart_line_id is None else line.cart_line_id


def _bundles_as_dicts(q: pricing.Quote) -> list[dict]:
    """Each bundle line as the shopper chose it: the bundle's price, and what its parts add up to."""
    parts: dict[int, list[pricing.PricedLine]] = {}
    for line in q.lines:
        if line.bundle_id is not None:
            parts.setdefault(line.cart_line_id, []).append(line)
    found = []
    for line_id, lines in parts.items():
        first, payable = lines[0], sum(ln.payable for ln in lines)
        subtotal = first.bundle_price * first.bundle_quantity  # the bundle's price: its discount is the parts'
        found.append({"line_id": line_id, "bundle_id": first.bundle_id, "title": first.bundle_title,
                      "quantity": first.bundle_quantity, "unit_price": first.bundle_price, "subtotal": subtotal,
                      "discount_total": subtotal - payable, "payable": payable,
                      "sku_ids": [ln.sku_id for ln in lines]})  # fmt: skip
    return found


def quote_as_dict(result: QuoteResult) -> dict:
    q = result.quote
    by_key = {line.key: line for line in q.lines}
    return {
        "currency": q.currency,
        "lines": [
            {
                "line_id": _line_id(line), "sku_id": line.sku_id, "product_id": line.product_id,
                "brand_id": line.brand_id, "title": line.title, "specs": line.specs, "quantity": line.quantity,
                "unit_price": line.unit_price, "list_price": line.list_price, "price_source": line.price_source,
                "subtotal": line.subtotal, "discounts": [{"source": s, "amount": a} for s, a in line.discounts.items()],
                "discount_total": line.discount_total, "payable": line.payable, "source": line.source,
                "bundle_id": line.bundle_id, "bundle_quantity": line.bundle_quantity,
            }
            for line in q.lines
        ],
        "bundles": _bundles_as_dicts(q),
        "brands": [
            {
                "brand_id": brand_id, "subtotal": sum(ln.subtotal for ln in q.lines_of(brand_id)),
                "discount_total": sum(ln.discount_total for ln in q.lines_of(brand_id)),
                "shipping_fee": part.shipping_fee, "shipping_waived": part.shipping_waived,
                "payable": sum(ln.payable for ln in q.lines_of(brand_id)) + part.shipping_fee,
            }
            for brand_id, part in q.brands.items()
        ],
        "discounts": [
            {"step": d.step, "source": d.source, "label": d.label, "amount": d.amount,
             "allocations": [{"line_id": _line_id(by_key[a.line_key]), "sku_id": by_key[a.line_key].sku_id,
                              "amount": a.amount} for a in d.allocations]}
            for d in q.discounts
        ],
        "totals": {"items": q.items_total, "discounts": q.discount_total, "shipping": q.shipping_total,
                   "payable": q.payable},
        "problems": result.problems,
        "coupons": q.extras.get("coupons", []),
        "applied_coupon_ids": q.extras.get("applied_coupon_ids", []),
        "points": q.extras.get("points"),
    }  # fmt: skip


def set_shipping_policy(session: Session, *, actor, brand_id: int, fee: int, free_above: int | None):
    from mall.catalog.services import _ensure_manages
    from mall.catalog.taxonomy import get_brand

    _ensure_manages(actor, brand_id)
    get_brand(session, brand_id)  # a platform admin may name any brand: one that does not exist is 404
    policy = session.get(ShippingPolicy, brand_id) or ShippingPolicy(brand_id=brand_id)
    policy.fee, policy.free_above = fee, free_above
    session.add(policy)
    session.flush()
    return policy
