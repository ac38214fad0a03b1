"""Stock moves. Every change is one conditional UPDATE checked by its row count: never read-decide-write."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.catalog.models import Sku
from mall.errors import Conflict


def reserve(session: Session, quantities: dict[int, int]) -> None:
    """Take `quantity` of each SKU or nothing (the caller's transaction rolls back on failure).

    SKUs are locked in id order so two orders over the same SKUs cannot deadlock. On PostgreSQL all the
    SKUs go in one statement (a round trip and a statement's overhead per SKU saved on every order); SQLite
    takes one writer at a time, SKU by SKU."""
    if session.get_bind().dialect.name == "postgresql":
        check_taken(quantities, session.scalars(RESERVE_PG, reserve_params(quantities, clock.now())))
        return
    for sku_id in sorted(quantities):
        qty = quantities[sku_id]
        result = session.execute(
            sa.update(Sku)
            .where(Sku.id == sku_id, Sku.stock >= qty, Sku.status == "active")
            .values(stock=Sku.stock - qty),
            execution_options={"synchronize_session": False},
        )
        if result.rowcount != 1:
            raise _insufficient(sku_id)


def reserve_params(quantities: dict[int, int], now) -> dict:
    """The parameters of TAKE_STOCK: the SKU ids in order, their quantities, the time (named apart from those of a
    statement it is part of)."""
    ids = sorted(quantities)
    return {"stock_ids": ids, "stock_qtys": [quantities[i] for i in ids], "stock_now": now}


def check_taken(quantities: dict[int, int], taken) -> None:
    """Raise for the first SKU of `quantities` that TAKE_STOCK did not take (`taken`: the ids it returned)."""
    taken = set(taken)
    short = [sku_id for sku_id in sorted(quantities) if sku_id not in taken]
    if short:
        raise _insufficient(short[0])


def _insufficient(sku_id: int) -> Conflict:
    return Conflict("stock.insufficient", f"Not enough stock for SKU {sku_id}.", sku_id=sku_id)


# PostgreSQL, as CTEs another statement can start with (the placement writes its order in the same one): the
# wanted rows are locked in id order (the sort runs below the row-locking step, and every row the update
# touches comes through that step first), then each is taken if it has the stock; `taken` returns the ids
# taken. Parameters: `reserve_params`.
TAKE_STOCK = """
wanted AS (
    SELECT * FROM unnest(CAST(:stock_ids AS integer[]), CAST(:stock_qtys AS integer[])) AS w(id, qty)
), locked AS (
    SELECT skus.id FROM skus JOIN wanted USING (id) ORDER BY skus.id FOR UPDATE OF skus
), taken AS (
    UPDATE skus SET stock = skus.stock - wanted.qty, updated_at = :stock_now
    FROM wanted WHERE skus.id = wanted.id AND skus.id IN (SELECT id FROM locked)
      AND skus.stock >= wanted.qty AND skus.status = 'active'
    RETURNING skus.id
)"""
RESERVE_PG = sa.text(f"WITH {TAKE_STOCK}\nSELECT id FROM taken")


def release(session: Session, quantities: dict[int, int]) -> None:
    """Give stock back. Callers guarantee exactly-once by guarding with their own state change."""
    for sku_id in sorted(quantities):
        session.execute(
            sa.update(Sku).where(Sku.id == sku_id).values(stock=Sku.stock + quantities[sku_id]),
            execution_options={"synchronize_session": False},
        )
