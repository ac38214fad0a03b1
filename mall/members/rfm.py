"""The nightly RFM run: recency, frequency and monetary quintiles per brand and across the platform, the named
group, the lifecycle stage and the cross-brand repurchase matrix, written set-based (ADR 0028).

One INSERT … SELECT for the brands (a window partition each) and one for the platform: the facts are
aggregated from paid orders net of refunds, scored with PERCENT_RANK() (quintiles in which ties share a score),
grouped by CASE, and joined to the previous run's row for the same member, so every row says where it came from.
Nothing runs per member in Python and nothing is written to `users`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.db import UTCDateTime
from mall.errors import Conflict
from mall.members.models import BrandPair, RfmRun, RfmScore


@dataclass(frozen=True)
class Thresholds:
    """Lifecycle stages (ADR 0028): lost after `lost_days` without a counted order, declining after
    `declining_days`, new while the first counted order is at most `new_days` old, mature from `mature_orders`
    counted orders; growing otherwise."""

    new_days: int = 30
    declining_days: int = 60
    lost_days: int = 180
    mature_orders: int = 4


WORK_MEM = "512MB"  # the brands' aggregate (2.2M groups at 1M members) spilled at 256 MB
KEEP_RUNS = 2  # the latest run and the one before it (movements are read against it)

# Classic RFM segment map on R and FM (FM: the mean of F and M, rounded half up). Order matters.
FM_SQL = "(f + m + 1) / 2"
GROUP_SQL = """CASE
    WHEN r = 1 AND fm = 1 THEN 'lost'
    WHEN r <= 2 AND fm <= 2 THEN 'hibernating'
    WHEN r <= 2 AND fm <= 4 THEN 'at_risk'
    WHEN r <= 2 THEN 'cannot_lose'
    WHEN r = 3 AND fm <= 2 THEN 'about_to_sleep'
    WHEN r = 3 AND fm = 3 THEN 'need_attention'
    WHEN fm >= 4 AND r <= 4 THEN 'loyal'
    WHEN r = 4 AND fm = 1 THEN 'promising'
    WHEN r = 5 AND fm = 1 THEN 'new'
    WHEN fm <= 3 THEN 'potential_loyalist'
    ELSE 'champions' END"""
STAGE_SQL = """CASE
    WHEN last_paid_at < :lost_before THEN 'lost'
    WHEN last_paid_at < :declining_before THEN 'declining'
    WHEN first_paid_at >= :new_since THEN 'new'
    WHEN frequency >= :mature_orders THEN 'mature'
    ELSE 'growing' END"""

# Facts of one scope: counted orders are paid (by as_of) and not wholly refunded; money is paid net of refunds.
BRAND_FACTS = """SELECT o.user_id AS user_id, so.brand_id AS scope,
        MIN(CASE WHEN so.refunded_total < so.payable_total THEN o.paid_at END) AS first_paid_at,
        MAX(CASE WHEN so.refunded_total < so.payable_total THEN o.paid_at END) AS last_paid_at,
        SUM(CASE WHEN so.refunded_total < so.payable_total THEN 1 ELSE 0 END) AS frequency,
        SUM(so.payable_total - so.refunded_total) AS monetary
    FROM sub_orders so JOIN orders o ON o.id = so.order_id
    WHERE o.paid_at IS NOT NULL AND o.paid_at <= :as_of
    GROUP BY so.brand_id, o.user_id"""
PLATFORM_FACTS = """SELECT o.user_id AS user_id, 0 AS scope,
        MIN(CASE WHEN o.refunded_total < o.paid_total THEN o.paid_at END) AS first_paid_at,
        MAX(CASE WHEN o.refunded_total < o.paid_total THEN o.paid_at END) AS last_paid_at,
        SUM(CASE WHEN o.refunded_total < o.paid_total THEN 1 ELSE 0 END) AS frequency,
        SUM(o.paid_total - o.refunded_total) AS monetary
    FROM orders o
    WHERE o.paid_at IS NOT NULL AND o.paid_at <= :as_of
    GROUP BY o.user_id"""


def _quintile(dialect: str, order_by: str) -> str:
    """1..5 by PERCENT_RANK within the scope: ties share the lower score (NTILE would split equal values)."""
    rank = f"PERCENT_RANK() OVER (PARTITION BY scope ORDER BY {order_by})"
    if dialect == "postgresql":
        return f"CAST(LEAST(5, 1 + FLOOR({rank} * 5)) AS INTEGER)"
    return f"MIN(5, 1 + CAST({rank} * 5 AS INTEGER))"


def _cut(values: str, score: int) -> str:
    """The value a member's must exceed to score at least `score` (2..5): 1 + FLOOR(PERCENT_RANK() * 5) is at
    least `score` from the first rank whose float quotient (rank - 1) / (n - 1) * 5 reaches score - 1, i.e. once
    `below` members rank lower, `below` being the exact ceiling or, where float rounding falls just short of
    an exact quotient, one more; then the value must exceed the below-th smallest (`values`, sorted)."""
    exact = f"(({score - 1} * (n - 1) + 4) / 5)"
    below = f"CASE WHEN FLOOR(CAST({exact} AS DOUBLE PRECISION) / (n - 1) * 5) >= {score - 1} THEN {exact} ELSE {exact} + 1 END"
    return f"CASE WHEN n > 1 THEN {values}[CAST({below} AS INTEGER)] END"


def _cut_score(value: str, letter: str) -> str:
    above = " + ".join(f"CASE WHEN {value} > {letter}{s} THEN 1 ELSE 0 END" for s in range(2, 6))
    return f"1 + {above}"


# On PostgreSQL the quintiles come from four cut values per scope and score (a sorted array of one column per
# scope, then comparisons) instead of three window sorts of every scored row: the same scores (PERCENT_RANK's
# float arithmetic included), a fraction of the CPU (ADR 0028, Figures). MATERIALIZED: only the cut values reach
# the join (inlined, the planner carried every scope's arrays along each row into the sort).
CUTS_SQL = """sorted AS (SELECT scope, COUNT(*) AS n, ARRAY_AGG(last_paid_at ORDER BY last_paid_at) AS rv,
        ARRAY_AGG(frequency ORDER BY frequency) AS fv, ARRAY_AGG(monetary ORDER BY monetary) AS mv
    FROM counted GROUP BY scope),
cuts AS MATERIALIZED (SELECT scope, {cuts} FROM sorted),
scored AS (SELECT counted.*, {r} AS r, {f} AS f, {m} AS m FROM counted JOIN cuts ON cuts.scope = counted.scope)"""


def _scored_sql(dialect: str) -> str:
    if dialect != "postgresql":
        return f"""scored AS (SELECT counted.*, {_quintile(dialect, "last_paid_at")} AS r,
        {_quintile(dialect, "frequency")} AS f, {_quintile(dialect, "monetary")} AS m FROM counted)"""
    cuts = ", ".join(f"{_cut(v, s)} AS {v[0]}{s}" for v in ("rv", "fv", "mv") for s in range(2, 6))
    return CUTS_SQL.format(cuts=cuts, r=_cut_score("last_paid_at", "r"), f=_cut_score("frequency", "f"),
                           m=_cut_score("monetary", "m"))  # fmt: skip


def _score_sql(dialect: str, facts: str, scopes: str) -> str:
    """`scopes` limits the previous run's rows joined (`p.scope <> 0`: the brands' only, not the platform's)."""
    return f"""WITH facts AS ({facts}),
counted AS (SELECT * FROM facts WHERE frequency > 0),
{_scored_sql(dialect)},
grouped AS (SELECT scored.*, {FM_SQL} AS fm FROM scored),
named AS (SELECT grouped.*, {GROUP_SQL} AS grp, {STAGE_SQL} AS stage FROM grouped)
INSERT INTO member_rfm_scores (run_id, scope, user_id, first_paid_at, last_paid_at, frequency, monetary, r, f, m,
        grp, stage, prev_r, prev_f, prev_m, prev_grp, prev_stage)
SELECT :run_id, g.scope, g.user_id, g.first_paid_at, g.last_paid_at, g.frequency, g.monetary, g.r, g.f, g.m,
        g.grp, g.stage, p.r, p.f, p.m, p.grp, p.stage
    FROM named g LEFT JOIN member_rfm_scores p
        ON p.run_id = :previous_run_id AND {scopes} AND p.scope = g.scope AND p.user_id = g.user_id
    ORDER BY g.scope, g.user_id"""


PAIRS_SQL = """WITH bought AS (SELECT scope, user_id, first_paid_at, last_paid_at FROM member_rfm_scores
        WHERE run_id = :run_id AND scope <> 0),
buyers AS (SELECT scope, COUNT(*) AS n FROM bought GROUP BY scope)
INSERT INTO member_brand_pairs (run_id, brand_a, brand_b, buyers, repurchased)
SELECT :run_id, a.scope, b.scope, MAX(buyers.n), COUNT(*)
    FROM bought a JOIN bought b ON b.user_id = a.user_id AND b.scope <> a.scope AND b.last_paid_at > a.first_paid_at
    JOIN buyers ON buyers.scope = a.scope
    GROUP BY a.scope, b.scope"""


def start(session: Session, *, as_of: datetime | None = None) -> RfmRun:
    """Claim the run (one at a time: a partial unique index on `running`)."""
    if session.scalar(sa.select(RfmRun.id).where(RfmRun.status == "running")) is not None:
        raise Conflict("member.rfm_running", "An RFM run is already in progress.")
    now = clock.now()
    run = RfmRun(as_of=as_of or now, started_at=now, previous_run_id=latest_run_id(session), status="running")
    session.add(run)
    session.flush()
    return run


def latest_run_id(session: Session) -> int | None:
    return session.scalar(sa.select(sa.func.max(RfmRun.id)).where(RfmRun.status == "done"))


def _params(run: RfmRun, thresholds: Thresholds) -> dict:
    as_of = run.as_of
    return {"run_id": run.id, "previous_run_id": run.previous_run_id or 0, "as_of": as_of,
            "lost_before": as_of - timedelta(days=thresholds.lost_days),
            "declining_before": as_of - timedelta(days=thresholds.declining_days),
            "new_since": as_of - timedelta(days=thresholds.new_days), "mature_orders": thresholds.mature_orders}  # fmt: skip


def _statement(sql: str) -> sa.TextClause:
    times = ("as_of", "lost_before", "declining_before", "new_since")
    names = [n for n in times if f":{n}" in sql]
    return sa.text(sql).bindparams(*(sa.bindparam(n, type_=UTCDateTime()) for n in names))


def score(session: Session, *, run: RfmRun, brands: bool, thresholds: Thresholds = Thresholds()) -> dict[int, int]:
    """Score every brand (each its own window partition) or the platform: one INSERT … SELECT, one scan of the
    orders. Returns the members scored per scope."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # sorts and the aggregate's hash table in memory, for this transaction only;
        # no JIT: compiling the plan cost up to 6.5 s of CPU per statement and saved less than that
        session.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        session.execute(sa.text("SET LOCAL jit = off"))
    sql = (
        _score_sql(dialect, BRAND_FACTS, "p.scope <> 0")
        if brands
        else _score_sql(dialect, PLATFORM_FACTS, "p.scope = 0")
    )
    session.execute(_statement(sql), _params(run, thresholds))
    counted = sa.select(RfmScore.scope, sa.func.count()).where(RfmScore.run_id == run.id)
    counted = counted.where(RfmScore.scope != 0 if brands else RfmScore.scope == 0).group_by(RfmScore.scope)
    return dict(session.execute(counted).all())


def pair_brands(session: Session, *, run: RfmRun) -> int:
    """Brand pairs of the run. On PostgreSQL the freshly written score rows are analysed first: without their
    statistics the self-join was planned as a nested loop (5 s at 2,000 members instead of milliseconds)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("ANALYZE member_rfm_scores"))
    return session.execute(sa.text(PAIRS_SQL), {"run_id": run.id}).rowcount


def finish(session: Session, *, run: RfmRun, figures: dict) -> RfmRun:
    run.status, run.finished_at, run.figures = "done", clock.now(), figures
    session.flush()
    return run


def prune_batch(session: Session, *, keep: int = KEEP_RUNS) -> int:
    """Delete the score rows of one run older than the last `keep` done runs, in one statement (the 50,000-id
    batches this replaced cost twice the time: each batch looked its range up past the rows just deleted), and
    the brand pairs once none is left. Returns the rows deleted (0: nothing left to prune)."""
    kept = session.scalars(sa.select(RfmRun.id).where(RfmRun.status == "done").order_by(RfmRun.id.desc()).limit(keep))
    kept = list(kept)
    if len(kept) < keep:
        return 0
    oldest = min(kept)
    run_id = session.scalar(
        sa.select(RfmScore.run_id).where(RfmScore.run_id < oldest).order_by(RfmScore.run_id).limit(1)
    )
    if run_id is None:
        session.execute(sa.delete(BrandPair).where(BrandPair.run_id < oldest))
        return 0
    return session.execute(sa.delete(RfmScore).where(RfmScore.run_id == run_id)).rowcount
