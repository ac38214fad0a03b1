"""Member levels (ADR 0030): the platform's level table, who moves up or down, and when.

- Upgrades apply at payment: the `order.paid` reaction recomputes the payer's growth and raises their level at
  once if it reaches a higher threshold.
- A refund takes its growth back at once (`refund_lines.written`): if the refunded spend is what held the member
  at their level, the level is lowered at once too (no grace: the spend that earned it did not happen).
- Everything else that lowers growth (spend leaving the term, a stricter table) goes through `evaluate_batch`,
  run by the daily job and by an operator's apply: a member below their level's threshold starts a grace period
  (a notice says when it ends); still below when it has run out, the level is lowered (another notice).
- `dry_run` runs the same decision (`_decide`) over the same members with a proposed table and writes nothing,
  so its counts are what the real run does.

No table (no rows): levels are not managed; `users.member_level` is left as operators set it. `users` rows are
written only for members whose level changes, by primary key (the token cache ignores member_level)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import audit, clock
from mall.db import upsert_many
from mall.errors import Invalid
from mall.identity.models import User
from mall.members import growth
from mall.members.level_models import MemberGrowth, MemberLevel
from mall.members.policy import ONE
from mall.notifications.services import notify, notify_many
from mall.orders.models import Order
from mall.promotions.coupons.models import CouponTemplate

BATCH = 1000
MAX_LEVELS = 20
BIRTHDAY_GRANT = "level_birthday"  # the `auto_grant` of a level's birthday coupon template


@dataclass(frozen=True)
class Level:
    level: int
    name: str
    threshold: int
    discount_bp: int = 0
    multiplier_bp: int = ONE
    free_shipping_above: int | None = None
    birthday_template_id: int | None = None


class Table(tuple):
    """The levels, lowest first (thresholds rise with the level)."""

    def level_for(self, value: int) -> int:
        reached = [lv.level for lv in self if lv.threshold <= value]
        return max(reached, default=0)

    def get(self, level: int) -> Level | None:
        return next((lv for lv in self if lv.level == level), None)

    def above(self, level: int) -> Level | None:
        return next((lv for lv in self if lv.level > level), None)


FIELDS = ("level", "name", "threshold", "discount_bp", "multiplier_bp", "free_shipping_above", "birthday_template_id")


def table(session: Session) -> Table:
    rows = session.scalars(sa.select(MemberLevel).order_by(MemberLevel.level))
    return Table(Level(**{f: getattr(row, f) for f in FIELDS}) for row in rows)


def check(session: Session, levels: list[dict]) -> Table:
    """A proposed table, or 422: levels unique and >= 1, thresholds rising strictly with the level (the lowest may
    be 0: everyone), birthday templates that exist and are meant for it (auto_grant `level_birthday`)."""
    ordered = sorted(levels, key=lambda lv: lv["level"])
    if len(ordered) > MAX_LEVELS:
        raise Invalid("level.too_many", f"At most {MAX_LEVELS} levels.", field="levels")
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before["level"] == after["level"]:
            raise Invalid("level.duplicate", f"Level {after['level']} is named twice.", field="levels")
        if after["threshold"] <= before["threshold"]:
            raise Invalid("level.threshold_not_rising",
                          f"Level {after['level']} must need more growth than level {before['level']}.",
                          field="levels")  # fmt: skip
    wanted = {lv["birthday_template_id"] for lv in ordered if lv.get("birthday_template_id") is not None}
    if wanted:
        found = set(session.scalars(sa.select(CouponTemplate.id).where(
            CouponTemplate.id.in_(wanted), CouponTemplate.auto_grant == BIRTHDAY_GRANT)))  # fmt: skip
        if missing := sorted(wanted - found):
            raise Invalid("level.birthday_template", f"No coupon template {missing} with auto_grant "
                          f"{BIRTHDAY_GRANT!r}.", field="levels")  # fmt: skip
    return Table(Level(**{f: lv.get(f, Level.__dataclass_fields__[f].default) for f in FIELDS}) for lv in ordered)


def replace(session: Session, levels: list[dict]) -> Table:
    """The new table, whole (members move when it is applied: `evaluate_batch`)."""
    new = check(session, levels)
    _audit(session, table(session), new)
    session.execute(sa.delete(MemberLevel))
    now = clock.now()
    if new:
        session.execute(sa.insert(MemberLevel), [{**lv.__dict__, "updated_at": now} for lv in new])
    return new


def _audit(session: Session, old: Table, new: Table) -> None:
    """Each level the replacement adds, changes or removes, in the audit log (its changed fields)."""
    was, now = ({lv.level: lv.__dict__ for lv in tbl} for tbl in (old, new))
    for level in sorted(was.keys() | now.keys()):
        before, after = audit.diff(was.get(level, {}), now.get(level, {}))
        if level not in now:
            before, after = was[level], None
        if before or after:
            verb = "created" if level not in was else "deleted" if level not in now else "updated"
            audit.record(session, action=f"member_level.{verb}", object_type="member_level", object_id=level,
                         brand_id=None, before=before if level in was else None, after=after)  # fmt: skip


# -- the decision ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    user_id: int
    level: int  # in force now
    target: int  # what the growth reaches under the table
    growth: int
    below_since: datetime | None
    action: str  # up | down | start_grace | keep_grace | end_grace | none


def _decide(tbl: Table, user_id: int, level: int, value: int, below_since: datetime | None, now: datetime) -> Move:
    target = tbl.level_for(value)
    if target > level:
        action = "up"
    elif target < level:
        if below_since is None:
            action = "start_grace"
        elif below_since + growth.current().grace <= now:
            action = "down"
        else:
            action = "keep_grace"
    else:
        action = "end_grace" if below_since is not None else "none"
    return Move(user_id, level, target, value, below_since, action)


def _population(session: Session, after: int, limit: int) -> list:
    """The next shoppers by id (a walk of the users' primary key: filtering on spend here made PostgreSQL hash
    every order for each batch). A shopper with nothing paid is at the level growth 0 reaches, if not already."""
    query = (
        sa.select(User.id, User.member_level, MemberGrowth.below_since)
        .outerjoin(MemberGrowth, MemberGrowth.user_id == User.id)
        .where(User.role == "shopper", User.id > after)
        .order_by(User.id).limit(limit)
    )  # fmt: skip
    return session.execute(query).all()


def _moves(session: Session, tbl: Table, *, after: int, limit: int, now: datetime) -> list[Move]:
    people = _population(session, after, limit)
    values = growth.compute(session, [p.id for p in people], now)
    return [_decide(tbl, p.id, p.member_level, values[p.id], p.below_since, now) for p in people]


def evaluate_batch(session: Session, *, after: int = 0, limit: int = BATCH, now: datetime | None = None) -> list[Move]:
    """The real run over one batch of members (ids > `after`): growth recomputed and stored, then each member's
    move done. Returns the moves (the caller continues after the last one's user id; fewer than `limit`: done)."""
    now = now or clock.now()
    tbl = table(session)
    if not tbl:
        return []
    moves = _moves(session, tbl, after=after, limit=limit, now=now)
    moves = _settle_movers(session, tbl, moves, now)
    ids = [m.user_id for m in moves]
    found = growth.rows(session, ids)
    growth.write(session, found, {m.user_id: m.growth for m in moves}, now)
    _carry_out(session, tbl, moves, found, now)
    return moves


def _settle_movers(session: Session, tbl: Table, moves: list[Move], now: datetime) -> list[Move]:
    """The members whose level would change: their `users` rows locked (in id order), then their growth and level
    read again and decided again. A payment or refund takes the same row lock before it recomputes (`_react`), so
    a level is never set from growth that a concurrent payment has made stale."""
    movers = [m.user_id for m in moves if m.action in ("up", "down")]
    if not movers:
        return moves
    query = sa.select(User.id, User.member_level).where(User.id.in_(movers)).order_by(User.id).with_for_update()
    levels_now = dict(session.execute(query).all())
    values = growth.compute(session, movers, now)
    return [_decide(tbl, m.user_id, levels_now[m.user_id], values[m.user_id], m.below_since, now)
            if m.user_id in levels_now else m for m in moves]  # fmt: skip


def _carry_out(session: Session, tbl: Table, moves: list[Move], found: dict, now: datetime) -> None:
    levels = [{"id": m.user_id, "member_level": m.target} for m in moves if m.action in ("up", "down")]
    if levels:
        session.execute(sa.update(User), levels)  # by primary key, only the members who move
    grace = [{"user_id": m.user_id, "below_since": now if m.action == "start_grace" else None, "updated_at": now}
             for m in moves if m.action in ("up", "down", "start_grace", "end_grace")
             and (m.below_since is not None or m.action == "start_grace")]  # fmt: skip
    _ensure_rows(session, found, [g["user_id"] for g in grace], now)
    if grace:
        session.execute(sa.update(MemberGrowth), grace)
    notify_many(session, [_at_risk(tbl, m, now) if m.action == "start_grace" else
                          _lowered(tbl, m, key=f"level-lowered-{m.user_id}-{m.below_since:%Y%m%dT%H%M%S}")
                          for m in moves if m.action in ("start_grace", "down")])  # fmt: skip


def _ensure_rows(session: Session, found: dict, user_ids: list[int], now: datetime) -> None:
    """A member with no growth row yet (no spend, a level set by hand) gets one to hold their grace period."""
    missing = [{"user_id": u, "growth": 0, "below_since": None, "updated_at": now} for u in user_ids if u not in found]
    upsert_many(session, MemberGrowth.__table__, missing, index_elements=["user_id"])


def _at_risk(tbl: Table, move: Move, now: datetime) -> dict:
    """The notice that a grace period started: the level, the growth it needs, and when it will be lowered."""
    level = tbl.get(move.level)
    return {"user_id": move.user_id, "template_key": "member.level_at_risk",
            "dedupe_key": f"level-at-risk-{move.user_id}-{now:%Y%m%dT%H%M%S}",
            "payload": {"level": move.level, "name": level.name if level else "", "growth": move.growth,
                        "threshold": level.threshold if level else None,
                        "lowered_at": (now + growth.current().grace).isoformat(), "to_level": move.target}}  # fmt: skip


def _lowered(tbl: Table, move: Move, *, key: str) -> dict:
    level = tbl.get(move.target)
    return {"user_id": move.user_id, "template_key": "member.level_lowered", "dedupe_key": key,
            "payload": {"from_level": move.level, "level": move.target, "name": level.name if level else "",
                        "growth": move.growth}}  # fmt: skip


def dry_run(session: Session, levels: list[dict], *, now: datetime | None = None, limit: int = BATCH) -> dict:
    """What applying `levels` would do now, per level, writing nothing: `up` members raised at once, `down` members
    lowered (`down_now` of them at once, their grace over; the others when it ends if their growth stays),
    `grace_starting` the members whose grace would start (their notice queued), and each level's members before
    and after (once every grace has run out)."""
    now = now or clock.now()
    tbl = check(session, levels)
    before, after_all, up, down, down_now, starting = Counter(), Counter(), Counter(), Counter(), Counter(), 0
    after = 0
    while True:
        moves = _moves(session, tbl, after=after, limit=limit, now=now)
        for m in moves:
            before[m.level] += 1
            after_all[m.target] += 1
            if m.target > m.level:
                up[m.target] += 1
            elif m.target < m.level:
                down[m.target] += 1
                down_now[m.target] += m.action == "down"
                starting += m.action == "start_grace"
        if len(moves) < limit:
            break
        after = moves[-1].user_id
    numbers = sorted({0, *(lv.level for lv in tbl), *before, *after_all})
    names = {lv.level: lv.name for lv in tbl}
    return {
        "as_of": now, "term": growth.current().term, "grace_days": growth.current().grace_days,
        "up": sum(up.values()), "down": sum(down.values()), "down_now": sum(down_now.values()),
        "grace_starting": starting, "unchanged": sum(before.values()) - sum(up.values()) - sum(down.values()),
        "levels": [{"level": n, "name": names.get(n, ""), "members_now": before[n], "members_after": after_all[n],
                    "up_into": up[n], "down_into": down[n], "down_now_into": down_now[n]} for n in numbers],
    }  # fmt: skip


# -- reactions: at payment and at a refund ---------------------------------------------------------------------


def on_paid(session: Session, event) -> None:
    """Reaction to `order.paid`: the payer's growth now, and their level raised at once if it reaches higher."""
    _react(session, session.scalar(sa.select(Order.user_id).where(Order.id == event.aggregate_id)), key=None)


def on_refunded(session: Session, event) -> None:
    """Reaction to `refund_lines.written`: the refunded spend leaves the growth at once; if it is what held the
    member at their level, the level follows at once."""
    ids = event.payload.get("refund_line_ids") or []
    if not ids:
        return
    user_id = session.scalar(sa.select(Order.user_id).where(Order.id == event.aggregate_id))
    _react(session, user_id, key=f"level-lowered-{user_id}-refund-{min(ids)}")


def _react(session: Session, user_id: int | None, *, key: str | None) -> None:
    tbl = table(session)
    if user_id is None or not tbl:
        return
    now = clock.now()
    # The member's row lock first: payments, refunds and the job's movers change a level one at a time.
    level = session.scalar(sa.select(User.member_level).where(User.id == user_id).with_for_update())
    found = growth.rows(session, [user_id])
    value = growth.compute(session, [user_id], now)[user_id]
    row = found.get(user_id)
    before, grace = (row.growth, row.below_since) if row else (0, None)  # read before the write may refresh them
    growth.write(session, found, {user_id: value}, now)
    target = tbl.level_for(value)
    if key is None and target > level:
        _set_level(session, user_id, target, now)
    elif key is None and target == level and grace is not None:
        _end_grace(session, user_id, now)  # paid back up to the level's threshold
    elif key is not None and target < level <= tbl.level_for(before):
        _set_level(session, user_id, target, now)
        notify(session, **_lowered(tbl, Move(user_id, level, target, value, None, "down"), key=key))


def _set_level(session: Session, user_id: int, level: int, now: datetime) -> None:
    session.execute(sa.update(User), [{"id": user_id, "member_level": level}])
    _end_grace(session, user_id, now)


def _end_grace(session: Session, user_id: int, now: datetime) -> None:
    session.execute(sa.update(MemberGrowth).where(MemberGrowth.user_id == user_id)
                    .values(below_since=None, updated_at=now))  # fmt: skip


# -- what the member and the pipeline read ---------------------------------------------------------------------


def multiplier_of(session: Session, user_id: int, fallback) -> tuple[int, int]:
    """(level, points multiplier in bp) of a member, in one query: the table's multiplier when a table is
    configured (1.0 for a level it lacks), else `fallback(level)` (the POINTS_LEVEL_MULTIPLIERS setting)."""
    managed = sa.exists().where(MemberLevel.level > 0)
    own = sa.select(MemberLevel.multiplier_bp).where(MemberLevel.level == User.member_level).scalar_subquery()
    row = session.execute(sa.select(User.member_level, own, managed).where(User.id == user_id)).one()
    level = row[0] or 0
    return level, (ONE if row[1] is None else row[1]) if row[2] else fallback(level)


def progress(session: Session, *, user_id: int) -> dict:
    """The member's level, growth, the next level and what is missing, their benefits, and a grace period."""
    tbl = table(session)
    level = session.scalar(sa.select(User.member_level).where(User.id == user_id)) or 0
    row = session.get(MemberGrowth, user_id)
    programme = growth.current()
    value = row.growth if row else 0
    current, following = tbl.get(level), tbl.above(level)
    lowered_at = row.below_since + programme.grace if row and row.below_since else None
    return {
        "level": level, "name": current.name if current else "", "growth": value, "currency": programme.currency,
        "term": programme.term, "term_started_at": programme.term_start(clock.now()), "managed": bool(tbl),
        "next": None if following is None else {"level": following.level, "name": following.name,
                                                 "threshold": following.threshold,
                                                 "missing": max(following.threshold - value, 0)},
        "benefits": _benefits(current),
        "lowered_at": lowered_at,
    }  # fmt: skip


def _benefits(level: Level | None) -> dict:
    if level is None:
        return {"discount_bp": 0, "multiplier_bp": ONE, "free_shipping_above": None, "birthday_coupon": False,
                "identity_products_level": 0}  # fmt: skip
    return {"discount_bp": level.discount_bp, "multiplier_bp": level.multiplier_bp,
            "free_shipping_above": level.free_shipping_above,
            "birthday_coupon": level.birthday_template_id is not None,
            "identity_products_level": level.level}  # fmt: skip


def as_dicts(tbl: Table) -> list[dict]:
    return [dict(lv.__dict__) for lv in tbl]
