"""The review of held commission (ADR 0024): a brand admin lists the brand's held entries with why they are held,
and releases them (-> pending, or available if the sub-order has already settled) or voids them (-> void: the
amount leaves the balance), always with a reason. A guide sees their held entries with a neutral reason only.

An entry moves by one conditional UPDATE (`state = 'on_hold'`), so of two reviews racing on it only one moves it
and moves the cached balance, in the same transaction (`guide_balances`). A held entry's held reversals (a refund
of the same line while it was held) move with it, so a released or voided earn never leaves its reversal behind.
Reviewing again what was already decided the same way changes nothing (idempotent); the opposite decision is 409.
A release locks the sub-order row (FOR SHARE) before reading `settled_at`: a settlement sweep racing it either
settles first (the entry is released to available) or waits for the release to commit and then makes the released
pending entry available itself."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.guides.hold_models import HoldReview
from mall.guides.holds import NEUTRAL
from mall.guides.ledger_models import Balance, CommissionEntry
from mall.guides.services import own_guide
from mall.identity.roles import Actor
from mall.orders.models import SubOrder

ACTIONS = {"release": "released", "void": "voided"}
_COLUMNS = {"pending": Balance.pending, "available": Balance.available, "on_hold": Balance.on_hold}


def _brand(actor: Actor, brand_id: int) -> None:
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("guides.not_your_brand", "Only the brand's admin reviews its guides' commission.")


def held(session: Session, *, actor: Actor, brand_id: int, guide_id: int | None = None, before: int | None = None,
         limit: int = 50) -> list[CommissionEntry]:  # fmt: skip
    """The brand's entries on hold, newest first (ix_guide_commission_entries_held)."""
    _brand(actor, brand_id)
    query = (
        sa.select(CommissionEntry)
        .where(CommissionEntry.brand_id == brand_id, CommissionEntry.state == "on_hold")
        .order_by(CommissionEntry.id.desc())
        .limit(limit)
    )
    if guide_id is not None:
        query = query.where(CommissionEntry.guide_id == guide_id)
    if before is not None:
        query = query.where(CommissionEntry.id < before)
    return list(session.scalars(query))


def review(session: Session, *, actor: Actor, entry_ids: list[int], action: str, reason: str,
           brand_id: int | None = None) -> dict:  # fmt: skip
    """Release or void held entries of the actor's brand. Another brand's entry (or an unknown one) is 404; one
    already decided the same way is left as it is; one decided the other way, or never held, is 409."""
    if action not in ACTIONS:
        raise Invalid("guides.review_action", "Release or void.", field="action")
    entries = _entries(session, actor, sorted(set(entry_ids)), brand_id)
    now, moved, unchanged = clock.now(), [], []
    for entry in entries:
        if entry.id in moved:  # a held reversal that moved with its earn
            continue
        if entry.state != "on_hold":
            _decided(session, entry, action)
            unchanged.append(entry.id)
            continue
        group = _with_held_reversals(session, entry)
        target = "void" if action == "void" else _released_state(session, entry)
        done = _move(session, group, target, now)
        for moved_entry in done:
            session.add(HoldReview(entry_id=moved_entry.id, brand_id=moved_entry.brand_id,
                                   guide_id=moved_entry.guide_id, action=ACTIONS[action], from_state="on_hold",
                                   to_state=target, reason=reason, by=actor.user_id, created_at=now))  # fmt: skip
        moved.extend(e.id for e in done)
        unchanged.extend([] if done else [entry.id])
    session.flush()
    if moved:
        events.record(session, f"guide.commission_{ACTIONS[action]}", aggregate="brand",
                      aggregate_id=entries[0].brand_id, actor=actor, entry_ids=moved, reason=reason)  # fmt: skip
    return {"changed": sorted(moved), "unchanged": sorted(unchanged), "entries": _fresh(session, entries, moved)}


def _entries(session: Session, actor: Actor, ids: list[int], brand_id: int | None) -> list[CommissionEntry]:
    found = {e.id: e for e in session.scalars(sa.select(CommissionEntry).where(CommissionEntry.id.in_(ids)))}
    for entry_id in ids:
        entry = found.get(entry_id)
        if entry is None or not actor.can_manage_brand(entry.brand_id) or (brand_id and entry.brand_id != brand_id):
            raise NotFound("guides.entry_not_found", f"Commission entry {entry_id} not found.")
    return [found[i] for i in ids]


def _decided(session: Session, entry: CommissionEntry, action: str) -> None:
    """An entry no longer on hold: fine if this very decision was made on it, else 409."""
    last = session.scalar(sa.select(HoldReview.action).where(HoldReview.entry_id == entry.id)
                          .order_by(HoldReview.id.desc()).limit(1))  # fmt: skip
    if last == ACTIONS[action]:
        return
    if last is None:
        raise Conflict("guides.entry_not_held", f"Commission entry {entry.id} is not on hold.", state=entry.state)
    raise Conflict("guides.hold_decided", f"Commission entry {entry.id} was already {last}.", decision=last)


def _with_held_reversals(session: Session, entry: CommissionEntry) -> list[CommissionEntry]:
    if entry.kind != "earn" or entry.order_line_id is None:
        return [entry]
    query = sa.select(CommissionEntry).where(
        CommissionEntry.order_line_id == entry.order_line_id, CommissionEntry.guide_id == entry.guide_id,
        CommissionEntry.kind == "reverse", CommissionEntry.state == "on_hold")  # fmt: skip
    return [entry, *session.scalars(query)]


def _released_state(session: Session, entry: CommissionEntry) -> str:
    """available if the entry's sub-order has settled, else pending. The row is read FOR SHARE: a settlement of it
    waits for this transaction, or this read waits for the settlement's (module docstring)."""
    if entry.sub_order_id is None:
        return "pending"
    query = sa.select(SubOrder.settled_at).where(SubOrder.id == entry.sub_order_id).with_for_update(read=True)
    return "available" if session.scalar(query) is not None else "pending"


def _move(session: Session, group: list[CommissionEntry], target: str, now: datetime) -> list[CommissionEntry]:
    """Move the group's entries that are still on hold to `target`, and the cached balances with them."""
    ids = [e.id for e in group]
    rows = session.execute(
        sa.update(CommissionEntry)
        .where(CommissionEntry.id.in_(ids), CommissionEntry.state == "on_hold")
        .values(state=target, state_changed_at=now)
        .returning(CommissionEntry.id, CommissionEntry.guide_id, CommissionEntry.currency, CommissionEntry.amount),
        execution_options={"synchronize_session": False},
    ).all()
    sums: dict[tuple[int, str], int] = defaultdict(int)
    for _, guide_id, currency, amount in rows:
        sums[(guide_id, currency)] += amount
    for (guide_id, currency), amount in sorted(sums.items()):
        values = {"on_hold": Balance.on_hold - amount, "updated_at": now}
        if target in _COLUMNS:
            values[target] = _COLUMNS[target] + amount
        session.execute(sa.update(Balance).where(Balance.guide_id == guide_id, Balance.currency == currency)
                        .values(**values), execution_options={"synchronize_session": False})  # fmt: skip
    moved = {row[0] for row in rows}
    for entry in group:
        session.expire(entry)
    return [e for e in group if e.id in moved]


def _fresh(session: Session, entries: list[CommissionEntry], moved: list[int]) -> list[CommissionEntry]:
    ids = sorted({e.id for e in entries} | set(moved))
    return list(session.scalars(sa.select(CommissionEntry).where(CommissionEntry.id.in_(ids))
                                .order_by(CommissionEntry.id).execution_options(populate_existing=True)))  # fmt: skip


def reviews(session: Session, *, entry_ids: list[int]) -> dict[int, HoldReview]:
    """The latest review of each entry (for the admin's view)."""
    rows = session.scalars(sa.select(HoldReview).where(HoldReview.entry_id.in_(entry_ids)).order_by(HoldReview.id))
    return {r.entry_id: r for r in rows}


def my_held(session: Session, *, actor: Actor, limit: int = 100) -> list[dict]:
    """A guide's held entries, each with the neutral reason only: what rule held it is the brand's to know."""
    guide = own_guide(session, actor)
    query = (
        sa.select(CommissionEntry)
        .where(CommissionEntry.guide_id == guide.id, CommissionEntry.state == "on_hold")
        .order_by(CommissionEntry.id.desc())
        .limit(limit)
    )
    return [guide_view(e) for e in session.scalars(query)]


def guide_view(entry: CommissionEntry) -> dict:
    """An entry as its guide sees it: a held one says only that it is under review."""
    reason = NEUTRAL if entry.state == "on_hold" else {k: v for k, v in (entry.reason or {}).items() if k != "hold"}
    return {"id": entry.id, "kind": entry.kind, "state": entry.state, "amount": entry.amount,
            "currency": entry.currency, "order_id": entry.order_id, "sub_order_id": entry.sub_order_id,
            "order_line_id": entry.order_line_id, "created_at": entry.created_at, "reason": reason}  # fmt: skip
