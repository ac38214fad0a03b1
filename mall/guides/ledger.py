"""The commission ledger's core (ADR 0022): post entries, move their state, read and lock balances, audit the cache.

Entries are append-only: an amount is never changed, a mistake is corrected by another entry. A guide's balance by
state is the sum of their entries (void ones count nowhere); `guide_balances` caches it and every function here that
writes an entry or moves a state updates it in the same transaction, by an upsert that adds the change (so two
transactions adding to one guide never lose an update). Lock order, everywhere: a sub-order's row (refunds and the
settlement sweep take it first), then balance rows in (guide_id, currency) order; payouts take only balance rows.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mall import clock
from mall.db import UTCDateTime, among, insert_on_conflict
from mall.guides.ledger_models import KINDS, STATES
from mall.guides.ledger_models import Balance as BalanceRow
from mall.guides.ledger_models import CommissionEntry as Entry

CACHED = ("pending", "available", "on_hold")  # the states a balance sums (void: nowhere)
REFS = ("order_id", "sub_order_id", "order_line_id", "refund_line_id", "payout_id", "rate_card_id")

_ENTRIES, _BALANCES = Entry.__table__, BalanceRow.__table__


class Balance(NamedTuple):
    pending: int = 0
    available: int = 0
    on_hold: int = 0


def post(session: Session, *, guide_id: int, brand_id: int, currency: str, amount: int, kind: str, state: str,
         key: str, reason: dict, now: datetime | None = None, **refs) -> int | None:  # fmt: skip
    """Append an entry, and add it to the guide's cached balance. Idempotent on `key`: a repeat returns None and
    changes nothing. `refs`: order_id, sub_order_id, order_line_id, refund_line_id, payout_id, rate_card_id."""
    if kind not in KINDS or state not in STATES:
        raise ValueError(f"unknown entry kind/state {kind}/{state}")
    if set(refs) - set(REFS):
        raise TypeError(f"unknown entry refs {sorted(set(refs) - set(REFS))}")
    now = now or clock.now()
    values = {"guide_id": guide_id, "brand_id": brand_id, "currency": currency, "amount": amount, "kind": kind,
              "state": state, **{name: refs.get(name) for name in REFS}, "reason": reason, "idempotency_key": key,
              "created_at": now, "state_changed_at": now}  # fmt: skip
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and amount and state in CACHED:  # entry and balance in one round trip
        return session.scalar(_post_and_bump(tuple(values)), values)
    written = insert_on_conflict(session, _ENTRIES, values=values, index_elements=["idempotency_key"])
    if written is None:
        return None
    if amount and state in CACHED:
        _bump(session, {(guide_id, currency): {state: amount}}, now)
    return written[0]


@functools.cache
def _post_and_bump(columns: tuple[str, ...]) -> sa.Select:
    """PostgreSQL: WITH entry AS (INSERT … ON CONFLICT DO NOTHING RETURNING …), bump AS (the balance upsert of
    what `entry` wrote) SELECT entry.id: a replay writes no entry, so it adds nothing to the balance either."""
    entry = (postgresql.insert(_ENTRIES).values({name: sa.bindparam(name) for name in columns})
             .on_conflict_do_nothing(index_elements=["idempotency_key"])
             .returning(_ENTRIES.c.id, _ENTRIES.c.guide_id, _ENTRIES.c.currency, _ENTRIES.c.state,
                        _ENTRIES.c.amount, _ENTRIES.c.created_at)
             .cte("entry"))  # fmt: skip
    by_state = [sa.case((entry.c.state == state, entry.c.amount), else_=0) for state in CACHED]
    bump = postgresql.insert(_BALANCES).from_select(
        ["guide_id", "currency", *CACHED, "updated_at"],
        sa.select(entry.c.guide_id, entry.c.currency, *by_state, entry.c.created_at),
    )
    bump = bump.on_conflict_do_update(index_elements=["guide_id", "currency"], set_={
        **{state: _BALANCES.c[state] + getattr(bump.excluded, state) for state in CACHED},
        "updated_at": bump.excluded.updated_at}).returning(_BALANCES.c.guide_id)  # fmt: skip
    return sa.select(entry.c.id).add_cte(bump.cte("bump"))


def move(session: Session, *, from_state: str, to_state: str, entry_ids: list[int] | None = None,
         sub_order_ids: list[int] | None = None, now: datetime | None = None) -> int:  # fmt: skip
    """Move the entries in `from_state` among `entry_ids` (or of `sub_order_ids`) to `to_state`, in one UPDATE, and
    their sums from one cached state to the other. Returns how many moved (entries moved meanwhile are not)."""
    if (entry_ids is None) == (sub_order_ids is None):
        raise TypeError("give entry_ids or sub_order_ids")
    if from_state not in STATES or to_state not in STATES:
        raise ValueError(f"unknown entry states {from_state}/{to_state}")
    ids = sorted(entry_ids if entry_ids is not None else sub_order_ids)
    if not ids:
        return 0
    now = now or clock.now()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # the entries and the balances in one statement: a settlement batch's round trips
        return session.scalar(_move_and_bump(entry_ids is not None, from_state, to_state), {"_ids": ids, "_now": now})
    moved = session.execute(_move(dialect, entry_ids is not None),
                            {"_ids": ids, "_from": from_state, "_to": to_state, "_now": now}).all()  # fmt: skip
    changes: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for guide_id, currency, amount in moved:
        if from_state in CACHED:
            changes[guide_id, currency][from_state] -= amount
        if to_state in CACHED:
            changes[guide_id, currency][to_state] += amount
    _bump(session, changes, now)
    return len(moved)


@functools.cache
def _move(dialect: str, by_entry: bool) -> sa.Update:
    """UPDATE … SET state WHERE state = :_from AND (id | sub_order_id) among :_ids RETURNING guide, currency,
    amount: built once per dialect (the partial index on pending entries' sub_order_id serves the settlement)."""
    column = _ENTRIES.c.id if by_entry else _ENTRIES.c.sub_order_id
    return (
        _ENTRIES.update()
        .where(among(column, "_ids", dialect), _ENTRIES.c.state == sa.bindparam("_from"))
        .values(state=sa.bindparam("_to"), state_changed_at=sa.bindparam("_now"))
        .returning(_ENTRIES.c.guide_id, _ENTRIES.c.currency, _ENTRIES.c.amount)
    )


@functools.cache
def _move_and_bump(by_entry: bool, from_state: str, to_state: str) -> sa.TextClause:
    """PostgreSQL: the UPDATE of `_move` and the balance upsert of its per-guide sums in one statement (balance rows
    taken in (guide_id, currency) order, like `_bump`); answers how many entries moved."""
    column = "id" if by_entry else "sub_order_id"
    deltas = ", ".join(
        f"{-1 if state == from_state else 1 if state == to_state else 0} * amount" for state in CACHED
    )  # a state named neither side moves nothing; void is nowhere (not in CACHED)
    added = ", ".join(f"{state} = guide_balances.{state} + excluded.{state}" for state in CACHED)
    return sa.text(f"""
        WITH moved AS (
            UPDATE guide_commission_entries SET state = '{to_state}', state_changed_at = :_now
            WHERE {column} = ANY(:_ids) AND state = '{from_state}'
            RETURNING guide_id, currency, amount),
        sums AS (SELECT guide_id, currency, SUM(amount) AS amount, COUNT(*) AS n FROM moved GROUP BY guide_id, currency),
        bump AS (
            INSERT INTO guide_balances (guide_id, currency, {", ".join(CACHED)}, updated_at)
            SELECT guide_id, currency, {deltas}, :_now FROM sums WHERE amount <> 0 ORDER BY guide_id, currency
            ON CONFLICT (guide_id, currency) DO UPDATE SET {added}, updated_at = excluded.updated_at)
        SELECT COALESCE(SUM(n), 0) FROM sums""").bindparams(
        sa.bindparam("_ids", type_=postgresql.ARRAY(sa.Integer)), sa.bindparam("_now", type_=UTCDateTime())
    )


def balance(session: Session, guide_id: int, currency: str) -> Balance:
    """The guide's cached balance (zeros if they never had an entry in `currency`)."""
    row = session.execute(sa.select(_BALANCES.c.pending, _BALANCES.c.available, _BALANCES.c.on_hold)
                          .where(_BALANCES.c.guide_id == guide_id, _BALANCES.c.currency == currency)).first()  # fmt: skip
    return Balance(*(int(v) for v in row)) if row else Balance()


def lock_balance(session: Session, guide_id: int, currency: str) -> Balance:
    """Lock the guide's balance row (created if missing) until the transaction ends, and read it: a payout takes it
    before checking `available`, so concurrent payouts and refunds cannot overdraw (PostgreSQL; SQLite has one
    writer at a time anyway)."""
    _bump(session, {(guide_id, currency): {}}, clock.now())  # exists now, and is locked by this upsert on PostgreSQL
    row = session.execute(sa.select(_BALANCES.c.pending, _BALANCES.c.available, _BALANCES.c.on_hold)
                          .where(_BALANCES.c.guide_id == guide_id, _BALANCES.c.currency == currency)
                          .with_for_update()).one()  # fmt: skip
    return Balance(*(int(v) for v in row))


def _bump(session: Session, changes: dict[tuple[int, str], dict[str, int]], now: datetime) -> None:
    """Add `changes` ((guide, currency) -> state -> amount) to the cached balances: one upsert, rows in key order."""
    if not changes:
        return
    rows = [{"g": guide_id, "c": currency, "now": now, **{state: int(delta.get(state, 0)) for state in CACHED}}
            for (guide_id, currency), delta in sorted(changes.items())]  # fmt: skip
    session.execute(_upsert(session.get_bind().dialect.name), rows)


@functools.cache
def _upsert(dialect: str):
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_BALANCES)
    stmt = insert.values(guide_id=sa.bindparam("g"), currency=sa.bindparam("c"), updated_at=sa.bindparam("now"),
                         **{state: sa.bindparam(state) for state in CACHED})  # fmt: skip
    added = {state: _BALANCES.c[state] + getattr(stmt.excluded, state) for state in CACHED}
    return stmt.on_conflict_do_update(index_elements=["guide_id", "currency"],
                                      set_={**added, "updated_at": stmt.excluded.updated_at})  # fmt: skip


_AUDIT = sa.text("""
    SELECT s.guide_id, s.currency FROM (
        SELECT guide_id, currency,
               SUM(CASE WHEN state = 'pending' THEN amount ELSE 0 END) AS pending,
               SUM(CASE WHEN state = 'available' THEN amount ELSE 0 END) AS available,
               SUM(CASE WHEN state = 'on_hold' THEN amount ELSE 0 END) AS on_hold
        FROM guide_commission_entries GROUP BY guide_id, currency) s
    LEFT JOIN guide_balances b ON b.guide_id = s.guide_id AND b.currency = s.currency
    WHERE COALESCE(b.pending, 0) <> s.pending OR COALESCE(b.available, 0) <> s.available
       OR COALESCE(b.on_hold, 0) <> s.on_hold
    UNION
    SELECT b.guide_id, b.currency FROM guide_balances b
    WHERE (b.pending <> 0 OR b.available <> 0 OR b.on_hold <> 0) AND NOT EXISTS (
        SELECT 1 FROM guide_commission_entries e WHERE e.guide_id = b.guide_id AND e.currency = b.currency)
""")


def audit(session: Session) -> list[tuple[int, str]]:
    """(guide_id, currency) of every cached balance that is not the sum of its entries; [] when the cache holds."""
    return sorted((row.guide_id, row.currency) for row in session.execute(_AUDIT))


def entries_of_lines(session: Session, order_line_ids: list[int]) -> list[Entry]:
    """The entries of these order lines, oldest first (earn, then its reversals)."""
    if not order_line_ids:
        return []
    query = sa.select(Entry).where(Entry.order_line_id.in_(sorted(order_line_ids))).order_by(Entry.id)
    return list(session.scalars(query.execution_options(populate_existing=True)))
