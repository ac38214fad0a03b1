"""Plug points into orders, refunds, sign-up and the outbox (called by the composition root, which also installs
`earning.settle` as a settlement hook)."""

from __future__ import annotations

from mall import events
from mall.members import earning, expiry, grants, policy
from mall.members.policy import PointsPolicy
from mall.notifications import guards


def install(rules: PointsPolicy) -> None:
    policy.install(rules)
    events.react("order.paid", earning.earn)  # pending lots, in the payment's transaction
    events.react("refund_lines.written", earning.reverse)  # every refund path, per refunded part of a line
    events.react("shopper.signed_up", grants.on_signed_up)
    guards.register("points_left", expiry.points_left)
