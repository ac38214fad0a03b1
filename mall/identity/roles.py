"""Who may act, and the principal a service is told about."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    SHOPPER = "shopper"
    HOST = "host"  # live-stream host
    GUIDE = "guide"  # in-store guide (导购)
    BRAND_ADMIN = "brand_admin"
    PLATFORM_ADMIN = "platform_admin"


# Roles that act for one brand and must carry its id.
BRAND_SCOPED = frozenset({Role.GUIDE, Role.BRAND_ADMIN})
# Who runs a brand's or the platform's business: the roles of the admin (merchant) routes.
MERCHANT = (Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int
    role: Role
    brand_id: int | None = None

    def can_manage_brand(self, brand_id: int) -> bool:
        return self.role == Role.PLATFORM_ADMIN or (self.role == Role.BRAND_ADMIN and self.brand_id == brand_id)
