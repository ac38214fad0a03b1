"""Order use cases: place, cancel or expire unpaid, mark paid, ship, confirm receipt."""

from __future__ import annotations

import functools
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from mall import attribution, clock
from mall.attribution import Source
from mall.cart import services as cart
from mall.catalog.models import Sku
from mall.checkout import pricing
from mall.checkout import services as checkout
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity import services as identity
from mall.identity.models import SHIPPING_FIELDS
from mall.identity.roles import Actor, Role
from mall.inventory import services as inventory
from mall.orders import creation, states
from mall.orders.models import Order, SubOrder
from mall.orders.policy import OrderPolicy
from mall.orders.transitions import move, move_or_conflict, move_sub_orders


def place_order(
    session: Session, *, shopper_id: int, line_ids: list[int], address_id: int, policy: OrderPolicy,
    expected_payable: int | None = None, coupon_ids: list[int] | None = None, points: int = 0,
) -> Order:  # fmt: skip
    """Price the chosen lines again (never trust the client's totals), reserve stock, split by brand. `points`:
    to pay with, as the quote applies them; the `order.placed` payload carries them to their reservation."""
    result = checkout.quote(session, shopper_id=shopper_id, line_ids=line_ids, address_id=address_id,
                            coupon_ids=coupon_ids, points=points, placing=True)  # fmt: skip
    if result.address is None:  # the API requires one; a direct call without one is told the same
        raise identity.address_not_found(address_id)
    if result.problems:
        raise Conflict("checkout.lines_unavailable", "Some lines cannot be bought now.", problems=result.problems)
    q = result.quote
    if expected_payable is not None and expected_payable != q.payable:
        raise Conflict("checkout.price_changed", "Prices changed since your quote.", payable=q.payable)
    order = creation.insert_order(session, shopper_id=shopper_id, quote=q, policy=policy,
                                  address=result.address._asdict(), actor=Actor(shopper_id, Role.SHOPPER),
                                  stock=_quantities(q.lines), from_cart=(result.cart_id, _cart_lines(q.lines)),
                                  coupon_ids=q.extras.get("applied_coupon_ids", []),
                                  **({"points": points} if points else {}))  # fmt: skip
    if order.payable_total == 0:  # fully discounted: nothing to collect
        mark_paid(session, order_id=order.id, amount=0, currency=order.currency, reference="zero-amount")
    return order


def place_direct(
    session: Session, *, shopper_id: int, sku_id: int, quantity: int, unit_price: int, price_source: str,
    source: dict, address_id: int, payment_window: timedelta, reserve: bool = True,
    coupon_ids: list[int] | None = None, origin: Source | None = None, free_shipping: bool = False, **event_data,
) -> Order:  # fmt: skip
    """An order for one SKU at a promotion's price, outside the cart (flash sale, group-buy): stock reserved,
    priced by the checkout's pipeline (`quote_direct`), the promotion's own payment window, the usual
    `order.placed` event (which locks the coupons applied, as a cart order's does). The line keeps the live or
    guide source the shopper came with beside the promotion's `source` (attribution.beside): `origin`, the
    link they followed, else their cart line's source of this SKU.
    `reserve=False`: the caller takes the stock itself, in the same transaction (the flash sale does it last,
    with its quota, so the hot SKU row is held only until the commit)."""
    address = identity.get_address(session, user_id=shopper_id, address_id=address_id)
    if reserve:
        inventory.reserve(session, {sku_id: quantity})
    if origin is None or origin.type not in attribution.CARRIED:
        carried = cart.carried_source(session, user_id=shopper_id, sku_id=sku_id)
    else:
        carried = origin.as_dict()
    q = quote_direct(session, shopper_id=shopper_id, sku_id=sku_id, quantity=quantity, unit_price=unit_price,
                     price_source=price_source, source=attribution.beside(source, carried), coupon_ids=coupon_ids,
                     free_shipping=free_shipping)  # fmt: skip
    return creation.insert_order(session, shopper_id=shopper_id, quote=q, policy=OrderPolicy(unpaid_timeout=payment_window),
                                 address={f: getattr(address, f) for f in SHIPPING_FIELDS},
                                 actor=Actor(shopper_id, Role.SHOPPER),
                                 coupon_ids=q.extras.get("applied_coupon_ids", []), **event_data)  # fmt: skip


def pay_if_free(session: Session, *, order: Order) -> None:
    """A promotion's order that coupons brought to nothing is paid at once, as a cart order is (the caller calls
    this once the order's own records, a group member or the flash sale's, can see the payment)."""
    if order.payable_total == 0 and order.discount_total > 0:
        mark_paid(session, order_id=order.id, amount=0, currency=order.currency, reference="zero-amount")


def quote_direct(
    session: Session, *, shopper_id: int, sku_id: int, quantity: int, unit_price: int, price_source: str,
    source: dict, coupon_ids: list[int] | tuple[int, ...] | None, free_shipping: bool = False,
) -> pricing.Quote:  # fmt: skip
    """One SKU at a promotion's price through the same pipeline and coupon rules as a cart's quote: the line's
    `price_source` is what a template's `combinable_with` must name. `coupon_ids=None`: no coupons, and no
    coupon work at all (the flash purchase's hot path); a list (even empty): the shopper's coupons are
    evaluated and listed with their reasons, and the named ones applied (or refused as the checkout refuses)."""
    sku = session.get(Sku, sku_id)
    if sku is None:
        raise NotFound("sku.not_found", f"SKU {sku_id} not found.")
    product = sku.product
    line = pricing.PricedLine(
        key=0, sku_id=sku.id, product_id=product.id, brand_id=product.brand_id, category_id=product.category_id,
        title=product.title, specs=sku.specs, tier=product.tier, currency=product.currency, quantity=quantity,
        list_price=sku.list_price, unit_price=sku.price, source=source,
    )  # fmt: skip
    with_coupons = coupon_ids is not None
    ctx = pricing.PricingContext(shopper_id=shopper_id, coupon_ids=tuple(coupon_ids or ()),
                                 promotion_prices={line.key: (price_source, unit_price)},
                                 session=session if with_coupons else None,
                                 shipping_policies=checkout._shipping_policies(session, {product.brand_id}))  # fmt: skip
    waived = {product.brand_id} if free_shipping else set()
    return pricing.price(pricing.Quote(product.currency, [line], free_shipping_brands=waived), ctx)


def _cart_lines(lines) -> list[int]:
    """The cart lines priced lines come from, once each (a bundle's parts share their bundle's line)."""
    return list(dict.fromkeys(line.cart_line_id for line in lines))


def _quantities(lines) -> dict[int, int]:
    totals: dict[int, int] = {}
    for line in lines:
        totals[line.sku_id] = totals.get(line.sku_id, 0) + line.quantity
    return totals


def get_order(
    session: Session, *, order_id: int, shopper_id: int | None = None, for_update=False, with_lines=False
) -> Order:
    """A shopper asking for someone else's order is told it does not exist. `with_lines`: its lines come with
    it, in the same query (paying reads them: sales counts, group-buy)."""
    options = [joinedload(Order.lines)] if with_lines else None
    order = session.get(Order, order_id, with_for_update=for_update, options=options)
    if order is None or (shopper_id is not None and order.user_id != shopper_id):
        raise NotFound("order.not_found", f"Order {order_id} not found.")
    return order


def list_orders(session: Session, *, shopper_id: int, status: str | None, before: int | None, limit: int):
    query = sa.select(Order).where(Order.user_id == shopper_id).order_by(Order.id.desc()).limit(limit)
    if status:
        query = query.where(Order.status == status)
    if before:
        query = query.where(Order.id < before)
    return list(session.scalars(query))


def cancel_order(session: Session, *, order_id: int, actor: Actor | None, reason: str) -> Order:
    """Cancel an unpaid order; its stock goes back exactly once (the status move is the guard). An order that
    is (or became, between the read and the move) anything but cancelled is a conflict naming its status."""
    shopper_id = actor.user_id if actor and actor.role == Role.SHOPPER else None
    order = get_order(session, order_id=order_id, shopper_id=shopper_id)
    if order.status == states.PENDING and _cancel(session, order, actor=actor, reason=reason):
        return order
    if order.status == states.CANCELLED:  # already cancelled (by a retry or the timeout job): nothing changes
        return order
    raise Conflict("order.not_cancellable", f"A {order.status} order cannot be cancelled.", order_status=order.status)


def _cancel(session: Session, order: Order, *, actor, reason: str) -> bool:
    now = clock.now()
    if not move(session, order, states.CANCELLED, actor=actor, cancelled_at=now, cancel_reason=reason):
        return False
    move_sub_orders(session, order, states.PENDING, states.CANCELLED, actor=actor)
    inventory.release(session, _quantities(order.lines))
    return True


def expire_unpaid(session: Session, *, order_id: int) -> bool:
    """The unpaid-timeout job: a no-op if the order was paid or cancelled meanwhile, or is not due yet."""
    order = session.get(Order, order_id)
    if order is None or order.status != states.PENDING or order.expires_at > clock.now():
        return False
    return _cancel(session, order, actor=None, reason="payment_timeout")


def expired_unpaid_ids(session: Session, *, limit: int = 500) -> list[int]:
    """For the periodic sweep that backs up the per-order timeout jobs."""
    query = (
        sa.select(Order.id)
        .where(sa.text("orders.status = 'pending_payment'"), Order.expires_at <= clock.now())
        .order_by(Order.expires_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def ship(session: Session, *, actor: Actor, sub_order_id: int, carrier: str, tracking_number: str, policy: OrderPolicy):
    sub = brand_sub_order(session, actor=actor, sub_order_id=sub_order_id)
    if sub.fulfilment_hold:
        raise Conflict("order.on_hold", f"Not shippable yet: {sub.fulfilment_hold}.", hold=sub.fulfilment_hold)
    now = clock.now()
    move_or_conflict(session, sub, states.SHIPPED, actor=actor, carrier=carrier, tracking_number=tracking_number,
                     shipped_at=now, auto_confirm_at=now + policy.auto_confirm_after)  # fmt: skip
    return sub


def mark_delivered(session: Session, *, actor: Actor, sub_order_id: int) -> SubOrder:
    """The carrier reports delivery (brand admin or a logistics callback)."""
    sub = brand_sub_order(session, actor=actor, sub_order_id=sub_order_id)
    move_or_conflict(session, sub, states.DELIVERED, actor=actor, delivered_at=clock.now())
    return sub


def confirm_receipt(session: Session, *, shopper_id: int, sub_order_id: int, policy: OrderPolicy) -> SubOrder:
    sub = session.get(SubOrder, sub_order_id)
    if sub is None or sub.order.user_id != shopper_id:
        raise NotFound("sub_order.not_found", f"Sub-order {sub_order_id} not found.")
    if sub.status == states.COMPLETED:
        return sub
    _complete(session, sub, actor=Actor(shopper_id, Role.SHOPPER), policy=policy)
    return sub


def _complete(session: Session, sub: SubOrder, *, actor, policy: OrderPolicy) -> bool:
    now = clock.now()
    done = move(session, sub, states.COMPLETED, actor=actor, completed_at=now,
                after_sale_deadline=now + policy.after_sale_window)  # fmt: skip
    if done and all(s.status in (states.COMPLETED, states.CLOSED) for s in sub.order.sub_orders):
        move(session, sub.order, states.COMPLETED, actor=actor)
    return done


def auto_confirm_due(session: Session, *, policy: OrderPolicy, limit: int = 500) -> int:
    """The daily receipt auto-confirm job; safe to run twice (completed sub-orders are not shipped any more)."""
    due = session.scalars(
        sa.select(SubOrder)
        .where(sa.text("sub_orders.status = 'shipped'"), SubOrder.auto_confirm_at <= clock.now())
        .order_by(SubOrder.auto_confirm_at)
        .limit(limit)
    ).all()
    return sum(_complete(session, sub, actor=None, policy=policy) for sub in due)


def brand_sub_order(session: Session, *, actor: Actor, sub_order_id: int) -> SubOrder:
    sub = session.get(SubOrder, sub_order_id)
    if sub is None:
        raise NotFound("sub_order.not_found", f"Sub-order {sub_order_id} not found.")
    if not actor.can_manage_brand(sub.brand_id):
        raise Forbidden("order.other_brand", "This sub-order belongs to another brand.")
    return sub


def list_brand_sub_orders(session: Session, *, actor: Actor, brand_id: int, status: str | None, before, limit):
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("order.other_brand", "You can only see your own brand's orders.")
    query = sa.select(SubOrder).where(SubOrder.brand_id == brand_id).order_by(SubOrder.id.desc()).limit(limit)
    if status:
        query = query.where(SubOrder.status == status)
    if before:
        query = query.where(SubOrder.id < before)
    return list(session.scalars(query))


def mark_paid(session: Session, *, order_id: int, amount: int, currency: str, reference: str) -> str:
    """Record money received for an order. Returns 'paid', 'already_paid' or 'late' (order no longer payable:
    the caller refunds it). Amount and currency must match exactly."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("order.not_found", f"Order {order_id} not found.")
    if (amount, currency) != (order.payable_total, order.currency):
        raise Invalid("payment.amount_mismatch", "Paid amount or currency does not match the order.")
    if order.status != states.PENDING:
        return "already_paid" if order.paid_at is not None else "late"
    if not move(session, order, states.PAID, paid_at=clock.now(), paid_total=amount):
        return mark_paid(session, order_id=order_id, amount=amount, currency=currency, reference=reference)
    move_sub_orders(session, order, states.PENDING, states.PAID)
    _count_sales(session, order)
    return "paid"


def _count_sales(session: Session, order: Order) -> None:
    per_product: dict[int, int] = {}
    for line in order.lines:
        per_product[line.product_id] = per_product.get(line.product_id, 0) + line.quantity
    for product_id, qty in sorted(per_product.items()):  # in id order: two payments never deadlock here
        session.execute(_count_sold(), {"_product": product_id, "_qty": qty})


@functools.cache
def _count_sold() -> sa.Update:
    from mall.catalog.models import Product

    table = Product.__table__
    return (
        table.update()
        .where(table.c.id == sa.bindparam("_product"))
        .values(sales_count=table.c.sales_count + sa.bindparam("_qty"))
    )
