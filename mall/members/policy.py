"""The deployment's points policy (from Settings, installed by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mall.money import CURRENCY_EXPONENT

ONE = 10_000  # a multiplier of 1.0, in basis points


@dataclass(frozen=True)
class PointsPolicy:
    earn_per_unit: int = 1  # points per whole currency unit a line actually paid
    # member level -> bp (absent: 1.0); the fallback when no level table is configured (ADR 0030)
    level_multipliers_bp: dict[int, int] = field(default_factory=dict)
    expiry_years: int = 1  # a lot expires at the end of the Nth calendar year after the one it was earned in
    expiry_days: int = 0  # > 0: instead, N days after it was earned
    signup_grant: int = 0
    checkin_grant: int = 10
    points_per_unit: int = 100  # N points are worth 1 currency unit
    currency: str = "CNY"
    remind_days: int = 30
    timezone: str = "Asia/Shanghai"
    max_share_bp: int = 5000  # redemption: points pay at most this share of the items' payable after discounts
    recredit_grace_days: int = 30  # returned to a lot that expired meanwhile: a new lot valid this long

    def multiplier_bp(self, level: int) -> int:
        return self.level_multipliers_bp.get(level, ONE)

    def earned(self, paid: int, currency: str, multiplier_bp: int) -> int:
        """Points for `paid` minor units of `currency` at a level's multiplier (rounded down)."""
        scale = 10 ** CURRENCY_EXPONENT[currency] * ONE
        return paid * self.earn_per_unit * multiplier_bp // scale

    def expires_at(self, earned_at: datetime) -> datetime:
        """Default: the end of the following calendar year in the shop's time zone (the first instant of the
        year after it; a lot is expired from that instant on)."""
        if self.expiry_days > 0:
            return earned_at + timedelta(days=self.expiry_days)
        local = earned_at.astimezone(ZoneInfo(self.timezone))
        return datetime(local.year + self.expiry_years + 1, 1, 1, tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)

    def local_day(self, moment: datetime) -> str:
        return moment.astimezone(ZoneInfo(self.timezone)).date().isoformat()

    def usable(self, available: int, payable: int, currency: str) -> int:
        """The most points one order can use: whole currency units (multiples of `points_per_unit`), at most the
        member's `available` and `max_share_bp` of `payable` (minor units of `currency`, shipping excluded)."""
        unit = 10 ** CURRENCY_EXPONENT[currency]
        return min(available // self.points_per_unit, payable * self.max_share_bp // ONE // unit) * self.points_per_unit

    def money(self, points: int, currency: str) -> int:
        """Minor units of `currency` that `points` (whole multiples of `points_per_unit`) pay for."""
        return points // self.points_per_unit * 10 ** CURRENCY_EXPONENT[currency]

    def value(self, points: int) -> int:
        """Minor units of `currency` that `points` are worth (rounded down)."""
        return points * 10 ** CURRENCY_EXPONENT[self.currency] // self.points_per_unit


POLICY = PointsPolicy()


def install(policy: PointsPolicy) -> None:
    global POLICY
    POLICY = policy


def current() -> PointsPolicy:
    return POLICY
