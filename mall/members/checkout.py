"""The pricing pipeline's `points` step (ADR 0029): N points pay 1 currency unit, in whole units, at most
POINTS_MAX_SHARE_BP of what the items still cost after promotions and coupons (shipping is priced after it and is
never paid with points), allocated to the lines like any discount (source `points`), so refunds, commission and
earning see it.

The member's available balance comes with the shopper's row when the quote starts (the `points_available` shopper
fact): the step itself runs no query. The balance may count a lot that expired since the last hourly sweep; the
reservation at placement takes only unexpired lots and refuses (409 `points.insufficient`) what is not there.
"""

from __future__ import annotations

import sqlalchemy as sa

from mall.checkout.pricing import PricingContext, Quote
from mall.errors import Conflict, Invalid
from mall.members import policy
from mall.members.points_models import PointsBalance

SOURCE = "points"


def points_available(user_id):
    """The shopper fact: the member's cached available points (NULL without a balance row: none)."""
    return sa.select(PointsBalance.available).where(PointsBalance.user_id == user_id).scalar_subquery()


def apply_points(quote: Quote, ctx: PricingContext) -> None:
    """Report the most the shopper can use; apply what they asked for, or refuse it with the reason (a quote and
    a placement refuse alike: the shopper asked for a number the quote showed the limit of, so nothing is clamped
    behind their back, as Youzan's checkout does not)."""
    rules = policy.current()
    available = int(ctx.facts.get("points_available") or 0)
    payable = sum(line.payable for line in quote.lines)
    most = rules.usable(available, payable, quote.currency) if quote.currency == rules.currency else 0
    asked = ctx.points
    if asked:
        if asked % rules.points_per_unit:
            raise Invalid("points.not_whole_units", f"Points are used {rules.points_per_unit} at a time.",
                          field="points", points_per_unit=rules.points_per_unit)  # fmt: skip
        if asked > available:
            raise Conflict("points.insufficient", "Not enough available points.", available=available)
        if asked > most:
            raise Invalid("points.over_limit", f"At most {most} points can pay for this order.", field="points",
                          max_points=most, max_share_bp=rules.max_share_bp)  # fmt: skip
        quote.apply_discount(step="points", source=SOURCE, label=f"{asked} points", lines=quote.lines,
                             amount=rules.money(asked, quote.currency))  # fmt: skip
    quote.extras["points"] = {
        "available": available, "points_per_unit": rules.points_per_unit, "max_share_bp": rules.max_share_bp,
        "max_points": most, "max_value": rules.money(most, quote.currency),
        "applied_points": asked, "applied_value": rules.money(asked, quote.currency),
    }  # fmt: skip


def applied(quote: Quote) -> int:
    """The points a priced quote uses (0 if the step did not run)."""
    return (quote.extras.get("points") or {}).get("applied_points", 0)
