"""Catalog rules: allowed status moves, tiers, SKU validity and who may buy what."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum

from mall.errors import Conflict, Forbidden, Invalid

MAX_STOCK = 10**9  # per SKU; well inside the 32-bit stock column, so restocking never overflows it


class Tier(StrEnum):
    TRAFFIC = "traffic"  # 流量品
    HERO = "hero"  # 爆款
    PROFIT = "profit"  # 利润品
    IDENTITY = "identity"  # 身份品: members of a minimum level only


class ProductStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


PRODUCT_TRANSITIONS: dict[str, set[str]] = {
    ProductStatus.DRAFT: {ProductStatus.ACTIVE, ProductStatus.ARCHIVED},
    ProductStatus.ACTIVE: {ProductStatus.ARCHIVED},
    ProductStatus.ARCHIVED: {ProductStatus.ACTIVE},
}


def check_transition(current: str, target: str) -> None:
    if target not in PRODUCT_TRANSITIONS.get(current, set()):
        raise Conflict("product.invalid_transition", f"A {current} product cannot become {target}.")


def normalise_specs(specs: dict[str, str]) -> list[tuple[str, str]]:
    """[(name, value)] trimmed, case-folded and sorted by name: what makes two SKUs the same."""
    pairs = sorted((str(k).strip().casefold(), str(v).strip().casefold()) for k, v in specs.items())
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise Invalid("sku.specs_invalid", "Spec names must differ by more than case or spaces.", field="specs")
    if any(not name or not value for name, value in pairs):
        raise Invalid("sku.specs_invalid", "Spec names and values cannot be blank.", field="specs")
    return pairs


def spec_key(specs: dict[str, str]) -> str:
    """Order- and case-independent identity of a SKU's spec values, for uniqueness within a product.

    A digest of the canonical JSON: separators inside values cannot make two spec sets collide,
    and every spec set the API accepts fits the column.
    """
    canonical = json.dumps(normalise_specs(specs), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_sku_prices(price: int, list_price: int) -> None:
    if price < 0:
        raise Invalid("sku.price_negative", "Price cannot be negative.", field="price")
    if list_price < price:
        raise Invalid("sku.list_price_below_price", "List price cannot be below the price.", field="list_price")


def check_tier(tier: str, min_member_level: int | None) -> None:
    if tier == Tier.IDENTITY and min_member_level is None:
        raise Invalid(
            "product.member_level_required",
            "An identity product names its minimum member level.",
            field="min_member_level",
        )
    if tier != Tier.IDENTITY and min_member_level is not None:
        raise Invalid(
            "product.member_level_not_allowed",
            "Only identity products have a minimum member level.",
            field="min_member_level",
        )


def ensure_can_buy(*, member_level: int, product) -> None:
    """Identity products (身份品) are sold only to members at or above their level."""
    required = product.min_member_level
    if product.tier == Tier.IDENTITY and required is not None and member_level < required:
        raise Forbidden(
            "product.member_level_too_low",
            f"This product is for members of level {required} and above.",
            required_level=required,
        )
