"""Plug points into checkout, orders, refunds, sign-up and the outbox (called by the composition root, which also installs
`earning.settle` as a settlement hook)."""

from __future__ import annotations

from mall import events
from mall.checkout import pricing
from mall.members import checkout, earning, expiry, grants, policy, redemption
from mall.members.policy import PointsPolicy
from mall.notifications import guards


def install(rules: PointsPolicy) -> None:
    policy.install(rules)
    events.react("order.paid", earning.earn)  # pending lots, in the payment's transaction
    events.react("refund_lines.written", earning.reverse)  # every refund path, per refunded part of a line
    events.react("shopper.signed_up", grants.on_signed_up)
    guards.register("points_left", expiry.points_left)
    # redemption (ADR 0029): the quote's step, the balance read with the shopper's row, the holds' life
    pricing.register("points", checkout.apply_points)
    pricing.register_shopper_fact("points_available", checkout.points_available)
    events.react("order.placed", redemption.reserve)
    events.react("order.paid", redemption.spend)
    events.react("order.cancelled", redemption.give_back)
    events.react("refund_lines.written", redemption.recredit)
