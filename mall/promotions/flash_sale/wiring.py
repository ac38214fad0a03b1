"""Plug flash sales into order cancellation (units go back to the quota)."""

from __future__ import annotations

from collections.abc import Callable

from mall import events
from mall.promotions.flash_sale import services
from mall.promotions.flash_sale.admission import Gate


def install(gate: Callable[[], Gate]) -> None:
    def give_back(session, event) -> None:
        services.give_back(session, gate(), order_id=event.aggregate_id)

    events.react("order.cancelled", give_back)
