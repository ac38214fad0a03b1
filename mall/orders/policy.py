"""Order timing rules, configurable per deployment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class OrderPolicy:
    unpaid_timeout: timedelta = timedelta(minutes=30)
    auto_confirm_after: timedelta = timedelta(days=7)  # after shipping, receipt confirms itself
    after_sale_window: timedelta = timedelta(days=7)  # after receipt; commission and points settle then
