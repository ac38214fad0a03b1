"""Group-buy jobs: close a group when its time is up (scheduled when it forms; a sweep backs it up), then
settle its members one unit of work each."""

from __future__ import annotations

import logging

from mall.payments.factory import gateway_for
from mall.promotions.group_buy import services
from workers import runtime
from workers.runtime import unit_of_work

log = logging.getLogger(__name__)


def expire_group(group_id: int) -> str:
    with unit_of_work() as session:
        outcome = services.expire(session, group_id=group_id)
    if outcome == "failed":
        settle_failed_group(group_id)
    return outcome


def settle_failed_group(group_id: int) -> int:
    """Cancel or refund each member of a failed group in its own transaction: one member whose settlement
    fails (its order changed meanwhile, the database refused) is rolled back alone and left for the sweep, and
    a refund the provider does not answer stays claimed for the payment sweep; the others go on."""
    with unit_of_work() as session:
        member_ids = services.unsettled_members(session, group_id=group_id)
    gateway = gateway_for(runtime.settings())
    settled = 0
    for member_id in member_ids:
        try:
            with unit_of_work() as session:  # its refund is sent after this commits (refund.claimed)
                settled += services.settle_member(session, member_id=member_id, gateway=gateway) != "noop"
        except Exception:
            log.exception("group %s: settling member %s failed; the sweep will retry", group_id, member_id)
    return settled


def sweep_due_groups() -> int:
    """Expire the groups whose time is up, and settle failed groups' members left unsettled."""
    with unit_of_work() as session:
        due, unsettled = services.due_groups(session), services.groups_with_unsettled_members(session)
    expired = sum(expire_group(group_id) != "noop" for group_id in due)
    for group_id in unsettled:
        settle_failed_group(group_id)
    return expired
