"""Customer binding (客户绑定): which guide a shopper belongs to in a brand, and why.

A brand's rule is a dated `BindingSetting` version (mode, days N, order days M); without one the default is
`protected` for 15 days. A binding keeps the version it was made under: a take-over attempt is judged by the rule
of the binding in force (its `reason`), the new binding by the version in force now, so a change of setting applies
to new bindings only.

- permanent: the first guide keeps the shopper (no end).
- protected: bound for N days; another guide's link inside them is refused; after them the binding has ended.
- last_click: the latest guide link wins (no end; a later link of another guide replaces it).
- click_lock: bound for N days after a click (the same guide's click extends it); an order extends it to M days
  after the order; another guide's link inside the lock is refused.

A guide never binds their own shopper identity (or their staff account), and a shopper who is a guide's identity
is not bound to a guide whose own identity is bound to them (a loop). Every outcome is a `BindingEvent` with its
reason: the link, the rule, the window and the setting version. At most one binding per (shopper, brand) is not
ended (a partial unique index); opens of the same shopper and brand are serialised by a transaction-scoped
advisory lock on PostgreSQL (SQLite has one writer)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.guides.models import Binding, BindingEvent, BindingSetting, Guide, GuideLink

DEFAULT = {"mode": "protected", "days": 15, "order_days": 30}
NO_GUIDE = {"guide_id": None, "guide_binding_id": None}
_LOCK_SPACE = 16  # the first key of the (int, int) advisory lock: guide binding of (brand, shopper)


def setting_in_force(session: Session, brand_id: int, now: datetime) -> dict:
    """The brand's rule now: the latest version effective by `now`, or the default (version 0)."""
    row = session.scalars(
        sa.select(BindingSetting)
        .where(BindingSetting.brand_id == brand_id, BindingSetting.effective_from <= now)
        .order_by(BindingSetting.version.desc()).limit(1)
    ).first()  # fmt: skip
    if row is None:
        return {**DEFAULT, "setting_id": None, "setting_version": 0}
    return {"mode": row.mode, "days": row.days, "order_days": row.order_days, "setting_id": row.id,
            "setting_version": row.version}  # fmt: skip


def lock(session: Session, brand_id: int, shopper_id: int) -> None:
    """Serialise binding changes of one shopper in one brand until the transaction ends (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        key = (brand_id * 1_000_003 + shopper_id) % 2_147_483_647
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _LOCK_SPACE, "key": key})


def active(session: Session, brand_id: int, shopper_id: int) -> Binding | None:
    return session.scalars(
        sa.select(Binding).where(Binding.brand_id == brand_id, Binding.shopper_id == shopper_id,
                                 Binding.ended_at.is_(None))
    ).first()  # fmt: skip


def event(session: Session, *, shopper_id: int, brand_id: int, guide_id: int, kind: str, now: datetime,
          binding_id: int | None = None, **reason) -> BindingEvent:  # fmt: skip
    row = BindingEvent(shopper_id=shopper_id, brand_id=brand_id, guide_id=guide_id, binding_id=binding_id, kind=kind,
                       reason=reason, created_at=now)  # fmt: skip
    session.add(row)
    return row


def _end(session: Session, binding: Binding, why: str, now: datetime, **reason) -> None:
    binding.ended_at = now
    binding.end_reason = why
    session.flush()  # before a new binding of the pair goes in: the unique index sees one at a time
    event(session, shopper_id=binding.shopper_id, brand_id=binding.brand_id, guide_id=binding.guide_id,
          binding_id=binding.id, kind="ended", now=now, why=why, **reason)  # fmt: skip


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _bind(session: Session, *, guide: Guide, shopper_id: int, rule: dict, now: datetime, via: dict,
          kind: str = "bound", until: datetime | None = None, replaced: Binding | None = None) -> Binding:  # fmt: skip
    if until is None and rule["mode"] in ("protected", "click_lock"):
        until = now + timedelta(days=rule["days"])
    reason = {**via, "rule": rule["mode"], "days": rule["days"], "order_days": rule["order_days"],
              "setting_id": rule["setting_id"], "setting_version": rule["setting_version"],
              "window": {"from": now.isoformat(), "until": _iso(until)}}  # fmt: skip
    if replaced is not None:
        reason["replaced_binding_id"] = replaced.id
        reason["replaced_guide_id"] = replaced.guide_id
    binding = Binding(shopper_id=shopper_id, brand_id=guide.brand_id, guide_id=guide.id, setting_id=rule["setting_id"],
                      since=now, until=until, reason=reason)  # fmt: skip
    session.add(binding)
    session.flush()
    event(session, shopper_id=shopper_id, brand_id=guide.brand_id, guide_id=guide.id, binding_id=binding.id,
          kind=kind, now=now, **reason)  # fmt: skip
    return binding


def _refusal(session: Session, guide: Guide, shopper_id: int) -> str | None:
    """Why `guide` may not bind `shopper_id` at all: not active, themselves, or a loop."""
    if guide.status != "active":
        return "guide_not_active"
    if shopper_id in (guide.user_id, guide.shopper_user_id):
        return "self_binding"
    if guide.shopper_user_id is not None:
        # The shopper is another guide's identity, and this guide's own identity is bound to that guide: a loop.
        loop = session.scalar(
            sa.select(Binding.id).join(Guide, Guide.id == Binding.guide_id)
            .where(Binding.shopper_id == guide.shopper_user_id, Binding.brand_id == guide.brand_id,
                   Binding.ended_at.is_(None), Guide.shopper_user_id == shopper_id).limit(1)
        )  # fmt: skip
        if loop is not None:
            return "binding_loop"
    return None


def on_click(session: Session, *, guide: Guide, shopper_id: int, link: GuideLink, now: datetime) -> BindingEvent:
    """Apply the brand's rule to a shopper opening `guide`'s `link`; the event says what happened and why."""
    brand_id = guide.brand_id
    via = {"link_id": link.id, "target": link.target}
    base = {"shopper_id": shopper_id, "brand_id": brand_id, "now": now}
    refusal = _refusal(session, guide, shopper_id)
    if refusal is not None:
        return event(session, guide_id=guide.id, kind="refused", why=refusal, **via, **base)
    lock(session, brand_id, shopper_id)
    current = active(session, brand_id, shopper_id)
    if current is not None and current.until is not None and current.until <= now:
        _end(session, current, "expired", now, rule=current.reason.get("rule"), until=_iso(current.until))
        current = None
    rule = setting_in_force(session, brand_id, now)
    if current is None:
        binding = _bind(session, guide=guide, shopper_id=shopper_id, rule=rule, now=now, via=via)
        return session.scalars(sa.select(BindingEvent).where(BindingEvent.binding_id == binding.id,
                                                             BindingEvent.kind == "bound")).one()  # fmt: skip
    held = current.reason.get("rule")
    kept = {"binding_id": current.id, "rule": held, "setting_version": current.reason.get("setting_version"),
            "window": {"from": current.since.isoformat(), "until": _iso(current.until)}}  # fmt: skip
    if current.guide_id == guide.id:
        if held == "click_lock":
            until = max(current.until, now + timedelta(days=current.reason.get("days", rule["days"])))
            current.until = until
            return event(session, guide_id=guide.id, kind="extended", why="click", **via, **base,
                         **{**kept, "window": {"from": current.since.isoformat(), "until": until.isoformat()}})  # fmt: skip
        return event(session, guide_id=guide.id, kind="kept", why="same_guide", **via, **base, **kept)
    if held == "last_click":
        _end(session, current, "taken_over", now, by_guide_id=guide.id, **via)
        binding = _bind(session, guide=guide, shopper_id=shopper_id, rule=rule, now=now, via=via, replaced=current)
        return session.scalars(sa.select(BindingEvent).where(BindingEvent.binding_id == binding.id,
                                                             BindingEvent.kind == "bound")).one()  # fmt: skip
    why = {"permanent": "permanent_binding", "protected": "protection_period", "click_lock": "click_lock"}[held]
    return event(session, guide_id=guide.id, kind="refused", why=why, bound_guide_id=current.guide_id, **via,
                 **base, **kept)  # fmt: skip


def _take_all(session: Session, guide: Guide, why: str, now: datetime, **reason) -> list[Binding]:
    """End the guide's bindings in force, each under its (brand, shopper) lock taken before the row is touched (the
    order an open takes them in, so the two never deadlock), each by a conditional UPDATE (still in force, still
    the guide's): one an open ended or took over meanwhile is skipped, whatever the reads saw. Returns the ended."""
    ids = session.execute(
        sa.select(Binding.id, Binding.shopper_id).where(Binding.guide_id == guide.id, Binding.ended_at.is_(None))
        .order_by(Binding.id)
    ).all()  # fmt: skip
    ended = []
    for binding_id, shopper_id in ids:
        lock(session, guide.brand_id, shopper_id)
        claimed = session.execute(
            sa.update(Binding).where(Binding.id == binding_id, Binding.guide_id == guide.id, Binding.ended_at.is_(None))
            .values(ended_at=now, end_reason=why).execution_options(synchronize_session=False)
        ).rowcount  # fmt: skip
        if claimed:
            row = session.get(Binding, binding_id, populate_existing=True)
            event(session, shopper_id=row.shopper_id, brand_id=row.brand_id, guide_id=row.guide_id,
                  binding_id=row.id, kind="ended", now=now, why=why, **reason)  # fmt: skip
            ended.append(row)
    session.flush()
    return ended


def hand_over(session: Session, *, source: Guide, target: Guide, by: int, now: datetime) -> list[Binding]:
    """Move every binding in force of `source` to `target` (same brand), keeping each one's window and rule; the
    old bindings end as `handed_over` and stay in the history."""
    moved = []
    for old in _take_all(session, source, "handed_over", now, to_guide_id=target.id, by=by):
        rule = {"mode": old.reason.get("rule", DEFAULT["mode"]), "days": old.reason.get("days", DEFAULT["days"]),
                "order_days": old.reason.get("order_days", DEFAULT["order_days"]), "setting_id": old.setting_id,
                "setting_version": old.reason.get("setting_version", 0)}  # fmt: skip
        via = {"handover_from_guide_id": source.id, "handover_from_binding_id": old.id, "by": by}
        moved.append(_bind(session, guide=target, shopper_id=old.shopper_id, rule=rule, now=now, via=via,
                           kind="handed_over", until=old.until))  # fmt: skip
    return moved


def end_all(session: Session, *, guide: Guide, why: str, by: int, now: datetime) -> int:
    """End every binding in force of `guide` (a removed guide's customers not handed over)."""
    return len(_take_all(session, guide, why, now, by=by))


def bound(user_id):
    """The shopper fact a quote reads with the shopper's row (pricing.SHOPPER_FACTS): whether any binding of theirs
    is open, so a placement by a shopper no guide has bound looks nothing up."""
    return sa.exists().where(Binding.shopper_id == user_id, Binding.ended_at.is_(None))


_IN_FORCE = sa.select(Binding).where(  # built once: :shopper, :brands (a list), :now
    Binding.shopper_id == sa.bindparam("shopper"), Binding.brand_id.in_(sa.bindparam("brands", expanding=True)),
    Binding.ended_at.is_(None), sa.or_(Binding.until.is_(None), Binding.until > sa.bindparam("now")))  # fmt: skip


def line_columns(session: Session, *, shopper_id: int, brand_ids: list[int], now: datetime,
                 unbound: bool = False) -> dict[int, dict]:  # fmt: skip
    """The binding in force per brand of an order being placed, as order-line columns; a click_lock binding is
    extended to M days after the order (an `extended` event). One read for the order's brands, none when the
    quote's shopper fact says the shopper has no open binding (`unbound`)."""
    if not brand_ids or unbound:
        return {}
    found = list(session.scalars(_IN_FORCE, {"shopper": shopper_id, "brands": list(brand_ids), "now": now}))
    columns = {}
    for b in found:
        if b.reason.get("rule") == "click_lock":  # extended under the lock an open takes, re-read after it
            lock(session, b.brand_id, shopper_id)
            session.refresh(b)
            if b.ended_at is not None:  # taken over or handed over meanwhile: its successor is not read here
                continue
        columns[b.brand_id] = {"guide_id": b.guide_id, "guide_binding_id": b.id}
        if b.reason.get("rule") == "click_lock":
            until = now + timedelta(days=b.reason.get("order_days", DEFAULT["order_days"]))
            if until > b.until:
                b.until = until
                event(session, shopper_id=shopper_id, brand_id=b.brand_id, guide_id=b.guide_id, binding_id=b.id,
                      kind="extended", now=now, why="order", rule="click_lock",
                      window={"from": b.since.isoformat(), "until": until.isoformat()})  # fmt: skip
    return columns
