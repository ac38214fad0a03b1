"""Plug coupons into the pipeline, orders, notifications and nudges (called once at start-up)."""

from __future__ import annotations

import functools
from datetime import timedelta

from mall import events
from mall.checkout import pricing
from mall.notifications import nudges
from mall.promotions.coupons import grants, lifecycle, services
from mall.promotions.coupons.checkout import apply_coupons, holds_coupons


def install(*, remind_before_hours: int, return_on_full_refund: bool) -> None:
    services.ON_ISSUED[:] = [
        functools.partial(services.remind_before_expiry, before=timedelta(hours=remind_before_hours))
    ]
    pricing.register("coupons", apply_coupons)
    pricing.register_shopper_fact("holds_coupons", holds_coupons)
    lifecycle.install()
    if return_on_full_refund:
        events.react("order.closed", lifecycle.return_after_full_refund)
    events.react("shopper.signed_up", grants.on_signed_up)
    nudges.recovery_coupon = grants.cart_recovery
