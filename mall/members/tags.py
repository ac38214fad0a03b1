"""Member tags: channel (first touch), system (computed from behaviour each night) and manual (operators).

The nightly refresh works in bounded batches of user ids: per batch, one DELETE of the batch's system tags and
one INSERT … SELECT of what they are now; channel tags follow the first touch, which never moves once written."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import audit, clock
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.events import DomainEvent
from mall.identity.models import User
from mall.identity.roles import Actor, Role
from mall.members.models import PLATFORM, FirstTouch, Tag, TagAssignment

BATCH = 20_000  # user ids per refresh batch
MAX_UPLOAD = 10_000  # user ids per manual assignment call
HIGH_REFUND_SHARE = (3, 10)  # refunded >= 30% of paid, over at least two paid orders
SYSTEM_CODES = ("cross_brand_buyer", "high_refund_rate", "coupon_only_buyer")
COUNTED = {"preserve_rowcount": True}  # INSERT … SELECT: SQLAlchemy drops the row count otherwise (psycopg)
RESERVED_PREFIXES = ("channel:", "bought_brand:", "bought_category:")


def scope_for(actor: Actor, brand_id: int | None) -> int:
    """The scope an operator works in: a brand admin their brand, a platform admin the platform or any brand."""
    if actor.role == Role.BRAND_ADMIN:
        if brand_id not in (None, actor.brand_id):
            raise Forbidden("member.brand_forbidden", "You may only work on your own brand's members.")
        return actor.brand_id
    if actor.role != Role.PLATFORM_ADMIN:
        raise Forbidden("member.forbidden", "Only brand and platform admins manage members.")
    return brand_id or PLATFORM


def visible_scopes(scope: int) -> tuple[int, ...]:
    return (PLATFORM,) if scope == PLATFORM else (PLATFORM, scope)


# -- manual tags -------------------------------------------------------------------------------------------------


def create_tag(session: Session, *, actor: Actor, brand_id: int | None, code: str, name: str = "") -> Tag:
    scope = scope_for(actor, brand_id)
    if code.startswith(RESERVED_PREFIXES) or code in SYSTEM_CODES:
        raise Invalid("member.tag_reserved", f"Tag codes starting {RESERVED_PREFIXES} are the system's.", field="code")
    if session.scalar(sa.select(Tag.id).filter_by(scope=scope, code=code)) is not None:
        raise Conflict("member.tag_exists", f"A tag {code!r} exists already.", field="code")
    tag = Tag(scope=scope, kind="manual", code=code, name=name or code, created_by=actor.user_id)
    session.add(tag)
    session.flush()
    return tag


def list_tags(session: Session, *, actor: Actor, brand_id: int | None, kind: str | None = None) -> list[Tag]:
    scope = scope_for(actor, brand_id)
    query = sa.select(Tag).where(Tag.scope.in_(visible_scopes(scope))).order_by(Tag.id)
    if kind:
        query = query.where(Tag.kind == kind)
    return list(session.scalars(query))


def get_tag(session: Session, *, actor: Actor, tag_id: int, write: bool = False) -> Tag:
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise NotFound("member.tag_not_found", f"Tag {tag_id} not found.")
    scope = scope_for(actor, None if actor.role == Role.PLATFORM_ADMIN else actor.brand_id)
    if scope != PLATFORM and tag.scope not in visible_scopes(scope):
        raise NotFound("member.tag_not_found", f"Tag {tag_id} not found.")
    if write and (tag.kind != "manual" or (scope != PLATFORM and tag.scope != scope)):
        raise Forbidden("member.tag_read_only", "Only your own manual tags can be changed.")
    return tag


def rename_tag(session: Session, *, actor: Actor, tag_id: int, name: str) -> Tag:
    tag = get_tag(session, actor=actor, tag_id=tag_id, write=True)
    tag.name = name
    session.flush()
    return tag


def delete_tag(session: Session, *, actor: Actor, tag_id: int) -> None:
    tag = get_tag(session, actor=actor, tag_id=tag_id, write=True)
    session.execute(sa.delete(TagAssignment).where(TagAssignment.tag_id == tag.id))
    session.delete(tag)
    session.flush()


def assign(session: Session, *, actor: Actor, tag_id: int, user_ids: Iterable[int]) -> int:
    """Give a manual tag to shoppers by id (an upload): one INSERT … SELECT, shoppers only, once each."""
    tag = get_tag(session, actor=actor, tag_id=tag_id, write=True)
    ids = sorted(set(user_ids))
    if len(ids) > MAX_UPLOAD:
        raise Invalid("member.upload_too_large", f"At most {MAX_UPLOAD} user ids per call.", field="user_ids")
    count = _assign_from(session, tag.id, sa.select(User.id).where(User.id.in_(ids)), actor.user_id) if ids else 0
    _audit(session, tag, "assigned", ids, count)
    return count


def assign_query(session: Session, *, tag_id: int, user_ids: sa.Select, actor_id: int | None) -> int:
    """Give a tag to the shoppers a query selects (a segment's batch)."""
    return _assign_from(session, tag_id, user_ids, actor_id)


def _assign_from(session: Session, tag_id: int, user_ids: sa.Select, actor_id: int | None) -> int:
    ids = user_ids.subquery()
    held = sa.select(TagAssignment.user_id).where(TagAssignment.tag_id == tag_id, TagAssignment.user_id == User.id)
    rows = (sa.select(sa.literal(tag_id), User.id, sa.literal(clock.now(), type_=TagAssignment.assigned_at.type),
                      sa.literal(actor_id, type_=sa.Integer))
            .where(User.id.in_(sa.select(ids.c[0])), User.role == Role.SHOPPER, ~sa.exists(held)))  # fmt: skip
    stmt = sa.insert(TagAssignment.__table__).from_select(["tag_id", "user_id", "assigned_at", "assigned_by"], rows)
    return session.execute(stmt, execution_options=COUNTED).rowcount


def unassign(session: Session, *, actor: Actor, tag_id: int, user_ids: Iterable[int]) -> int:
    tag = get_tag(session, actor=actor, tag_id=tag_id, write=True)
    ids = sorted(set(user_ids))[:MAX_UPLOAD]
    stmt = sa.delete(TagAssignment).where(TagAssignment.tag_id == tag.id, TagAssignment.user_id.in_(ids))
    count = session.execute(stmt).rowcount
    _audit(session, tag, "unassigned", ids, count)
    return count


def _audit(session: Session, tag: Tag, verb: str, user_ids: list[int], count: int) -> None:
    """A manual (un)assignment in the audit log: the ids asked for and how many assignments it changed."""
    if count:
        audit.record(session, action=f"member_tag.{verb}", object_type="member_tag", object_id=tag.id,
                     brand_id=tag.scope or None, before=None, after={verb: count, "user_ids": user_ids})  # fmt: skip


def codes_of(session: Session, user_id: int) -> set[str]:
    """The codes of every tag a member holds (the coupons capability's `tag_lookup`)."""
    query = (
        sa.select(Tag.code).join(TagAssignment, TagAssignment.tag_id == Tag.id).where(TagAssignment.user_id == user_id)
    )
    return set(session.scalars(query))


# -- channel tags ------------------------------------------------------------------------------------------------


def on_signed_up(session: Session, event: DomainEvent) -> None:
    """The channel parameter a shopper signed up with is their first touch (a reaction to shopper.signed_up)."""
    channel = (event.payload or {}).get("channel")
    if channel and session.get(FirstTouch, event.aggregate_id) is None:
        session.add(FirstTouch(user_id=event.aggregate_id, channel="signup", ref=channel[:64],
                               touched_at=event.occurred_at))  # fmt: skip
        session.flush()


def _touch_candidates(lo: int, hi: int) -> sa.Select:
    """Each member's first touch from orders and guide link visits, for members in [lo, hi) without one."""
    from mall.guides.models import GuideVisit
    from mall.orders.models import Order, OrderLine

    live = (sa.select(Order.user_id, sa.literal("live_room").label("channel"),
                      sa.cast(OrderLine.live_room_id, sa.String).label("ref"), Order.created_at.label("at"))
            .join(OrderLine, OrderLine.order_id == Order.id).where(OrderLine.live_room_id.is_not(None)))  # fmt: skip
    guide = (sa.select(Order.user_id, sa.literal("guide"), sa.cast(OrderLine.guide_id, sa.String), Order.created_at)
             .join(OrderLine, OrderLine.order_id == Order.id).where(OrderLine.guide_id.is_not(None)))  # fmt: skip
    campaign_id = OrderLine.source["campaign_id"].as_string()
    campaign = (sa.select(Order.user_id, sa.literal("campaign"), campaign_id, Order.created_at)
                .join(OrderLine, OrderLine.order_id == Order.id)
                .where(OrderLine.source["type"].as_string() == "group_buy", campaign_id.is_not(None)))  # fmt: skip
    visit = sa.select(GuideVisit.shopper_id, sa.literal("guide"), sa.cast(GuideVisit.guide_id, sa.String),
                      GuideVisit.visited_at)  # fmt: skip
    touches = sa.union_all(live, guide, campaign, visit).subquery()
    user = touches.c[0]
    first = sa.func.row_number().over(partition_by=user, order_by=(touches.c.at, touches.c.channel)).label("n")
    ranked = (sa.select(user.label("user_id"), touches.c.channel, touches.c.ref, touches.c.at, first)
              .where(user >= lo, user < hi).subquery())  # fmt: skip
    known = sa.select(FirstTouch.user_id).where(FirstTouch.user_id == ranked.c.user_id)
    return sa.select(ranked.c.user_id, ranked.c.channel, ranked.c.ref, ranked.c.at).where(
        ranked.c.n == 1, ~sa.exists(known)
    )


def record_first_touches(session: Session, *, lo: int, hi: int) -> int:
    stmt = sa.insert(FirstTouch.__table__).from_select(
        ["user_id", "channel", "ref", "touched_at"], _touch_candidates(lo, hi)
    )
    return session.execute(stmt, execution_options=COUNTED).rowcount


def _ensure_tags(session: Session, kind: str, codes: sa.Select) -> None:
    """Create the platform tags of `kind` named by a query of codes, where missing (set-based)."""
    found = codes.subquery()
    exists = sa.select(Tag.id).where(Tag.scope == PLATFORM, Tag.code == found.c[0])
    now = clock.now()
    rows = sa.select(sa.literal(PLATFORM), sa.literal(kind), found.c[0], found.c[0],
                     sa.literal(now, type_=Tag.created_at.type), sa.literal(now, type_=Tag.created_at.type)
                     ).where(~sa.exists(exists)).distinct()  # fmt: skip
    session.execute(
        sa.insert(Tag.__table__).from_select(["scope", "kind", "code", "name", "created_at", "updated_at"], rows)
    )


def _channel_codes(lo: int, hi: int) -> list[sa.Select]:
    where = (FirstTouch.user_id >= lo, FirstTouch.user_id < hi)
    kind = sa.literal("channel:") + FirstTouch.channel
    return [sa.select(kind.label("code"), FirstTouch.user_id).where(*where),
            sa.select((kind + ":" + FirstTouch.ref).label("code"), FirstTouch.user_id).where(*where)]  # fmt: skip


def _insert_assignments(session: Session, kind: str, pairs: list[sa.Select]) -> int:
    """Assign the platform tags of `kind` named by (code, user_id) queries, creating the tags first."""
    found = sa.union(*pairs).subquery()
    _ensure_tags(session, kind, sa.select(found.c[0]))
    held = sa.select(TagAssignment.user_id).where(TagAssignment.tag_id == Tag.id, TagAssignment.user_id == found.c[1])
    rows = (sa.select(Tag.id, found.c[1], sa.literal(clock.now(), type_=TagAssignment.assigned_at.type))
            .join(found, sa.and_(Tag.scope == PLATFORM, Tag.kind == kind, Tag.code == found.c[0]))
            .where(~sa.exists(held)))  # fmt: skip
    stmt = sa.insert(TagAssignment.__table__).from_select(["tag_id", "user_id", "assigned_at"], rows)
    return session.execute(stmt, execution_options=COUNTED).rowcount


# -- system tags -------------------------------------------------------------------------------------------------


def _system_codes(lo: int, hi: int, run_id: int | None) -> list[sa.Select]:
    """(code, user_id) of every system tag members in [lo, hi) hold now."""
    from mall.catalog.models import Product
    from mall.members.models import RfmScore
    from mall.orders.models import Order, OrderLine
    from mall.promotions.coupons.models import Coupon

    paid = (Order.paid_at.is_not(None), Order.user_id >= lo, Order.user_id < hi)
    brand = (RfmScore.run_id == (run_id or 0), RfmScore.scope != PLATFORM, RfmScore.user_id >= lo,
             RfmScore.user_id < hi)  # fmt: skip
    category = (sa.select(sa.literal("bought_category:") + sa.cast(Product.category_id, sa.String), Order.user_id)
                .join(OrderLine, OrderLine.order_id == Order.id).join(Product, Product.id == OrderLine.product_id)
                .where(*paid, OrderLine.refunded_quantity < OrderLine.quantity))  # fmt: skip
    used_coupon = sa.select(Coupon.id).where(Coupon.order_id == Order.id, Coupon.status == "used")
    num, den = HIGH_REFUND_SHARE
    return [
        sa.select(sa.literal("bought_brand:") + sa.cast(RfmScore.scope, sa.String), RfmScore.user_id).where(*brand),
        category,
        sa.select(sa.literal("cross_brand_buyer"), RfmScore.user_id).where(*brand).group_by(RfmScore.user_id)
        .having(sa.func.count() >= 2),
        sa.select(sa.literal("high_refund_rate"), Order.user_id).where(*paid).group_by(Order.user_id)
        .having(sa.func.count() >= 2, sa.func.sum(Order.refunded_total) * den >= sa.func.sum(Order.paid_total) * num),
        sa.select(sa.literal("coupon_only_buyer"), Order.user_id).where(*paid).group_by(Order.user_id)
        .having(sa.func.count() >= 2,
                sa.func.sum(sa.case((sa.exists(used_coupon), 0), else_=1)) == 0),
    ]  # fmt: skip


def refresh_batch(session: Session, *, lo: int, hi: int, run_id: int | None) -> dict:
    """First touches, channel and system tags of the members with ids in [lo, hi)."""
    touched = record_first_touches(session, lo=lo, hi=hi)
    channel = _insert_assignments(session, "channel", _channel_codes(lo, hi))
    system = sa.select(Tag.id).where(Tag.kind == "system")
    session.execute(sa.delete(TagAssignment).where(TagAssignment.user_id >= lo, TagAssignment.user_id < hi,
                                                   TagAssignment.tag_id.in_(system)))  # fmt: skip
    tagged = _insert_assignments(session, "system", _system_codes(lo, hi, run_id))
    return {"first_touches": touched, "channel": channel, "system": tagged}


def user_id_batches(session: Session, *, size: int = BATCH) -> list[tuple[int, int]]:
    top = session.scalar(sa.select(sa.func.max(User.id))) or 0
    return [(lo, lo + size) for lo in range(1, top + 1, size)]
