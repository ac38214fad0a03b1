"""Group-buy jobs: close a group when its time is up (scheduled when it forms; a sweep backs it up)."""

from __future__ import annotations

from mall.payments.factory import gateway_for
from mall.promotions.group_buy import services
from workers import runtime
from workers.runtime import unit_of_work


def expire_group(group_id: int) -> str:
    with unit_of_work() as session:
        return services.expire(session, group_id=group_id, gateway=gateway_for(runtime.settings()))


def sweep_due_groups() -> int:
    with unit_of_work() as session:
        ids = services.due_groups(session)
    return sum(expire_group(group_id) != "noop" for group_id in ids)
