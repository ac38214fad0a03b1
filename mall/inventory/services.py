"""Stock moves. Every change is one conditional UPDATE checked by its row count: never read-decide-write."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.catalog.models import Sku
from mall.errors import Conflict


def reserve(session: Session, quantities: dict[int, int]) -> None:
    """Take `quantity` of each SKU or nothing (the caller's transaction rolls back on failure).

    SKUs are locked in id order so two orders over the same SKUs cannot deadlock.
    """
    for sku_id in sorted(quantities):
        qty = quantities[sku_id]
        result = session.execute(
            sa.update(Sku)
            .where(Sku.id == sku_id, Sku.stock >= qty, Sku.status == "active")
            .values(stock=Sku.stock - qty),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount != 1:
            raise Conflict("stock.insufficient", f"Not enough stock for SKU {sku_id}.", sku_id=sku_id)


def release(session: Session, quantities: dict[int, int]) -> None:
    """Give stock back. Callers guarantee exactly-once by guarding with their own state change."""
    for sku_id in sorted(quantities):
        session.execute(
            sa.update(Sku).where(Sku.id == sku_id).values(stock=Sku.stock + quantities[sku_id]),
            execution_options={"synchronize_session": False},
        )
