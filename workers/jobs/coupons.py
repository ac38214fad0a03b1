"""Coupon jobs: bulk grants in batches (progress visible), expiry, birthday-month grants."""

from __future__ import annotations

from mall.promotions.coupons import grants, lifecycle
from workers.runtime import unit_of_work


def run_bulk_grant(bulk_id: int) -> None:
    """One batch per transaction, so progress shows while it runs and a crash resumes where it stopped."""
    finished = False
    while not finished:
        with unit_of_work() as session:
            finished = grants.run_bulk_batch(session, bulk_id=bulk_id)


def expire_coupons() -> int:
    with unit_of_work() as session:
        return lifecycle.expire_due(session)


def birthday_coupons() -> int:
    with unit_of_work() as session:
        return grants.birthday_month(session)
