"""A level's benefits in the quote (ADR 0030), read with the shopper's row (two shopper facts: no round trip).

- `member_price` (the promotion_price step, after flash, group-buy, bundle and live prices): a line still at its
  item price gets the level's discount, `discount_bp` of the unit price rounded down to the minor unit, times the
  quantity, as the line's `member_price:<level>` discount; its price source becomes `member_price` (coupons take
  it unless a template says otherwise). A line already at a promotion price does not also get the member price.
- the level's free-shipping threshold: a brand part reaching it ships free, like the brand's own threshold (the
  lower of the two counts), so the coupons step already sees that shipping is waived."""

from __future__ import annotations

import sqlalchemy as sa

from mall.checkout.pricing import Allocation, Discount, PricingContext, Quote
from mall.identity.models import User
from mall.members.level_models import MemberLevel

PRICE_SOURCE = "member_price"
FULL = 10_000


def _benefit(column):
    def fact(_user_id):
        return sa.select(column).where(MemberLevel.level == User.member_level).scalar_subquery()

    fact.__qualname__ = f"level_{column.key}"
    return fact


discount_bp = _benefit(MemberLevel.discount_bp)
free_shipping_above = _benefit(MemberLevel.free_shipping_above)
FACTS = {"level_discount_bp": discount_bp, "level_free_shipping_above": free_shipping_above}


def member_price(quote: Quote, ctx: PricingContext) -> None:
    threshold = ctx.facts.get("level_free_shipping_above")
    if threshold is not None:
        for brand_id, (fee, own) in list(ctx.shipping_policies.items()):
            ctx.shipping_policies[brand_id] = (fee, threshold if own is None else min(own, threshold))
    bp = ctx.facts.get("level_discount_bp") or 0
    if bp <= 0:
        return
    source = f"{PRICE_SOURCE}:{ctx.member_level}"
    allocations = []
    for line in quote.lines:
        if line.price_source != "item" or line.bundle_id is not None or line.key in ctx.promotion_prices:
            continue
        off = line.unit_price * bp // FULL * line.quantity
        if off > 0:
            line.price_source = PRICE_SOURCE
            line.discounts[source] = line.discounts.get(source, 0) + off
            allocations.append(Allocation(line.key, off))
    if allocations:
        quote.discounts.append(Discount("promotion_price", source, f"Level {ctx.member_level} member price",
                                        sum(a.amount for a in allocations), allocations))  # fmt: skip
