"""Members for operators: tags (CRUD, uploads, a segment's members), segments (CRUD, count, members), the RFM
grid and its R x FM heat map, movements since the last run, lifecycle counts and the cross-brand repurchase
matrix, the scopes the caller may read. A brand admin works on their brand only; a platform admin on the platform
(no brand_id) or any brand."""

from __future__ import annotations

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.members.schemas import (
    CountSchema,
    CrossBrandSchema,
    GridSchema,
    HeatmapSchema,
    LifecycleSchema,
    MemberSchema,
    MemberSegmentPatchSchema,
    MemberSegmentSchema,
    MovementsSchema,
    PageArgs,
    PreviewSchema,
    QueuedSchema,
    ScopeArgs,
    ScopeSchema,
    SegmentRefSchema,
    TagArgs,
    TagPatchSchema,
    TagSchema,
    UserIdsSchema,
)  # fmt: skip
from api.tx import commit
from mall.identity.roles import MERCHANT, Role
from mall.members import reports, segments, tags
from workers import queues
from workers.jobs.members import members_nightly, tag_segment

blp = MallBlueprint("members", __name__, url_prefix="/admin/members", description="Member tags, segments, RFM")


def _scope(args: dict) -> int:
    return tags.scope_for(current_actor(), args.get("brand_id"))


# -- tags ------------------------------------------------------------------------------------------------------


@blp.get("/tags")
@blp.auth(*MERCHANT)
@blp.arguments(TagArgs, location="query")
@blp.response(200, TagSchema(many=True))
def list_tags(args):
    """The platform's tags and, for a brand, the brand's own."""
    return tags.list_tags(db.session, actor=current_actor(), **args)


@blp.post("/tags")
@blp.auth(*MERCHANT)
@blp.arguments(TagSchema)
@blp.response(201, TagSchema)
def create_tag(body):
    """A manual tag of the brand (brand admins) or of the platform (platform admins, no brand_id)."""
    tag = tags.create_tag(db.session, actor=current_actor(), **body)
    commit()
    return tag


@blp.patch("/tags/<int:tag_id>")
@blp.auth(*MERCHANT)
@blp.arguments(TagPatchSchema)
@blp.response(200, TagSchema)
def rename_tag(body, tag_id):
    tag = tags.rename_tag(db.session, actor=current_actor(), tag_id=tag_id, **body)
    commit()
    return tag


@blp.delete("/tags/<int:tag_id>")
@blp.auth(*MERCHANT)
@blp.response(204)
def delete_tag(tag_id):
    tags.delete_tag(db.session, actor=current_actor(), tag_id=tag_id)
    commit()


@blp.post("/tags/<int:tag_id>/assign")
@blp.auth(*MERCHANT)
@blp.arguments(UserIdsSchema)
@blp.response(200, CountSchema)
def assign(body, tag_id):
    """An upload of user ids (up to 10,000 a call): shoppers among them get the tag, once."""
    count = tags.assign(db.session, actor=current_actor(), tag_id=tag_id, user_ids=body["user_ids"])
    commit()
    return {"count": count}


@blp.post("/tags/<int:tag_id>/unassign")
@blp.auth(*MERCHANT)
@blp.arguments(UserIdsSchema)
@blp.response(200, CountSchema)
def unassign(body, tag_id):
    count = tags.unassign(db.session, actor=current_actor(), tag_id=tag_id, user_ids=body["user_ids"])
    commit()
    return {"count": count}


@blp.post("/tags/<int:tag_id>/assign-segment")
@blp.auth(*MERCHANT)
@blp.arguments(SegmentRefSchema)
@blp.response(202, QueuedSchema)
def assign_segment(body, tag_id):
    """Tag every member of a segment, in batches in the background."""
    actor = current_actor()
    tag = tags.get_tag(db.session, actor=actor, tag_id=tag_id, write=True)
    segment = segments.get(db.session, actor=actor, segment_id=body["segment_id"])
    job_id = f"tag-{tag.id}-segment-{segment.id}"
    queues.enqueue(tag_segment, tag.id, segment.id, actor.user_id, queue_name=queues.LOW, job_id=job_id)
    return {"job_id": job_id}


# -- segments --------------------------------------------------------------------------------------------------


@blp.get("/segments")
@blp.auth(*MERCHANT)
@blp.arguments(ScopeArgs, location="query")
@blp.response(200, MemberSegmentSchema(many=True))
def list_segments(args):
    return segments.list_segments(db.session, actor=current_actor(), **args)


@blp.post("/segments")
@blp.auth(*MERCHANT)
@blp.arguments(MemberSegmentSchema)
@blp.response(201, MemberSegmentSchema)
def create_segment(body):
    segment = segments.create(db.session, actor=current_actor(), **body)
    commit()
    return segment


@blp.post("/segments/count")
@blp.auth(*MERCHANT)
@blp.arguments(PreviewSchema)
@blp.response(200, CountSchema)
def preview_count(body):
    """How many members a definition selects now, before it is saved."""
    scope = _scope(body)
    definition = segments.check_definition(body["definition"], scope=scope)
    return {"count": segments.count_definition(db.session, scope=scope, definition=definition)}


@blp.get("/segments/<int:segment_id>")
@blp.auth(*MERCHANT)
@blp.response(200, MemberSegmentSchema)
def get_segment(segment_id):
    return segments.get(db.session, actor=current_actor(), segment_id=segment_id)


@blp.patch("/segments/<int:segment_id>")
@blp.auth(*MERCHANT)
@blp.arguments(MemberSegmentPatchSchema)
@blp.response(200, MemberSegmentSchema)
def update_segment(body, segment_id):
    segment = segments.update(db.session, actor=current_actor(), segment_id=segment_id, **body)
    commit()
    return segment


@blp.delete("/segments/<int:segment_id>")
@blp.auth(*MERCHANT)
@blp.response(204)
def delete_segment(segment_id):
    segments.delete(db.session, actor=current_actor(), segment_id=segment_id)
    commit()


@blp.get("/segments/<int:segment_id>/count")
@blp.auth(*MERCHANT)
@blp.response(200, CountSchema)
def count_segment(segment_id):
    segment = segments.get(db.session, actor=current_actor(), segment_id=segment_id)
    return {"count": segments.count(db.session, segment=segment)}


@blp.get("/segments/<int:segment_id>/members")
@blp.auth(*MERCHANT)
@blp.arguments(PageArgs, location="query")
@blp.response(200, MemberSchema(many=True))
def segment_members(args, segment_id):
    """A page of members by id: pass the last user_id as `after` for the next."""
    segment = segments.get(db.session, actor=current_actor(), segment_id=segment_id)
    return segments.members(db.session, segment=segment, **args)


# -- RFM, lifecycle, cross-brand -------------------------------------------------------------------------------


@blp.get("/rfm/grid")
@blp.auth(*MERCHANT)
@blp.arguments(ScopeArgs, location="query")
@blp.response(200, GridSchema)
def rfm_grid(args):
    """Members per R x F cell and per group at the latest run, for a brand or the platform."""
    return reports.grid(db.session, scope=_scope(args))


@blp.get("/rfm/heatmap")
@blp.auth(*MERCHANT)
@blp.arguments(ScopeArgs, location="query")
@blp.response(200, HeatmapSchema)
def rfm_heatmap(args):
    """The 5 x 5 grid of R by FM score at the latest run: every cell's named group and members (the operator
    console's heat map), and the members per group."""
    return reports.heatmap(db.session, scope=_scope(args))


@blp.get("/scopes")
@blp.auth(*MERCHANT)
@blp.response(200, ScopeSchema(many=True))
def list_scopes():
    """What the caller may read members of: a brand admin their brand; a platform admin the platform and every
    brand."""
    return reports.scopes(db.session, actor=current_actor())


@blp.get("/rfm/movements")
@blp.auth(*MERCHANT)
@blp.arguments(ScopeArgs, location="query")
@blp.response(200, MovementsSchema)
def rfm_movements(args):
    """Group changes since the run before, and which score moved them."""
    return reports.movements(db.session, scope=_scope(args))


@blp.get("/lifecycle")
@blp.auth(*MERCHANT)
@blp.arguments(ScopeArgs, location="query")
@blp.response(200, LifecycleSchema)
def lifecycle(args):
    return reports.lifecycle(db.session, scope=_scope(args))


@blp.get("/cross-brand")
@blp.auth(*MERCHANT)
@blp.arguments(ScopeArgs, location="query")
@blp.response(200, CrossBrandSchema)
def cross_brand(args):
    """The repurchase matrix: a platform admin sees every pair (or one brand's row), a brand admin its own row."""
    scope = _scope(args)
    return reports.cross_brand(db.session, brand_id=scope or None)


@blp.post("/runs")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.response(202, QueuedSchema)
def run_now():
    """Queue the nightly members run now (RFM, groups, lifecycle, tags)."""
    queues.enqueue(members_nightly, queue_name=queues.LOW, job_id="members-nightly")
    return {"job_id": "members-nightly"}
