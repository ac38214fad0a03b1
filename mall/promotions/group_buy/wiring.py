"""Plug group-buy into payments and cancellations, and its closing-reminder guard into the outbox."""

from __future__ import annotations

from mall import events
from mall.notifications import guards
from mall.promotions.group_buy import services
from mall.promotions.group_buy.models import Group


def _still_forming(session, user_id: int, guard: dict) -> bool:
    group = session.get(Group, guard["group_id"])
    return group is not None and group.status == "forming"


def install() -> None:
    events.react("order.paid", services.on_paid)
    events.react("order.cancelled", services.on_cancelled)
    guards.register("group_forming", _still_forming)
