"""Segments: saved filters over tags, level, RFM group, lifecycle stage, first touch and brand behaviour.

A definition compiles to one SELECT of user ids (EXISTS subqueries on the tag and score tables, read at the
latest done RFM run), so a segment is counted, paged, used as a coupon audience, a bulk grant's recipients and a
journey condition by the same query. A brand's segment only ever reaches that brand's members: those with a
score row in the brand (they bought there) or holding one of the brand's own tags."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity.models import User
from mall.identity.roles import Actor, Role
from mall.members.models import GROUPS, PLATFORM, STAGES, FirstTouch, RfmScore, Segment, Tag, TagAssignment
from mall.members.rfm import latest_run_id
from mall.members.tags import scope_for, visible_scopes

LISTS = {"tags_any": str, "tags_all": str, "tags_none": str, "levels": int, "rfm_groups": str, "stages": str,
         "bought_brands": int, "not_bought_brands": int, "first_touch": str}  # fmt: skip
NUMBERS = ("min_level", "min_orders", "min_spend")
CHOICES = {"rfm_groups": GROUPS, "stages": STAGES, "first_touch": ("signup", "live_room", "guide", "campaign")}
PAGE = 100


def check_definition(definition: dict, *, scope: int) -> dict:
    unknown = set(definition) - set(LISTS) - set(NUMBERS)
    if unknown:
        raise Invalid("member.segment_invalid", f"Unknown filter(s): {', '.join(sorted(unknown))}.", field="definition")
    for key, kind in LISTS.items():
        values = definition.get(key, [])
        if not isinstance(values, list) or any(not isinstance(v, kind) or isinstance(v, bool) for v in values):
            raise Invalid("member.segment_invalid", f"{key} is a list of {kind.__name__}.", field="definition")
        if key in CHOICES and set(values) - set(CHOICES[key]):
            raise Invalid("member.segment_invalid", f"{key}: one of {', '.join(CHOICES[key])}.", field="definition")
    for key in NUMBERS:
        if key in definition and (not isinstance(definition[key], int) or definition[key] < 0):
            raise Invalid("member.segment_invalid", f"{key} is a non-negative integer.", field="definition")
    brands = set(definition.get("bought_brands", [])) | set(definition.get("not_bought_brands", []))
    if scope != PLATFORM and brands - {scope}:
        raise Forbidden("member.brand_forbidden", "A brand's segment looks at that brand's purchases only.")
    return definition


def _scores(run_id: int, scope: int):
    return sa.select(RfmScore.user_id).where(RfmScore.run_id == run_id, RfmScore.scope == scope,
                                             RfmScore.user_id == User.id)  # fmt: skip


def _holds(codes: list[str], scopes: tuple[int, ...]):
    return (sa.select(TagAssignment.user_id).join(Tag, Tag.id == TagAssignment.tag_id)
            .where(TagAssignment.user_id == User.id, Tag.code.in_(codes), Tag.scope.in_(scopes)))  # fmt: skip


def _clauses(d: dict, scope: int, run_id: int) -> list:
    scopes = visible_scopes(scope)
    found = [User.role == Role.SHOPPER]
    if scope != PLATFORM:
        own_tag = _holds_scope(scope)
        found.append(sa.or_(sa.exists(_scores(run_id, scope)), sa.exists(own_tag)))
    if d.get("tags_any"):
        found.append(sa.exists(_holds(d["tags_any"], scopes)))
    found += [sa.exists(_holds([code], scopes)) for code in d.get("tags_all", [])]
    if d.get("tags_none"):
        found.append(~sa.exists(_holds(d["tags_none"], scopes)))
    if d.get("levels"):
        found.append(User.member_level.in_(d["levels"]))
    if "min_level" in d:
        found.append(User.member_level >= d["min_level"])
    found += _score_clauses(d, scope, run_id)
    if d.get("bought_brands"):
        found.append(sa.or_(*(sa.exists(_scores(run_id, b)) for b in d["bought_brands"])))
    found += [~sa.exists(_scores(run_id, b)) for b in d.get("not_bought_brands", [])]
    if d.get("first_touch"):
        touch = sa.select(FirstTouch.user_id).where(FirstTouch.user_id == User.id,
                                                    FirstTouch.channel.in_(d["first_touch"]))  # fmt: skip
        found.append(sa.exists(touch))
    return found


def _holds_scope(scope: int):
    return (sa.select(TagAssignment.user_id).join(Tag, Tag.id == TagAssignment.tag_id)
            .where(TagAssignment.user_id == User.id, Tag.scope == scope))  # fmt: skip


def _score_clauses(d: dict, scope: int, run_id: int) -> list:
    where = []
    if d.get("rfm_groups"):
        where.append(RfmScore.grp.in_(d["rfm_groups"]))
    if d.get("stages"):
        where.append(RfmScore.stage.in_(d["stages"]))
    if "min_orders" in d:
        where.append(RfmScore.frequency >= d["min_orders"])
    if "min_spend" in d:
        where.append(RfmScore.monetary >= d["min_spend"])
    return [sa.exists(_scores(run_id, scope).where(*where))] if where else []


def member_ids(session: Session, *, scope: int, definition: dict) -> sa.Select:
    """The SELECT of the members' ids (ordered by id), at the latest done RFM run."""
    run_id = latest_run_id(session) or 0
    return sa.select(User.id).where(*_clauses(definition, scope, run_id)).order_by(User.id)


def count_definition(session: Session, *, scope: int, definition: dict) -> int:
    ids = member_ids(session, scope=scope, definition=definition).order_by(None).subquery()
    return session.scalar(sa.select(sa.func.count()).select_from(ids))


# -- saved segments ----------------------------------------------------------------------------------------------


def create(session: Session, *, actor: Actor, brand_id: int | None, name: str, definition: dict) -> Segment:
    scope = scope_for(actor, brand_id)
    check_definition(definition, scope=scope)
    if session.scalar(sa.select(Segment.id).filter_by(scope=scope, name=name)) is not None:
        raise Conflict("member.segment_exists", f"A segment named {name!r} exists already.", field="name")
    segment = Segment(scope=scope, name=name, definition=definition, created_by=actor.user_id)
    session.add(segment)
    session.flush()
    return segment


def get(session: Session, *, actor: Actor, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None or (actor.role != Role.PLATFORM_ADMIN and segment.scope != scope_for(actor, None)):
        raise NotFound("member.segment_not_found", f"Segment {segment_id} not found.")
    return segment


def list_segments(session: Session, *, actor: Actor, brand_id: int | None) -> list[Segment]:
    scope = scope_for(actor, brand_id)
    return list(session.scalars(sa.select(Segment).where(Segment.scope == scope).order_by(Segment.id)))


def update(session: Session, *, actor: Actor, segment_id: int, **changes) -> Segment:
    segment = get(session, actor=actor, segment_id=segment_id)
    if "definition" in changes:
        segment.definition = check_definition(changes["definition"], scope=segment.scope)
    if "name" in changes:
        segment.name = changes["name"]
    session.flush()
    return segment


def delete(session: Session, *, actor: Actor, segment_id: int) -> None:
    from mall.promotions.coupons.models import CouponTemplate

    segment = get(session, actor=actor, segment_id=segment_id)
    used = sa.select(CouponTemplate.id).where(CouponTemplate.audience_segment_id == segment.id,
                                              CouponTemplate.status != "ended").limit(1)  # fmt: skip
    if session.scalar(used) is not None:
        raise Conflict("member.segment_in_use", "A coupon's audience is this segment: end the coupon first.")
    session.delete(segment)
    session.flush()


def count(session: Session, *, segment: Segment) -> int:
    return count_definition(session, scope=segment.scope, definition=segment.definition)


def members(session: Session, *, segment: Segment, after: int = 0, limit: int = PAGE) -> list[dict]:
    """A page of the segment's members (keyset on user id), with their group and stage in the segment's scope."""
    run_id = latest_run_id(session) or 0
    ids = member_ids(session, scope=segment.scope, definition=segment.definition).where(User.id > after).limit(limit)
    page = ids.subquery()
    score = sa.and_(RfmScore.run_id == run_id, RfmScore.scope == segment.scope, RfmScore.user_id == User.id)
    query = (sa.select(User.id, User.display_name, User.member_level, RfmScore.grp, RfmScore.stage)
             .join(page, page.c.id == User.id).outerjoin(RfmScore, score).order_by(User.id))  # fmt: skip
    return [{"user_id": r.id, "display_name": r.display_name, "member_level": r.member_level, "rfm_group": r.grp,
             "stage": r.stage} for r in session.execute(query)]  # fmt: skip


def contains(session: Session, *, segment_id: int, user_id: int) -> bool:
    segment = session.get(Segment, segment_id)
    if segment is None:
        return False
    ids = member_ids(session, scope=segment.scope, definition=segment.definition).where(User.id == user_id)
    return session.scalar(ids.limit(1)) is not None


# -- hooks for coupons and journeys ------------------------------------------------------------------------------


def audience(session: Session, segment_id: int, brand_id: int | None):
    """The coupons capability's segment audience: a clause on users.id. A brand's coupon takes that brand's
    segments, a platform coupon the platform's."""
    segment = session.get(Segment, segment_id)
    if segment is None or segment.scope != (brand_id or PLATFORM):
        raise Invalid("coupon.segment_unknown", f"No segment {segment_id} for this coupon's brand.",
                      field="audience_segment_id")  # fmt: skip
    return User.id.in_(member_ids(session, scope=segment.scope, definition=segment.definition).order_by(None))


def in_segment_guard(session: Session, user_id: int, guard: dict) -> bool:
    """The outbox guard of a journey step's `in_segment:<id>` condition, checked when the step fires."""
    return contains(session, segment_id=int(guard["segment_id"]), user_id=user_id)
