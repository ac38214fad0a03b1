"""Member levels (ADR 0030): the shopper's level and progress; the platform's level table for operators (replace
it, dry-run a proposed one, apply). Levels are platform-wide: platform admins change them, brand admins may read
the table (their identity products are gated on it)."""

from __future__ import annotations

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.members.level_schemas import (
    DryRunSchema,
    LevelJobSchema,
    LevelProgrammeSchema,
    LevelsReplacedSchema,
    LevelTableSchema,
    MyLevelSchema,
)  # fmt: skip
from api.tx import commit, read_only
from mall import clock
from mall.identity.roles import Role
from mall.members import growth, levels
from workers import queues
from workers.jobs.levels import evaluate_levels

blp = MallBlueprint("levels", __name__, description="Member levels: progress, the level table, dry-run, apply")


def _programme(table) -> dict:
    programme = growth.current()
    return {"levels": levels.as_dicts(table), "term": programme.term, "grace_days": programme.grace_days,
            "currency": programme.currency}  # fmt: skip


def _queue_evaluation() -> str:
    job_id = f"member-levels-{clock.now():%Y%m%dT%H%M%S%f}"
    queues.enqueue(evaluate_levels, queue_name=queues.LOW, job_id=job_id, job_timeout=3600)
    return job_id


@blp.get("/me/level")
@blp.auth(Role.SHOPPER)
@blp.response(200, MyLevelSchema)
def my_level():
    """The level in force, growth over the term, the next level and the growth it still needs, the benefits."""
    read_only()
    return levels.progress(db.session, user_id=current_actor().user_id)


@blp.get("/admin/members/levels")
@blp.auth(Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)
@blp.response(200, LevelProgrammeSchema)
def list_levels():
    read_only()
    return _programme(levels.table(db.session))


@blp.put("/admin/members/levels")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.arguments(LevelTableSchema)
@blp.response(200, LevelsReplacedSchema)
def replace_levels(body):
    """Replace the whole table (an empty list stops managing levels), then queue the evaluation that moves members
    by it: raised at once, lowered after the grace period. Dry-run it first."""
    table = levels.replace(db.session, body["levels"])
    commit()
    return {**_programme(table), "job_id": _queue_evaluation()}


@blp.post("/admin/members/levels/dry-run")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.arguments(LevelTableSchema)
@blp.response(200, DryRunSchema)
def dry_run(body):
    """How many members a proposed table would move up or down, per level, now; changes nothing."""
    read_only()
    return levels.dry_run(db.session, body["levels"])


@blp.post("/admin/members/levels/apply")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.response(202, LevelJobSchema)
def apply():
    """Evaluate every member by the current table now (what the daily job does)."""
    return {"job_id": _queue_evaluation()}
