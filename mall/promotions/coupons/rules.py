"""What a coupon is worth on a set of lines, or why it is worth nothing (the reason codes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mall.promotions.coupons.models import Coupon, CouponTemplate

PROMOTION_PRICES = {"flash_sale", "group_buy", "member_price", "bundle", "live"}  # lines priced by a promotion step
REASONS = ("expired", "not_started", "out_of_scope", "below_threshold", "not_combinable", "currency_mismatch",
           "slot_taken")  # fmt: skip


@dataclass
class LineView:
    """The part of a priced line a coupon looks at; `payable` moves as coupons are applied."""

    key: int
    brand_id: int
    product_id: int
    category_id: int
    price_source: str
    payable: int


def in_scope(tpl: CouponTemplate, line: LineView, category_paths: dict[int, str]) -> bool:
    if line.product_id in (tpl.excluded_product_ids or []):
        return False
    if tpl.brand_id is not None and line.brand_id != tpl.brand_id:
        return False
    ids = set(tpl.scope_ids or [])
    if tpl.scope_type == "brand":
        return line.brand_id in ids
    if tpl.scope_type == "products":
        return line.product_id in ids
    if tpl.scope_type == "categories":  # a category includes its subtree
        path = category_paths.get(line.category_id, "")
        return any(f"/{cid}/" in path for cid in ids)
    return True


def evaluate(coupon: Coupon, lines: list[LineView], *, now: datetime, currency: str,
             category_paths: dict[int, str]) -> tuple[int, list[LineView], str | None]:  # fmt: skip
    """(discount, eligible lines, reason). Free shipping reports 0 here: the shipping step waives it."""
    tpl = coupon.template
    if coupon.valid_until <= now:
        return 0, [], "expired"
    if coupon.valid_from > now:
        return 0, [], "not_started"
    if tpl.currency != currency:
        return 0, [], "currency_mismatch"
    scoped = [ln for ln in lines if in_scope(tpl, ln, category_paths)]
    if not scoped:
        return 0, [], "out_of_scope"
    eligible = [
        ln for ln in scoped if ln.price_source not in PROMOTION_PRICES or ln.price_source in tpl.combinable_with
    ]
    if not eligible:
        return 0, [], "not_combinable"
    base = sum(ln.payable for ln in eligible)
    if base < tpl.threshold or base <= 0:
        return 0, eligible, "below_threshold"
    return _amount(tpl, base), eligible, None


def _amount(tpl: CouponTemplate, base: int) -> int:
    if tpl.value_type in ("fixed", "threshold"):
        return min(tpl.amount, base)
    if tpl.value_type == "percent":
        off = base * tpl.percent_bp // 10_000
        return min(off, tpl.cap) if tpl.cap is not None else off
    return 0  # free_shipping


def slot(tpl: CouponTemplate) -> str:
    """At most one coupon per slot in one order: one platform coupon and one per brand."""
    return "platform" if tpl.brand_id is None else f"brand:{tpl.brand_id}"
