"""When marketing may reach a shopper: quiet hours in shop time and a daily cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class MarketingRules:
    timezone: str = "Asia/Shanghai"
    quiet_start: time = time(22, 0)
    quiet_end: time = time(8, 0)
    daily_cap: int = 2

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def in_quiet_hours(self, at: datetime) -> bool:
        local = at.astimezone(self.zone).time()
        if self.quiet_start <= self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end

    def quiet_ends_after(self, at: datetime) -> datetime:
        """The first moment at or after `at` outside quiet hours (aware UTC)."""
        local = at.astimezone(self.zone)
        end = local.replace(hour=self.quiet_end.hour, minute=self.quiet_end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(ZoneInfo("UTC"))

    def day_start(self, at: datetime) -> datetime:
        """Midnight of `at`'s shop-local day, in UTC: the cap counts per shop calendar day."""
        local = at.astimezone(self.zone).replace(hour=0, minute=0, second=0, microsecond=0)
        return local.astimezone(ZoneInfo("UTC"))


def parse_hours(spec: str) -> tuple[time, time]:
    """'22:00-08:00' -> (22:00, 08:00)."""
    start, _, end = spec.partition("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
