"""The review of held commission (ADR 0024): a brand admin lists the brand's held entries with why they are held,
and releases them (-> pending, or available if the sub-order has already settled) or voids them (-> void: the
amount leaves the balance), always with a reason. A guide sees their held entries with a neutral reason only.

An entry moves by one conditional UPDATE (`state = 'on_hold'`), so of two reviews racing on it only one moves it
and moves the cached balance, in the same transaction (`guide_balances`). A held entry's held reversals (a refund
of the same line while it was held) move with it, so a released or voided earn never leaves its reversal behind.
Reviewing again what was already decided the same way changes nothing (idempotent); the opposite decision is 409.
A release locks the sub-order rows (FOR SHARE) before reading `settled_at`: a settlement sweep racing it either
settles first (the entry is released to available) or waits for the release to commit and then makes the released
pending entry available itself."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.guides import ledger
from mall.guides.hold_models import HoldReview
from mall.guides.holds import for_guide
from mall.guides.ledger_models import CommissionEntry
from mall.guides.services import own_guide
from mall.identity.roles import Actor
from mall.orders.models import SubOrder

ACTIONS = {"release": "released", "void": "voided"}


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
    settled = _lock_sub_orders(session, entries) if action == "release" else {}
    now, moved, unchanged = clock.now(), [], []
    for entry in entries:
        if entry.id in moved:  # a held reversal that moved with its earn
            continue
        if entry.state != "on_hold":
            _decided(session, entry, action)
            unchanged.append(entry.id)
            continue
        target = "void" if action == "void" else ("available" if settled.get(entry.sub_order_id) else "pending")
        done = [e for e in _with_held_reversals(session, entry)
                if ledger.move(session, from_state="on_hold", to_state=target, entry_ids=[e.id], now=now)]  # fmt: skip
        for e in done:
            session.add(HoldReview(entry_id=e.id, brand_id=e.brand_id, guide_id=e.guide_id, action=ACTIONS[action],
                                   from_state="on_hold", to_state=target, reason=reason, by=actor.user_id,
                                   created_at=now))  # fmt: skip
        moved.extend(e.id for e in done)
        if not done:  # a concurrent review moved it first
            _decided(session, entry, action, refresh=True)
            unchanged.append(entry.id)
    session.flush()
    if moved:
        events.record(session, f"guide.commission_{ACTIONS[action]}", aggregate="brand",
                      aggregate_id=entries[0].brand_id, actor=actor, entry_ids=sorted(moved), reason=reason)  # fmt: skip
    return {"changed": sorted(moved), "unchanged": sorted(unchanged), "entries": _fresh(session, entries, moved)}


def _entries(session: Session, actor: Actor, ids: list[int], brand_id: int | None) -> list[CommissionEntry]:
    found = {e.id: e for e in session.scalars(sa.select(CommissionEntry).where(CommissionEntry.id.in_(ids)))}
    for entry_id in ids:
        entry = found.get(entry_id)
        if entry is None or not actor.can_manage_brand(entry.brand_id) or (brand_id and entry.brand_id != brand_id):
            raise NotFound("guides.entry_not_found", f"Commission entry {entry_id} not found.")
    return [found[i] for i in ids]


def _lock_sub_orders(session: Session, entries: list[CommissionEntry]) -> dict[int, bool]:
    """Whether each held entry's sub-order has settled, its row read FOR SHARE, all of them before any entry or
    balance moves (the ledger's lock order: sub-orders, then balances): a settlement of one waits for this
    transaction, or this read waits for the settlement (module docstring)."""
    ids = sorted({e.sub_order_id for e in entries if e.state == "on_hold" and e.sub_order_id is not None})
    if not ids:
        return {}
    query = (sa.select(SubOrder.id, SubOrder.settled_at).where(SubOrder.id.in_(ids)).order_by(SubOrder.id)
             .with_for_update(read=True))  # fmt: skip
    return {sub_id: settled_at is not None for sub_id, settled_at in session.execute(query)}


def _decided(session: Session, entry: CommissionEntry, action: str, refresh: bool = False) -> None:
    """An entry no longer on hold: fine if this very decision was made on it, else 409."""
    if refresh:
        session.refresh(entry)
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
        CommissionEntry.kind == "reverse", CommissionEntry.state == "on_hold").order_by(CommissionEntry.id)  # fmt: skip
    return [entry, *session.scalars(query)]


def _fresh(session: Session, entries: list[CommissionEntry], moved: list[int]) -> list[CommissionEntry]:
    ids = sorted({e.id for e in entries} | set(moved))
    return list(session.scalars(sa.select(CommissionEntry).where(CommissionEntry.id.in_(ids))
                                .order_by(CommissionEntry.id).execution_options(populate_existing=True)))  # fmt: skip


def reviews(session: Session, *, entry_ids: list[int]) -> dict[int, HoldReview]:
    """The latest review of each entry (for the admin's view)."""
    rows = session.scalars(sa.select(HoldReview).where(HoldReview.entry_id.in_(entry_ids)).order_by(HoldReview.id))
    return {r.entry_id: r for r in rows}


def my_held(session: Session, *, actor: Actor, limit: int = 100) -> list[dict]:
    """A guide's held entries; the hold's reason is neutral (under review): what rule held it is the brand's."""
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
    reason = for_guide(entry.state, entry.reason)
    return {"id": entry.id, "kind": entry.kind, "state": entry.state, "amount": entry.amount,
            "currency": entry.currency, "order_id": entry.order_id, "sub_order_id": entry.sub_order_id,
            "order_line_id": entry.order_line_id, "created_at": entry.created_at, "reason": reason}  # fmt: skip
