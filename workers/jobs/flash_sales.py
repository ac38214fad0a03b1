"""Reconciliation: Redis counters against the database record, for live and just-ended sales."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from mall import clock
from mall.promotions.flash_sale import services
from mall.promotions.flash_sale.models import FlashItem, FlashSale
from workers.flash import gate
from workers.runtime import unit_of_work


def reconcile_flash_sales() -> list[dict]:
    now = clock.now()
    with unit_of_work() as session:
        items = session.scalars(
            sa.select(FlashItem.id).join(FlashSale)
            .where(FlashSale.starts_at <= now, FlashSale.ends_at > now - timedelta(hours=1))
        ).all()  # fmt: skip
    found = []
    for item_id in items:  # one unit of work each: the item's row is held only while its counters are reloaded
        with unit_of_work() as session:
            found.append(services.reconcile(session, gate(), item_id=item_id))
    return found
