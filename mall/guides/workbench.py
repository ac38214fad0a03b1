"""A guide's own figures (the workbench, ADR 0025): their link visits, the customers bound to them, the orders
whose lines were attributed to them at placement, and today's numbers. Every read is scoped to one guide and walks
an index that starts with the guide's id; shoppers appear masked (mall.guides.masking).

Lists are newest first with a keyset cursor (`before`: the last id of the previous page), so a page costs the
same however long the guide's history is."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.guides import earnings_days, ledger, masking
from mall.guides.hold_models import OrderSignal
from mall.guides.ledger_models import Balance as BalanceRow
from mall.guides.models import Binding, Guide, GuideLink, GuideVisit
from mall.identity.models import Address, User
from mall.orders.models import Order, OrderLine, RefundLine


class Page(NamedTuple):
    items: list[dict]
    next_before: int | None


def day_start(now: datetime, tz: str, days_back: int = 0) -> datetime:
    """Midnight (in the shop's time zone) of the day `days_back` days before `now`'s, as an aware datetime."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone).date() - timedelta(days=days_back)
    return datetime.combine(local, time(), tzinfo=zone)


def _page(rows: list, limit: int, key) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, key(rows[-1]) if more else None)


def _names(session: Session, user_ids: Iterable[int]) -> dict[int, str]:
    ids = set(user_ids)
    if not ids:
        return {}
    return dict(session.execute(sa.select(User.id, User.display_name).where(User.id.in_(ids))).all())


def visits(session: Session, guide: Guide, *, before: int | None = None, limit: int = 20) -> Page:
    """The guide's link visits, newest first: when, which link (and what it points at), which shopper (masked)."""
    query = (
        sa.select(GuideVisit.id, GuideVisit.visited_at, GuideVisit.link_id, GuideVisit.shopper_id, GuideLink.target,
                  GuideLink.product_id, GuideLink.room_id, GuideLink.store_id)
        .join(GuideLink, GuideLink.id == GuideVisit.link_id)
        .where(GuideVisit.guide_id == guide.id)
        .order_by(GuideVisit.id.desc()).limit(limit + 1)
    )  # fmt: skip
    if before is not None:
        query = query.where(GuideVisit.id < before)
    rows = [dict(row._mapping) for row in session.execute(query)]
    names = _names(session, (r["shopper_id"] for r in rows))
    for row in rows:
        row["shopper"] = masking.name(names.get(row["shopper_id"]))
    return _page(rows, limit, lambda r: r["id"])


def _phones(session: Session, user_ids: Iterable[int]) -> dict[int, str | None]:
    """Each shopper's latest address phone, masked."""
    ids = set(user_ids)
    if not ids:
        return {}
    latest = (sa.select(sa.func.max(Address.id)).where(Address.user_id.in_(ids)).group_by(Address.user_id)
              .scalar_subquery())  # fmt: skip
    rows = session.execute(sa.select(Address.user_id, Address.phone).where(Address.id.in_(latest)))
    return {user_id: masking.phone(value) for user_id, value in rows}


def customers(session: Session, guide: Guide, *, now: datetime, before: int | None = None, limit: int = 20) -> Page:
    """The shoppers bound to the guide now (a binding not ended whose window, if any, is still open), newest
    binding first: since when, under which mode, until when; name and phone masked."""
    query = (
        sa.select(Binding)
        .where(Binding.guide_id == guide.id, Binding.ended_at.is_(None),
               sa.or_(Binding.until.is_(None), Binding.until > now))
        .order_by(Binding.id.desc()).limit(limit + 1)
    )  # fmt: skip
    if before is not None:
        query = query.where(Binding.id < before)
    bindings = list(session.scalars(query))
    shoppers = [b.shopper_id for b in bindings]
    names, phones = _names(session, shoppers), _phones(session, shoppers)
    rows = [{"binding_id": b.id, "shopper_id": b.shopper_id, "name": masking.name(names.get(b.shopper_id)),
             "phone": phones.get(b.shopper_id), "since": b.since, "until": b.until, "mode": b.reason.get("rule"),
             "setting_version": b.reason.get("setting_version")} for b in bindings]  # fmt: skip
    return _page(rows, limit, lambda r: r["binding_id"])


def _order_ids(session: Session, guide_id: int, before: int | None, limit: int, number: str | None = None) -> list[int]:
    """The guide's order ids, newest first: an index-only walk of ix_order_lines_guide (guide_id, order_id)."""
    query = (sa.select(OrderLine.order_id).where(OrderLine.guide_id == guide_id).group_by(OrderLine.order_id)
             .order_by(OrderLine.order_id.desc()).limit(limit))  # fmt: skip
    if before is not None:
        query = query.where(OrderLine.order_id < before)
    if number is not None:
        query = query.where(OrderLine.order_id == sa.select(Order.id).where(Order.number == number).scalar_subquery())
    return list(session.scalars(query))


def orders(session: Session, guide: Guide, *, before: int | None = None, limit: int = 20,
           number: str | None = None) -> Page:  # fmt: skip
    """Orders with lines attributed to the guide at placement, newest first (or the one numbered `number`): number,
    placed and paid times, status, the guide's lines, what they paid and what of that was refunded (refund_lines,
    per line), the buyer masked."""
    ids = _order_ids(session, guide.id, before, limit + 1, number)
    page = ids[:limit]
    if not page:
        return Page([], None)
    mine = sa.and_(OrderLine.order_id.in_(page), OrderLine.guide_id == guide.id)
    lines: dict[int, list] = {}
    for order_id, line_id, quantity, paid in session.execute(
        sa.select(OrderLine.order_id, OrderLine.id, OrderLine.quantity, OrderLine.payable).where(mine)
        .order_by(OrderLine.id)):  # fmt: skip
        lines.setdefault(order_id, []).append((line_id, quantity, paid))
    refunded = dict(session.execute(
        sa.select(RefundLine.order_id, sa.func.sum(RefundLine.amount))
        .join(OrderLine, OrderLine.id == RefundLine.order_line_id).where(mine).group_by(RefundLine.order_id)
    ).all())  # fmt: skip
    found = {o.id: o for o in session.scalars(sa.select(Order).where(Order.id.in_(page)))}
    names = _names(session, (o.user_id for o in found.values()))
    rows = []
    for order_id in page:
        order, mine_lines = found[order_id], lines[order_id]
        paid = sum(p for _, _, p in mine_lines)
        rows.append({"order_id": order.id, "number": order.number, "status": order.status, "currency": order.currency,
                     "placed_at": order.created_at, "paid_at": order.paid_at, "lines": len(mine_lines),
                     "line_ids": [i for i, _, _ in mine_lines], "quantity": sum(q for _, q, _ in mine_lines),
                     "amount": int(paid) if order.paid_at else 0, "refunded": int(refunded.get(order_id) or 0),
                     "buyer": masking.name(names.get(order.user_id)),
                     "buyer_phone": masking.phone((order.address or {}).get("phone"))})  # fmt: skip
    return Page(rows, page[-1] if len(ids) > limit else None)


def visits_since(session: Session, guide_id: int, start: datetime) -> int:
    """A range of ix_guide_visits_guide (guide_id, visited_at)."""
    query = sa.select(sa.func.count()).where(GuideVisit.guide_id == guide_id, GuideVisit.visited_at >= start)
    return session.scalar(query)


def orders_paid_since(session: Session, guide_id: int, start: datetime) -> int:
    """How many of the guide's orders were paid at or after `start`: a range of ix_guide_order_signals_paid (each
    paid order attributed to the guide has one signal row, written at payment with its payment time)."""
    query = sa.select(sa.func.count()).where(OrderSignal.guide_id == guide_id, OrderSignal.paid_at >= start)
    return session.scalar(query)


def summary(session: Session, guide: Guide, *, now: datetime, tz: str, days: int = 30) -> dict:
    """The workbench's head: today's visits and paid orders (the shop's day), earnings by state (the ledger's cached
    balance) and credited per day over `days` days, in the guide's currency (that of their latest balance row)."""
    today = day_start(now, tz)
    latest = session.execute(  # the guide's currency (that of their latest balance row) with its balance
        sa.select(BalanceRow.currency, BalanceRow.pending, BalanceRow.available, BalanceRow.on_hold)
        .where(BalanceRow.guide_id == guide.id).order_by(BalanceRow.updated_at.desc()).limit(1)).first()  # fmt: skip
    currency = latest.currency if latest else None
    earnings = ledger.Balance(*(int(v) for v in latest[1:]))._asdict() if latest else None
    per_day = (earnings_days.per_day(session, guide_id=guide.id, currency=currency, now=now, tz=tz, days=days)
               if currency else [{"date": (today.date() - timedelta(days=n)).isoformat(), "earned": 0}
                                 for n in range(days - 1, -1, -1)])  # fmt: skip
    return {"guide_id": guide.id,
            "today": {"date": today.date().isoformat(), "visits": visits_since(session, guide.id, today),
                      "orders": orders_paid_since(session, guide.id, today)},
            "currency": currency, "earnings": earnings, "days": per_day}  # fmt: skip
