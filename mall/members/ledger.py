"""The points ledger (ADR 0027): grants as lots, every change of a lot as an append-only entry, and the
member's cached balance changed in the same transaction.

Lock order, everywhere: the member's balance row first (`lock`), then their lots. A grant only inserts a lot, so
it needs no lot lock; everything that lowers a lot (a clawback, a debit, the expiry sweep) holds the member's
balance row while it reads and changes their lots, so two of them on one member run one after the other and a
lot's `remaining` read under that lock is the one the change applies to.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.db import insert_on_conflict
from mall.errors import Conflict
from mall.members.points_models import PointsBalance, PointsEntry, PointsHold, PointsLot

_LOTS, _ENTRIES, _BALANCES = PointsLot.__table__, PointsEntry.__table__, PointsBalance.__table__
_HOLDS = PointsHold.__table__
_BUCKET = {"pending": "pending", "available": "available"}


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int
    reserved: int


def balance(session: Session, user_id: int) -> Balance:
    row = session.execute(sa.select(_BALANCES.c.available, _BALANCES.c.pending, _BALANCES.c.reserved)
                          .where(_BALANCES.c.user_id == user_id)).first()  # fmt: skip
    return Balance(*row) if row else Balance(0, 0, 0)


def lock(session: Session, user_ids: list[int], now: datetime) -> None:
    """Take the members' balance rows in user id order; a member without one gets it first. PostgreSQL: row locks
    (SELECT ... FOR UPDATE, ordered). SQLite: a write to the rows, which takes the database's one write lock
    before anything is read (pysqlite begins the transaction at the first write)."""
    ids = sorted(set(user_ids))
    if session.get_bind().dialect.name == "sqlite":
        session.execute(_BALANCES.update().where(_BALANCES.c.user_id.in_(ids)).values(updated_at=now))
    query = sa.select(_BALANCES.c.user_id).where(_BALANCES.c.user_id.in_(ids)).order_by(_BALANCES.c.user_id)
    found = set(session.scalars(query.with_for_update()))
    for user_id in ids:
        if user_id not in found:  # a member's first points (single-member changes only: expiry never gets here)
            row = {"user_id": user_id, "available": 0, "pending": 0, "reserved": 0, "updated_at": now}
            insert_on_conflict(session, _BALANCES, index_elements=["user_id"], values=row)
            session.execute(query.where(_BALANCES.c.user_id == user_id).with_for_update())


def _add(session: Session, user_id: int, now: datetime, **deltas: int) -> None:
    values = {name: getattr(_BALANCES.c, name) + delta for name, delta in deltas.items() if delta}
    session.execute(_BALANCES.update().where(_BALANCES.c.user_id == user_id).values(updated_at=now, **values))


def grant(session: Session, *, user_id: int, amount: int, kind: str, key: str, reason: dict, now: datetime,
          expires_at: datetime, state: str = "available", brand_id: int | None = None, actor_id: int | None = None,
          order_id: int | None = None, sub_order_id: int | None = None,
          order_line_id: int | None = None) -> int | None:  # fmt: skip
    """A new lot of `amount` points and its entry (`key`); None if `key` granted already (a replay)."""
    lock(session, [user_id], now)
    written = insert_on_conflict(session, _LOTS, index_elements=["key"], values={
        "user_id": user_id, "brand_id": brand_id, "source": kind, "state": state, "amount": amount,
        "remaining": amount, "earned_at": now, "available_at": now if state == "available" else None,
        "expires_at": expires_at, "expired_at": None, "order_id": order_id, "sub_order_id": sub_order_id,
        "order_line_id": order_line_id, "key": key})  # fmt: skip
    if written is None:
        return None
    _entries(session, [dict(user_id=user_id, lot_id=written.id, brand_id=brand_id, kind=kind, amount=amount, key=key,
                            reason=reason, order_id=order_id, order_line_id=order_line_id, actor_id=actor_id)], now)  # fmt: skip
    _add(session, user_id, now, **{_BUCKET[state]: amount})
    return written.id


def _entries(session: Session, rows: list[dict], now: datetime) -> None:
    defaults = {"brand_id": None, "order_id": None, "order_line_id": None, "refund_line_id": None, "actor_id": None,
                "reason": {}, "created_at": now}  # fmt: skip
    session.execute(sa.insert(_ENTRIES), [{**defaults, **row} for row in rows])


def known(session: Session, key: str) -> bool:
    return session.scalar(sa.select(_ENTRIES.c.id).where(_ENTRIES.c.key == key)) is not None


def take_from_lot(session: Session, *, lot_id: int, amount: int, kind: str, key: str, reason: dict, now: datetime,
                  refund_line_id: int | None = None, actor_id: int | None = None) -> int:  # fmt: skip
    """Lower one lot by up to `amount` (what it has left): the entry, the balance. Returns what it took. The caller
    holds the member's balance row (`lock`)."""
    if known(session, key):
        return 0
    lot = session.execute(sa.select(_LOTS).where(_LOTS.c.id == lot_id)).one()
    took = min(amount, lot.remaining)
    if took > 0:
        _lower(session, lot_id, took)
        _add(session, lot.user_id, now, **{_BUCKET[lot.state]: -took})
    _entries(session, [dict(user_id=lot.user_id, lot_id=lot_id, brand_id=lot.brand_id, kind=kind, amount=-took,
                            key=key, reason={**reason, "due": amount, "uncollected": amount - took},
                            order_id=lot.order_id, order_line_id=lot.order_line_id, refund_line_id=refund_line_id,
                            actor_id=actor_id)], now)  # fmt: skip
    return took


def take(session: Session, *, user_id: int, amount: int, kind: str, key: str, reason: dict, now: datetime,
         actor_id: int | None = None) -> list[tuple[int, int]]:  # fmt: skip
    """Take `amount` available points, oldest expiry first, all or nothing: one entry per lot touched (`key`,
    then `key#2`, ...). A replay of `key` takes nothing. Returns [(lot id, points taken)]."""
    lock(session, [user_id], now)
    if known(session, key):
        return []
    rows = _take_lots(session, user_id, amount, now, kind=kind, key=key, reason=reason, actor_id=actor_id)
    _add(session, user_id, now, available=-amount)
    return [(row["lot_id"], -row["amount"]) for row in rows]


# Built once: placement runs these (a statement built per call cost more Python than PostgreSQL spent on it).
_LIVE_LOTS = (
    sa.select(_LOTS.c.id, _LOTS.c.remaining, _LOTS.c.brand_id)
    .where(_LOTS.c.user_id == sa.bindparam("_user"), _LOTS.c.remaining > 0, _LOTS.c.state == "available",
           _LOTS.c.expires_at > sa.bindparam("_now"))
    .order_by(_LOTS.c.expires_at, _LOTS.c.id)
)  # fmt: skip
_LOWER = (_LOTS.update().where(_LOTS.c.id == sa.bindparam("_lot"), _LOTS.c.remaining >= sa.bindparam("_n"))
          .values(remaining=_LOTS.c.remaining - sa.bindparam("_n")))  # fmt: skip
_RESERVE = (
    _BALANCES.update().where(_BALANCES.c.user_id == sa.bindparam("_user"), _BALANCES.c.available >= sa.bindparam("_n"))
    .values(available=_BALANCES.c.available - sa.bindparam("_n"), reserved=_BALANCES.c.reserved + sa.bindparam("_n"),
            updated_at=sa.bindparam("_now"))
)  # fmt: skip


def _take_lots(session: Session, user_id: int, amount: int, now: datetime, **entry) -> list[dict]:
    """Lower the member's unexpired available lots by `amount`, oldest expiry first, and write one entry per lot
    (`entry`'s key, then key#2, ...): the entries written. The caller holds the member's lock and moves the
    balance. Not enough unexpired points: 409 `points.insufficient`."""
    lots = session.execute(_LIVE_LOTS, {"_user": user_id, "_now": now}).all()
    if sum(lot.remaining for lot in lots) < amount:
        raise Conflict("points.insufficient", "Not enough available points.", available=sum(r.remaining for r in lots))
    left, rows = amount, []
    for lot in lots:
        if left == 0:
            break
        part = min(left, lot.remaining)
        _lower(session, lot.id, part)
        key = entry["key"] if not rows else f"{entry['key']}#{len(rows) + 1}"
        rows.append({**entry, "user_id": user_id, "lot_id": lot.id, "brand_id": lot.brand_id, "amount": -part,
                     "key": key})  # fmt: skip
        left -= part
    _entries(session, rows, now)
    return rows


# PostgreSQL: the lots, entries and holds of a reservation in one statement (a round trip and a statement's Python
# per step was most of what points added to a placement). `{gate}` orders it after the balance row's lock: the
# lots are read in the statement's snapshot, so `_PG_RESERVE` runs after `_RESERVE` (a snapshot taken after the
# lock sees every change of the member's lots committed before it: all of them lock first).
_RESERVE_LOTS = """
live AS (
    SELECT id, brand_id, remaining, sum(remaining) OVER (ORDER BY expires_at, id) AS upto FROM points_lots
    WHERE user_id = :user AND remaining > 0 AND state = 'available' AND expires_at > :now
), parts AS (
    SELECT id, brand_id, LEAST(remaining, :n - (upto - remaining)) AS part,
           CASE WHEN upto - remaining = 0 THEN :key ELSE :key || '#' || row_number() OVER (ORDER BY upto) END AS key
    FROM live WHERE upto - remaining < :n {gate}
), lowered AS (
    UPDATE points_lots l SET remaining = l.remaining - p.part FROM parts p WHERE l.id = p.id AND l.remaining >= p.part
    RETURNING l.id
), entries AS (
    INSERT INTO points_entries (user_id, lot_id, brand_id, kind, amount, key, reason, order_id, created_at)
    SELECT :user, id, brand_id, 'redeem', -part, key, CAST(:reason AS jsonb), :order, :now FROM parts
), holds AS (
    INSERT INTO points_holds (order_id, user_id, lot_id, amount, recredited, state, key, created_at, updated_at)
    SELECT :order, :user, id, part, 0, 'held', key, :now, :now FROM parts
)
SELECT (SELECT coalesce(sum(part), 0) FROM parts) AS taken, (SELECT count(*) FROM parts) AS lots,
       (SELECT count(*) FROM lowered) AS lowered"""
_PG_RESERVE = sa.text("WITH" + _RESERVE_LOTS.format(gate=""))
# ... and the usual case in one statement with the balance UPDATE, which applies only if the balance row is the
# version the snapshot read (its xmin): every change to a member's lots changes the balance row in the same
# transaction, so then the snapshot's lots are the current ones. The lots wait for the balance (`EXISTS (bal)`: the
# lock order). A row changed meanwhile (or too few points) writes nothing: the caller falls back to the two.
_PG_RESERVE_AT_ONCE = sa.text(
    """WITH
seen AS (SELECT xmin AS version FROM points_balances WHERE user_id = :user),
bal AS (
    UPDATE points_balances b SET available = b.available - :n, reserved = b.reserved + :n, updated_at = :now
    FROM seen WHERE b.user_id = :user AND b.xmin = seen.version AND b.available >= :n RETURNING b.user_id
),"""
    + _RESERVE_LOTS.format(gate="AND EXISTS (SELECT FROM bal)")
    + ", (SELECT count(*) FROM bal) AS locked"
)
_CHECKOUT = json.dumps({"rule": "checkout"})


def reserve(session: Session, *, user_id: int, amount: int, order_id: int, now: datetime) -> None:
    """Reserve `amount` points for an unpaid order (ADR 0029): `available -= n`, `reserved += n` by one
    conditional UPDATE of the balance row, which is also the member's lock (taken first, as `lock` would); then the
    lots oldest expiry first, a `redeem` entry and a hold per lot (keys `redeem:{order}`, `#2`, ...): on PostgreSQL
    one statement for all of it (two if the member's balance changed under it), the portable ones elsewhere. A new
    order has no reservation yet: the unique keys are the replay guard. Not enough (unexpired) points: 409
    `points.insufficient`, and the caller rolls back."""
    key = f"redeem:{order_id}"
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        params = {"user": user_id, "n": amount, "now": now, "key": key, "order": order_id, "reason": _CHECKOUT}
        done = session.execute(_PG_RESERVE_AT_ONCE, params).one()
        if done.locked:
            return _check_reserved(done, amount)
    if session.execute(_RESERVE, {"_user": user_id, "_n": amount, "_now": now}).rowcount != 1:
        raise Conflict(
            "points.insufficient", "Not enough available points.", available=balance(session, user_id).available
        )
    if postgres:
        return _check_reserved(session.execute(_PG_RESERVE, params).one(), amount)
    rows = _take_lots(session, user_id, amount, now, kind="redeem", key=key, order_id=order_id,
                      reason={"rule": "checkout"})  # fmt: skip
    session.execute(sa.insert(_HOLDS), [
        {"order_id": order_id, "user_id": user_id, "lot_id": row["lot_id"], "amount": -row["amount"], "recredited": 0,
         "state": "held", "key": row["key"], "created_at": now, "updated_at": now} for row in rows])  # fmt: skip


def _check_reserved(done, amount: int) -> None:
    if done.taken != amount or done.lowered != done.lots:  # expired lots not swept yet (or a broken lock order)
        raise Conflict("points.insufficient", "Not enough available points.", available=int(done.taken))


def give_back(session: Session, *, lot_id: int, amount: int, kind: str, key: str, reason: dict, now: datetime,
              grace_days: int, order_id: int | None = None, refund_line_id: int | None = None) -> int:  # fmt: skip
    """Put `amount` points back on the lot they were taken from, keeping its expiry; a lot expired by now (swept
    or not yet) gets a new lot of `kind` instead, expiring `grace_days` from now, funded like the old one
    (Youzan's and Shopify's apps give returned points a fresh window rather than points that die on arrival).
    The caller holds the member's lock. Returns the lot credited."""
    lot = session.execute(sa.select(_LOTS).where(_LOTS.c.id == lot_id)).one()
    why = {**reason, "lot_id": lot_id}
    if lot.expires_at <= now or lot.expired_at is not None:
        return grant(session, user_id=lot.user_id, amount=amount, kind="recredit", key=key, now=now,
                     expires_at=now + timedelta(days=grace_days), brand_id=lot.brand_id, order_id=order_id,
                     reason={**why, "expired_lot": lot_id, "grace_days": grace_days})  # fmt: skip
    raised = session.execute(_LOTS.update().where(_LOTS.c.id == lot_id, _LOTS.c.remaining + amount <= _LOTS.c.amount)
                             .values(remaining=_LOTS.c.remaining + amount)).rowcount  # fmt: skip
    if raised != 1:  # more back than was ever taken: a bug upstream, refused rather than minted
        raise Conflict("points.changed", "The points changed meanwhile; try again.", lot_id=lot_id)
    _entries(session, [dict(user_id=lot.user_id, lot_id=lot_id, brand_id=lot.brand_id, kind=kind, amount=amount,
                            key=key, reason=why, order_id=order_id, refund_line_id=refund_line_id)], now)  # fmt: skip
    _add(session, lot.user_id, now, **{_BUCKET[lot.state]: amount})
    return lot_id


def release_holds(session: Session, *, order_id: int, user_id: int, now: datetime, state: str) -> list:
    """The order's held holds become `state` (spent at payment, returned at cancellation) and leave `reserved`;
    the caller gives returned ones back to their lots. Returns the holds moved (none on a replay)."""
    lock(session, [user_id], now)
    moved = session.execute(
        _HOLDS.update().where(_HOLDS.c.order_id == order_id, _HOLDS.c.state == "held")
        .values(state=state, updated_at=now).returning(_HOLDS.c.id, _HOLDS.c.lot_id, _HOLDS.c.amount)
    ).all()  # fmt: skip
    if moved:
        _add(session, user_id, now, reserved=-sum(hold.amount for hold in moved))
    return sorted(moved)


def _lower(session: Session, lot_id: int, points: int) -> None:
    """A conditional UPDATE (never below zero): under the member's lock it always applies; if it did not, the
    lock order was broken somewhere and the change is refused rather than overdrawn."""
    lowered = session.execute(_LOWER, {"_lot": lot_id, "_n": points}).rowcount
    if lowered != 1:
        raise Conflict("points.changed", "The points changed meanwhile; try again.", lot_id=lot_id)


def make_available(session: Session, sub_order_ids: list[int], now: datetime) -> int:
    """The pending lots earned on these (just settled) sub-orders become available: set-based for the batch (one
    UPDATE of the lots, one balance UPDATE per member). Returns how many lots moved."""
    owners = session.scalars(sa.select(_LOTS.c.user_id).distinct()
                             .where(_LOTS.c.sub_order_id.in_(sub_order_ids), _LOTS.c.state == "pending")).all()  # fmt: skip
    if not owners:
        return 0
    lock(session, list(owners), now)
    moved = session.execute(
        _LOTS.update().where(_LOTS.c.sub_order_id.in_(sub_order_ids), _LOTS.c.state == "pending")
        .values(state="available", available_at=now).returning(_LOTS.c.user_id, _LOTS.c.remaining)
    ).all()  # fmt: skip
    by_user: dict[int, int] = defaultdict(int)
    for user_id, remaining in moved:
        by_user[user_id] += remaining
    for user_id, points in sorted(by_user.items()):
        if points:
            _add(session, user_id, now, pending=-points, available=points)
    return len(moved)


# --- the audit ---------------------------------------------------------------------------------------------


def audit(session: Session) -> list[tuple[str, int]]:
    """Every lot's `remaining` against the sum of its entries, every member's cached balance against the sum of
    their entries, of their pending / available lots and (`reserved`) of their held holds: [("lot" | "member",
    id)] of those that differ."""
    by_lot = (
        sa.select(_ENTRIES.c.lot_id, sa.func.sum(_ENTRIES.c.amount).label("total"))
        .group_by(_ENTRIES.c.lot_id)
        .subquery()
    )
    lots = session.execute(
        sa.select(_LOTS.c.id).outerjoin(by_lot, by_lot.c.lot_id == _LOTS.c.id)
        .where(_LOTS.c.remaining != sa.func.coalesce(by_lot.c.total, 0))
    ).scalars().all()  # fmt: skip
    return [("lot", lot_id) for lot_id in lots] + [("member", user_id) for user_id in _members_off(session)]


def _members_off(session: Session) -> list[int]:
    entries = (
        sa.select(_ENTRIES.c.user_id, sa.func.sum(_ENTRIES.c.amount).label("total"))
        .group_by(_ENTRIES.c.user_id)
        .subquery()
    )
    pending = sa.func.sum(sa.case((_LOTS.c.state == "pending", _LOTS.c.remaining), else_=0))
    available = sa.func.sum(sa.case((_LOTS.c.state == "available", _LOTS.c.remaining), else_=0))
    lots = (sa.select(_LOTS.c.user_id, pending.label("pending"), available.label("available"))
            .group_by(_LOTS.c.user_id).subquery())  # fmt: skip
    held = (sa.select(_HOLDS.c.user_id, sa.func.sum(_HOLDS.c.amount).label("reserved"))
            .where(_HOLDS.c.state == "held").group_by(_HOLDS.c.user_id).subquery())  # fmt: skip
    b = _BALANCES.c
    members = sa.union(sa.select(b.user_id), sa.select(entries.c.user_id), sa.select(lots.c.user_id),
                       sa.select(held.c.user_id)).subquery()  # fmt: skip
    zero = sa.literal(0)
    off = (
        sa.select(members.c.user_id)
        .outerjoin(_BALANCES, b.user_id == members.c.user_id)
        .outerjoin(entries, entries.c.user_id == members.c.user_id)
        .outerjoin(lots, lots.c.user_id == members.c.user_id)
        .outerjoin(held, held.c.user_id == members.c.user_id)
        .where(sa.or_(
            sa.func.coalesce(b.available, zero) != sa.func.coalesce(lots.c.available, zero),
            sa.func.coalesce(b.pending, zero) != sa.func.coalesce(lots.c.pending, zero),
            sa.func.coalesce(b.reserved, zero) != sa.func.coalesce(held.c.reserved, zero),  # the unpaid orders' holds
            sa.func.coalesce(b.available, zero) + sa.func.coalesce(b.pending, zero) != sa.func.coalesce(entries.c.total, zero),
        ))
        .order_by(members.c.user_id)
    )  # fmt: skip
    return list(session.scalars(off))
