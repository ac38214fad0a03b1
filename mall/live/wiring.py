"""Plug live prices into the pricing pipeline and the live quota into placement and cancellation (called once
at start-up by the composition root)."""

from __future__ import annotations

from mall import events
from mall.checkout import pricing as pipeline
from mall.live import pricing


def install() -> None:
    pipeline.register("promotion_price", pricing.apply_live_prices)
    events.react("order.placed", pricing.count_sold)
    events.react("order.cancelled", pricing.give_back)
