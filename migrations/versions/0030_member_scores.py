"""member tags, first touches, segments, nightly RFM runs, scores and brand pairs; coupon segment audience

Revision ID: 0030_member_scores
Revises: 0029_points
Create Date: 2026-12-03 10:40:00

Scores are written set-based by the nightly job into their own tables, never onto users (ADR 0028).
"""

import sqlalchemy as sa
from alembic import op

import mall.db

# revision identifiers, used by Alembic.
revision = "0030_member_scores"
down_revision = "0029_points"
branch_labels = None
depends_on = None

RUNNING = sa.text("status = 'running'")
UTC = mall.db.UTCDateTime(timezone=True)


def upgrade():
    op.create_table(
        "member_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.CheckConstraint("kind IN ('channel', 'system', 'manual')", name=op.f("ck_member_tags_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_tags")),
        sa.UniqueConstraint("scope", "code", name="uq_member_tags_scope_code"),
    )
    op.create_table(
        "member_tag_assignments",
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", UTC, nullable=False),
        sa.Column("assigned_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["tag_id"], ["member_tags.id"], name=op.f("fk_member_tag_assignments_tag_id_member_tags"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tag_id", "user_id", name=op.f("pk_member_tag_assignments")),
    )  # fmt: skip
    op.create_index("ix_member_tag_assignments_user", "member_tag_assignments", ["user_id", "tag_id"], unique=False)
    op.create_table(
        "member_first_touches",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("touched_at", UTC, nullable=False),
        sa.CheckConstraint("channel IN ('signup', 'live_room', 'guide', 'campaign')",
                           name=op.f("ck_member_first_touches_channel")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_member_first_touches")),
    )  # fmt: skip
    op.create_table(
        "member_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("definition", mall.db.JSONType, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_segments")),
        sa.UniqueConstraint("scope", "name", name="uq_member_segments_scope_name"),
    )
    op.create_table(
        "member_rfm_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", UTC, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("previous_run_id", sa.Integer(), nullable=True),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("figures", mall.db.JSONType, nullable=False),
        sa.CheckConstraint("status IN ('running', 'done', 'failed')", name=op.f("ck_member_rfm_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_rfm_runs")),
    )
    op.create_index("uq_member_rfm_runs_running", "member_rfm_runs", ["status"], unique=True,
                    postgresql_where=RUNNING, sqlite_where=RUNNING)  # fmt: skip
    op.create_table(
        "member_rfm_scores",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("first_paid_at", UTC, nullable=False),
        sa.Column("last_paid_at", UTC, nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.BigInteger(), nullable=False),
        sa.Column("r", sa.SmallInteger(), nullable=False),
        sa.Column("f", sa.SmallInteger(), nullable=False),
        sa.Column("m", sa.SmallInteger(), nullable=False),
        sa.Column("grp", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("prev_r", sa.SmallInteger(), nullable=True),
        sa.Column("prev_f", sa.SmallInteger(), nullable=True),
        sa.Column("prev_m", sa.SmallInteger(), nullable=True),
        sa.Column("prev_grp", sa.String(length=20), nullable=True),
        sa.Column("prev_stage", sa.String(length=10), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "scope", "user_id", name=op.f("pk_member_rfm_scores")),
    )
    if op.get_bind().dialect.name == "postgresql":  # derived nightly, rewritten in full: no WAL (ADR 0028)
        op.execute("ALTER TABLE member_rfm_scores SET UNLOGGED")
    op.create_table(
        "member_brand_pairs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("brand_a", sa.Integer(), nullable=False),
        sa.Column("brand_b", sa.Integer(), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        sa.Column("repurchased", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "brand_a", "brand_b", name=op.f("pk_member_brand_pairs")),
    )
    with op.batch_alter_table("coupon_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience_segment_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_coupon_templates_audience_segment_id_member_segments"),
                                    "member_segments", ["audience_segment_id"], ["id"])  # fmt: skip


def downgrade():
    with op.batch_alter_table("coupon_templates", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_coupon_templates_audience_segment_id_member_segments"),
                                 type_="foreignkey")  # fmt: skip
        batch_op.drop_column("audience_segment_id")
    op.drop_table("member_brand_pairs")
    op.drop_table("member_rfm_scores")
    op.drop_index("uq_member_rfm_runs_running", table_name="member_rfm_runs", postgresql_where=RUNNING,
                  sqlite_where=RUNNING)  # fmt: skip
    op.drop_table("member_rfm_runs")
    op.drop_table("member_segments")
    op.drop_table("member_first_touches")
    op.drop_index("ix_member_tag_assignments_user", table_name="member_tag_assignments")
    op.drop_table("member_tag_assignments")
    op.drop_table("member_tags")
