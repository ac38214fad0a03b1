"""What a brand admin reads about their guides (ADR 0025): the guides, the binding rule's versions, and a per-guide
report over a period: link visits, customers bound, orders paid and their GMV net of refunds. A brand admin reads
their own brand only: another brand is "not found" (404), as if it did not exist."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.errors import NotFound
from mall.guides import binding
from mall.guides.earnings_days import CREDITS
from mall.guides.ledger_models import CommissionEntry
from mall.guides.models import Binding, BindingSetting, Guide, GuideVisit
from mall.identity.roles import Actor
from mall.orders.models import Order, OrderLine, RefundLine

STATUSES = ("invited", "active", "suspended", "removed")


def brand_of(actor: Actor, brand_id: int | None) -> int:
    """The brand the admin reads: their own unless named; another brand's is not found."""
    brand = brand_id if brand_id is not None else actor.brand_id
    if brand is None or not actor.can_manage_brand(brand):
        raise NotFound("guides.brand_not_found", "No such brand of yours.")
    return brand


def guides(session: Session, *, brand_id: int, status: str | None = None) -> list[Guide]:
    query = sa.select(Guide).where(Guide.brand_id == brand_id).order_by(Guide.id)
    if status is not None:
        query = query.where(Guide.status == status)
    return list(session.scalars(query))


def binding_rule(session: Session, *, brand_id: int, now: datetime) -> dict:
    """The rule in force now (version 0: the default, no setting saved yet) and every saved version, newest first."""
    versions = list(session.scalars(sa.select(BindingSetting).where(BindingSetting.brand_id == brand_id)
                                    .order_by(BindingSetting.version.desc())))  # fmt: skip
    in_force = binding.setting_in_force(session, brand_id, now)
    return {"brand_id": brand_id, "in_force": {k: in_force[k] for k in ("mode", "days", "order_days")}
            | {"version": in_force["setting_version"]}, "versions": versions}  # fmt: skip


def _by_guide(session: Session, query) -> dict[int, int]:
    return {guide_id: int(value or 0) for guide_id, value in session.execute(query)}


def report(session: Session, *, brand_id: int, start: datetime, end: datetime, now: datetime) -> list[dict]:
    """Per guide of the brand, over [start, end): visits, customers newly bound and bound now, orders paid and
    their paid GMV (the guide's lines), what was refunded of those lines (refund_lines) and the net, and the
    commission posted in the period (earn, reverse, adjust) by currency and state."""
    rows = guides(session, brand_id=brand_id)
    ids = [g.id for g in rows]
    if not ids:
        return []
    visits = _by_guide(session, sa.select(GuideVisit.guide_id, sa.func.count()).where(
        GuideVisit.guide_id.in_(ids), GuideVisit.visited_at >= start, GuideVisit.visited_at < end
    ).group_by(GuideVisit.guide_id))  # fmt: skip
    new = _by_guide(session, sa.select(Binding.guide_id, sa.func.count()).where(
        Binding.guide_id.in_(ids), Binding.since >= start, Binding.since < end).group_by(Binding.guide_id))  # fmt: skip
    bound = _by_guide(session, sa.select(Binding.guide_id, sa.func.count()).where(
        Binding.guide_id.in_(ids), Binding.ended_at.is_(None), sa.or_(Binding.until.is_(None), Binding.until > now)
    ).group_by(Binding.guide_id))  # fmt: skip
    paid_lines = (sa.select(OrderLine.id, OrderLine.guide_id, OrderLine.order_id, OrderLine.payable)
                  .join(Order, Order.id == OrderLine.order_id)
                  .where(OrderLine.guide_id.in_(ids), Order.paid_at >= start, Order.paid_at < end).subquery())  # fmt: skip
    sales = {g: (n, paid) for g, n, paid in session.execute(
        sa.select(paid_lines.c.guide_id, sa.func.count(sa.distinct(paid_lines.c.order_id)),
                  sa.func.sum(paid_lines.c.payable)).group_by(paid_lines.c.guide_id))}  # fmt: skip
    refunded = _by_guide(session, sa.select(paid_lines.c.guide_id, sa.func.sum(RefundLine.amount))
                         .join(RefundLine, RefundLine.order_line_id == paid_lines.c.id)
                         .group_by(paid_lines.c.guide_id))  # fmt: skip
    commission: dict[int, dict] = {}
    for guide_id, currency, state, amount in session.execute(
        sa.select(CommissionEntry.guide_id, CommissionEntry.currency, CommissionEntry.state,
                  sa.func.sum(CommissionEntry.amount))
        .where(CommissionEntry.guide_id.in_(ids), CommissionEntry.kind.in_(CREDITS),
               CommissionEntry.created_at >= start, CommissionEntry.created_at < end)
        .group_by(CommissionEntry.guide_id, CommissionEntry.currency, CommissionEntry.state)):  # fmt: skip
        commission.setdefault(guide_id, {}).setdefault(currency, {})[state] = int(amount or 0)
    out = []
    for guide in rows:
        orders, paid = sales.get(guide.id, (0, 0))
        paid, back = int(paid or 0), refunded.get(guide.id, 0)
        out.append({"guide_id": guide.id, "name": guide.name, "status": guide.status, "store_id": guide.store_id,
                    "visits": visits.get(guide.id, 0), "new_customers": new.get(guide.id, 0),
                    "bound_customers": bound.get(guide.id, 0), "orders": orders, "paid_gmv": paid,
                    "refunded": back, "net_gmv": paid - back, "commission": commission.get(guide.id, {})})  # fmt: skip
    return out
