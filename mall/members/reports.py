"""What operators read of the latest done run: the RFM grid, the R x FM heat map, movements since the run before,
lifecycle counts and transitions, the cross-brand repurchase matrix. Each is one GROUP BY over the run's rows of one
scope. And which scopes an operator may read (the console's brand selector)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.catalog.models import Brand
from mall.identity.roles import Actor, Role
from mall.members.models import PLATFORM, BrandPair, RfmRun, RfmScore
from mall.members.rfm import FM_SQL, GROUP_SQL, latest_run_id

SCORES = ("r", "f", "m")


def _run(session: Session) -> RfmRun | None:
    run_id = latest_run_id(session)
    return session.get(RfmRun, run_id) if run_id else None


def _about(run: RfmRun | None, scope: int) -> dict:
    return {"scope": scope, "run_id": run.id if run else None, "as_of": run.as_of if run else None}


def _where(run: RfmRun | None, scope: int) -> tuple:
    return RfmScore.run_id == (run.id if run else 0), RfmScore.scope == scope


def grid(session: Session, *, scope: int) -> dict:
    """Members per R x F cell and per group."""
    run = _run(session)
    cells = session.execute(sa.select(RfmScore.r, RfmScore.f, sa.func.count()).where(*_where(run, scope))
                            .group_by(RfmScore.r, RfmScore.f).order_by(RfmScore.r, RfmScore.f))  # fmt: skip
    groups = session.execute(sa.select(RfmScore.grp, sa.func.count()).where(*_where(run, scope))
                             .group_by(RfmScore.grp).order_by(RfmScore.grp))  # fmt: skip
    return {**_about(run, scope), "cells": [{"r": r, "f": f, "members": n} for r, f, n in cells],
            "groups": [{"group": g, "members": n} for g, n in groups]}  # fmt: skip


# Every R x FM cell named by the run's own CASE (one definition of the groups), with the run's members in it.
HEATMAP_SQL = f"""WITH n(k) AS (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5),
cells AS (SELECT a.k AS r, b.k AS fm FROM n a CROSS JOIN n b),
named AS (SELECT r, fm, {GROUP_SQL} AS grp FROM cells),
counted AS (SELECT r, {FM_SQL} AS fm, COUNT(*) AS members FROM member_rfm_scores
    WHERE run_id = :run_id AND scope = :scope GROUP BY r, {FM_SQL})
SELECT named.r, named.fm, named.grp, COALESCE(counted.members, 0)
    FROM named LEFT JOIN counted ON counted.r = named.r AND counted.fm = named.fm
    ORDER BY named.r DESC, named.fm"""


def heatmap(session: Session, *, scope: int) -> dict:
    """The 5 x 5 grid of R score by FM score (the mean of F and M, as the groups use it): every cell with its named
    group and members, most recent buyers first; and the members per group. Empty cells are named too."""
    run = _run(session)
    rows = session.execute(sa.text(HEATMAP_SQL), {"run_id": run.id if run else 0, "scope": scope}).all()
    cells = [{"r": r, "fm": fm, "group": grp, "members": int(n)} for r, fm, grp, n in rows]
    groups: dict[str, int] = {}
    for cell in cells:
        groups[cell["group"]] = groups.get(cell["group"], 0) + cell["members"]
    return {**_about(run, scope), "members": sum(groups.values()), "cells": cells,
            "groups": [{"group": g, "members": n} for g, n in sorted(groups.items())]}  # fmt: skip


def scopes(session: Session, *, actor: Actor) -> list[dict]:
    """What an operator may read: a brand admin their brand; a platform admin the platform, then every brand."""
    own = actor.role == Role.BRAND_ADMIN
    query = sa.select(Brand.id, Brand.name).order_by(Brand.name, Brand.id)
    brands = [{"scope": i, "brand_id": i, "name": n}
              for i, n in session.execute(query.where(Brand.id == actor.brand_id) if own else query)]  # fmt: skip
    return brands if own else [{"scope": PLATFORM, "brand_id": None, "name": "Platform"}, *brands]


def movements(session: Session, *, scope: int) -> dict:
    """Members who changed group since the previous run, per (from, to), with how many moved because each of
    R, F and M changed (a member whose R and F both changed counts under both)."""
    run = _run(session)
    changed = [sa.func.sum(sa.case((getattr(RfmScore, f"prev_{s}") != getattr(RfmScore, s), 1), else_=0))
               for s in SCORES]  # fmt: skip
    query = (sa.select(RfmScore.prev_grp, RfmScore.grp, sa.func.count(), *changed)
             .where(*_where(run, scope), sa.or_(RfmScore.prev_grp.is_(None), RfmScore.prev_grp != RfmScore.grp))
             .group_by(RfmScore.prev_grp, RfmScore.grp).order_by(RfmScore.prev_grp, RfmScore.grp))  # fmt: skip
    moves = []
    for prev, now, n, *by in session.execute(query):
        reasons = {s: int(k or 0) for s, k in zip(SCORES, by, strict=True) if k}
        moves.append({"from": prev, "to": now, "members": n, "because": reasons if prev else {"new_member": n}})
    return {**_about(run, scope), "previous_run_id": run.previous_run_id if run else None, "moves": moves}


def lifecycle(session: Session, *, scope: int) -> dict:
    run = _run(session)
    stages = session.execute(sa.select(RfmScore.stage, sa.func.count()).where(*_where(run, scope))
                             .group_by(RfmScore.stage).order_by(RfmScore.stage))  # fmt: skip
    moved = session.execute(sa.select(RfmScore.prev_stage, RfmScore.stage, sa.func.count())
                            .where(*_where(run, scope), RfmScore.prev_stage != RfmScore.stage)
                            .group_by(RfmScore.prev_stage, RfmScore.stage)
                            .order_by(RfmScore.prev_stage, RfmScore.stage))  # fmt: skip
    return {**_about(run, scope), "stages": [{"stage": s, "members": n} for s, n in stages],
            "transitions": [{"from": a, "to": b, "members": n} for a, b, n in moved]}  # fmt: skip


def cross_brand(session: Session, *, brand_id: int | None) -> dict:
    """Of brand A's buyers, how many bought brand B after their first A purchase (rate in basis points).
    A brand sees its own row of the matrix (its buyers going elsewhere, as counts) only."""
    run = _run(session)
    query = sa.select(BrandPair).where(BrandPair.run_id == (run.id if run else 0))
    if brand_id is not None:
        query = query.where(BrandPair.brand_a == brand_id)
    pairs = session.scalars(query.order_by(BrandPair.brand_a, BrandPair.brand_b))
    rows = [{"brand_a": p.brand_a, "brand_b": p.brand_b, "buyers": p.buyers, "repurchased": p.repurchased,
             "rate_bp": p.repurchased * 10_000 // p.buyers if p.buyers else 0} for p in pairs]  # fmt: skip
    return {**_about(run, brand_id or PLATFORM), "pairs": rows}
