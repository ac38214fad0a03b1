"""What operators read of the latest done run: the RFM grid, movements since the run before, lifecycle counts
and transitions, the cross-brand repurchase matrix. Each is one GROUP BY over the run's rows of one scope."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.members.models import PLATFORM, BrandPair, RfmRun, RfmScore
from mall.members.rfm import latest_run_id

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
