"""Tags, first touches, segments and the nightly score tables (ADR 0028).

Everything computed over members lands in these tables, never on `users` rows (the token cache's invalidation
listens on `users` writes). `scope` is 0 for the platform and a brand's id for that brand."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall.db import Base, JSONType, Timestamped

PLATFORM = 0  # the scope of platform-wide tags, segments and scores
TAG_KINDS = ("channel", "system", "manual")
GROUPS = ("champions", "loyal", "potential_loyalist", "new", "promising", "need_attention", "about_to_sleep",
          "at_risk", "cannot_lose", "hibernating", "lost")  # fmt: skip
STAGES = ("new", "growing", "mature", "declining", "lost")
RUNNING = sa.text("status = 'running'")


class Tag(Timestamped, Base):
    """A tag: `channel` (first touch), `system` (computed from behaviour each night) or `manual` (operators)."""

    __tablename__ = "member_tags"
    __table_args__ = (
        sa.UniqueConstraint("scope", "code", name="uq_member_tags_scope_code"),
        sa.CheckConstraint("kind IN ('channel', 'system', 'manual')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[int] = mapped_column(default=PLATFORM)
    kind: Mapped[str] = mapped_column(sa.String(8))
    code: Mapped[str] = mapped_column(sa.String(80))
    name: Mapped[str] = mapped_column(sa.String(80), default="")
    created_by: Mapped[int | None]


class TagAssignment(Base):
    """A member holding a tag. System and channel assignments are rewritten by the nightly job."""

    __tablename__ = "member_tag_assignments"
    __table_args__ = (sa.Index("ix_member_tag_assignments_user", "user_id", "tag_id"),)

    tag_id: Mapped[int] = mapped_column(sa.ForeignKey("member_tags.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(primary_key=True)
    assigned_at: Mapped[datetime]
    assigned_by: Mapped[int | None]


class FirstTouch(Base):
    """Where a member first came from: the channel parameter at sign-up, else the first live room, guide or
    campaign (group-buy) that an order line or a guide link visit names. Written once, never moved."""

    __tablename__ = "member_first_touches"
    __table_args__ = (sa.CheckConstraint("channel IN ('signup', 'live_room', 'guide', 'campaign')", name="channel"),)

    user_id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(12))
    ref: Mapped[str] = mapped_column(sa.String(64))
    touched_at: Mapped[datetime]


class Segment(Timestamped, Base):
    """A saved filter over tags, level, RFM group, lifecycle stage and brand behaviour (mall.members.segments)."""

    __tablename__ = "member_segments"
    __table_args__ = (sa.UniqueConstraint("scope", "name", name="uq_member_segments_scope_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[int] = mapped_column(default=PLATFORM)
    name: Mapped[str] = mapped_column(sa.String(80))
    definition: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_by: Mapped[int | None]


class RfmRun(Base):
    """One nightly run. Readers use the latest `done` run, so a run being written is never half-seen."""

    __tablename__ = "member_rfm_runs"
    __table_args__ = (
        sa.CheckConstraint("status IN ('running', 'done', 'failed')", name="status"),
        sa.Index("uq_member_rfm_runs_running", "status", unique=True, postgresql_where=RUNNING,
                 sqlite_where=RUNNING),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(8), default="running")
    previous_run_id: Mapped[int | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    figures: Mapped[dict] = mapped_column(JSONType, default=dict)


class RfmScore(Base):
    """A member's scores in one scope for one run, with the previous run's (why they moved: the changed score).
    Plain ids, no foreign keys: millions of rows are written by one INSERT … SELECT per scope."""

    __tablename__ = "member_rfm_scores"

    run_id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(primary_key=True)
    first_paid_at: Mapped[datetime]
    last_paid_at: Mapped[datetime]
    frequency: Mapped[int]
    monetary: Mapped[int] = mapped_column(sa.BigInteger)
    r: Mapped[int] = mapped_column(sa.SmallInteger)
    f: Mapped[int] = mapped_column(sa.SmallInteger)
    m: Mapped[int] = mapped_column(sa.SmallInteger)
    grp: Mapped[str] = mapped_column(sa.String(20))
    stage: Mapped[str] = mapped_column(sa.String(10))
    prev_r: Mapped[int | None] = mapped_column(sa.SmallInteger)
    prev_f: Mapped[int | None] = mapped_column(sa.SmallInteger)
    prev_m: Mapped[int | None] = mapped_column(sa.SmallInteger)
    prev_grp: Mapped[str | None] = mapped_column(sa.String(20))
    prev_stage: Mapped[str | None] = mapped_column(sa.String(10))


class BrandPair(Base):
    """Cross-brand repurchase for one run: of `buyers` of brand_a, `repurchased` later bought brand_b."""

    __tablename__ = "member_brand_pairs"

    run_id: Mapped[int] = mapped_column(primary_key=True)
    brand_a: Mapped[int] = mapped_column(primary_key=True)
    brand_b: Mapped[int] = mapped_column(primary_key=True)
    buyers: Mapped[int]
    repurchased: Mapped[int]
