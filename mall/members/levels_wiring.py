"""Plug member levels into payments, refunds and the pricing pipeline (called by the composition root after the
live prices and the points: a level's member price comes after every other promotion price, and the points of
the payment that raises a level are earned at the level the member paid at)."""

from __future__ import annotations

from mall import events
from mall.checkout import pricing
from mall.members import growth, level_pricing, levels


def install(programme: growth.Programme) -> None:
    growth.install(programme)
    events.react("order.paid", levels.on_paid)  # upgrades at payment (ADR 0030)
    events.react("refund_lines.written", levels.on_refunded)  # growth taken back per refund, every refund path
    pricing.register("promotion_price", level_pricing.member_price)
    for name, fact in level_pricing.FACTS.items():
        pricing.register_shopper_fact(name, fact)
