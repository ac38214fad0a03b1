"""Plug live prices (which take the live quota in a placement's quote) into the pricing pipeline, and the quota's
give-back into cancellation (called once at start-up by the composition root)."""

from __future__ import annotations

from mall import events
from mall.checkout import pricing as pipeline
from mall.live import pricing


def install() -> None:
    pipeline.register("promotion_price", pricing.apply_live_prices)
    events.react("order.cancelled", pricing.give_back)
