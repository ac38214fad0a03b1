"""The points catalogue (积分兑券, ADR 0029): coupons members buy with points.

An item names a coupon template (its brand is the item's brand), a points price, how many one member may redeem,
a stock (NULL: whatever the template gives out) and a window. Platform admins manage any item, brand admins those
of their brand's templates.

`redeem` is one transaction: the member's lock (ledger lock order: the balance row first), the member's cap, the
item's stock (a conditional UPDATE), the points (`redeem` entries, oldest expiry first, all or nothing) and the
coupon, issued by the coupons capability's `issue(strict=True)` with every rule of the template (status, window,
audience, per-shopper limit, total quantity). Any refusal raises, and the caller's rollback undoes all of it:
points are never taken without the coupon, nor the coupon given without the points.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity.roles import Actor, Role
from mall.members import ledger
from mall.members.points_models import PointsCatalogueItem, PointsCatalogueRedemption
from mall.promotions.coupons import services as coupons
from mall.promotions.coupons.models import Coupon

Item, Redemption = PointsCatalogueItem, PointsCatalogueRedemption
EDITABLE = ("title", "points_price", "per_member_limit", "stock", "starts_at", "ends_at", "status")


def _manages(actor: Actor, brand_id: int | None) -> None:
    if actor.role == Role.PLATFORM_ADMIN or (brand_id is not None and actor.can_manage_brand(brand_id)):
        return
    raise Forbidden("points.catalogue_forbidden", "Brand admins manage their own brand's catalogue items only.")


def _check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise Invalid("points.catalogue_window", "The window must end after it starts.", field="ends_at")


def create_item(session: Session, *, actor: Actor, template_id: int, **fields) -> Item:
    template = coupons.get_template(session, template_id)
    _manages(actor, template.brand_id)
    _check_window(fields.get("starts_at"), fields.get("ends_at"))
    now = clock.now()
    item = Item(template_id=template.id, brand_id=template.brand_id, redeemed_count=0, created_at=now,
                updated_at=now, **{"title": template.name, "per_member_limit": 1, "status": "active", **fields})  # fmt: skip
    session.add(item)
    session.flush()
    return item


def get_item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound("points.catalogue_item_not_found", f"Catalogue item {item_id} not found.")
    return item


def update_item(session: Session, *, actor: Actor, item_id: int, **changes) -> Item:
    item = get_item(session, item_id)
    _manages(actor, item.brand_id)
    merged = {name: changes.get(name, getattr(item, name)) for name in EDITABLE}
    _check_window(merged["starts_at"], merged["ends_at"])
    if merged["stock"] is not None and merged["stock"] < item.redeemed_count:
        raise Invalid("points.catalogue_stock", f"{item.redeemed_count} were redeemed already.", field="stock")
    for name, value in changes.items():
        setattr(item, name, value)
    item.updated_at = clock.now()
    session.flush()
    return item


def list_items(session: Session, *, actor: Actor, brand_id: int | None = None) -> list[Item]:
    """Operators' list: brand admins see their brand's items (whatever `brand_id` they ask for)."""
    if actor.role != Role.PLATFORM_ADMIN:
        brand_id = actor.brand_id
    query = sa.select(Item).order_by(Item.id)
    if brand_id is not None or actor.role != Role.PLATFORM_ADMIN:
        query = query.where(Item.brand_id == brand_id)
    return list(session.scalars(query))


IN_STOCK = sa.or_(Item.stock.is_(None), Item.redeemed_count < Item.stock)


def _offered(now: datetime):
    return sa.and_(Item.status == "active", sa.or_(Item.starts_at.is_(None), Item.starts_at <= now),
                   sa.or_(Item.ends_at.is_(None), Item.ends_at > now))  # fmt: skip


def available(session: Session, *, user_id: int, brand_id: int | None = None) -> list[dict]:
    """What a member can buy now: offered items (active, in their window, in stock), with how many they redeemed
    and may still redeem, cheapest first."""
    now = clock.now()
    mine = (sa.select(sa.func.count()).where(Redemption.item_id == Item.id, Redemption.user_id == user_id)
            .scalar_subquery())  # fmt: skip
    query = sa.select(Item, mine.label("mine")).where(_offered(now), IN_STOCK).order_by(Item.points_price, Item.id)
    if brand_id is not None:
        query = query.where(Item.brand_id == brand_id)
    return [{"item": item, "redeemed": n, "left_for_me": max(item.per_member_limit - n, 0)}
            for item, n in session.execute(query).all()]  # fmt: skip


def redemption_key(user_id: int, idempotency_key: str) -> str:
    return f"catalogue:{user_id}:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}"


def redeem(session: Session, *, user_id: int, item_id: int, key: str) -> tuple[Redemption, Coupon]:
    """Buy one coupon of `item_id` with points. `key` (from the shopper's Idempotency-Key, `redemption_key`): a
    replay returns the first redemption. Raises (and the caller rolls everything back) if any rule refuses."""
    now = clock.now()
    item = get_item(session, item_id)
    ledger.lock(session, [user_id], now)  # first, as everything that lowers points: the member's redemptions queue
    done = session.scalar(sa.select(Redemption).where(Redemption.key == key))
    if done is not None:
        return done, session.get(Coupon, done.coupon_id)
    if session.scalar(sa.select(Item.id).where(Item.id == item_id, _offered(now))) is None:
        raise Conflict("points.catalogue_not_offered", "This coupon is not offered for points now.")
    mine = session.scalar(
        sa.select(sa.func.count()).where(Redemption.item_id == item_id, Redemption.user_id == user_id)
    )
    if mine >= item.per_member_limit:
        raise Conflict("points.catalogue_limit_reached", "You redeemed as many of these as allowed.",
                       per_member_limit=item.per_member_limit)  # fmt: skip
    taken = session.execute(sa.update(Item).where(Item.id == item_id, IN_STOCK)
                            .values(redeemed_count=Item.redeemed_count + 1, updated_at=now),
                            execution_options={"synchronize_session": False}).rowcount  # fmt: skip
    if taken != 1:
        raise Conflict("points.catalogue_sold_out", "All of these have been redeemed.")
    ledger.take(session, user_id=user_id, amount=item.points_price, kind="redeem", key=key, now=now,
                reason={"rule": "catalogue", "item_id": item.id, "template_id": item.template_id})  # fmt: skip
    coupon = coupons.issue(session, template=coupons.get_template(session, item.template_id), user_id=user_id,
                           source="points", grant_ref=f"points-{item.id}-{mine + 1}", strict=True)  # fmt: skip
    redemption = Redemption(item_id=item.id, user_id=user_id, seq=mine + 1, points=item.points_price,
                            coupon_id=coupon.id, key=key, created_at=now)  # fmt: skip
    session.add(redemption)
    session.flush()
    return redemption, coupon
