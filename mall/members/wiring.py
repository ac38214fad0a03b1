"""Plug members into sign-up, coupons (tag and segment audiences, bulk grants) and journeys (called at start-up)."""

from __future__ import annotations

from mall import events
from mall.members import segments, tags
from mall.notifications import guards
from mall.promotions.coupons import services as coupons


def install() -> None:
    events.react("shopper.signed_up", tags.on_signed_up)
    coupons.tag_lookup = tags.codes_of
    coupons.segment_audience = segments.audience
    guards.register("in_segment", segments.in_segment_guard)
