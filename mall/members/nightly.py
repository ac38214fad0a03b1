"""The nightly members job, step by step: each step one short transaction (the caller's unit of work), so a
failure leaves finished steps in place, the run marked failed, and the next night starts over (ADR 0028)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from sqlalchemy.orm import Session

from mall.members import rfm, tags
from mall.members.models import RfmRun

UnitOfWork = Callable[[], AbstractContextManager[Session]]


def run(unit_of_work: UnitOfWork, *, thresholds: rfm.Thresholds = rfm.Thresholds(), with_tags: bool = True,
        side_by_side: bool = True) -> dict:  # fmt: skip
    """Score every brand and the platform, pair brands, finish the run, then tags and pruning in batches.
    `side_by_side`: on PostgreSQL score the brands and the platform in two threads, each with a session of
    `unit_of_work`'s own (False for a unit of work that hands out one shared session, as the demo's does)."""
    started = time.perf_counter()
    with unit_of_work() as session:
        run_id = rfm.start(session).id
    try:
        figures = _score(unit_of_work, run_id, thresholds, side_by_side)
    except BaseException:
        with unit_of_work() as session:
            session.get(RfmRun, run_id).status = "failed"
        raise
    figures["scores_seconds"] = round(time.perf_counter() - started, 3)
    with unit_of_work() as session:
        rfm.finish(session, run=session.get(RfmRun, run_id), figures=figures)
    if with_tags:
        figures["tags"] = refresh_tags(unit_of_work, run_id=run_id)
    figures["pruned"] = prune(unit_of_work)
    figures["run_id"] = run_id
    return figures


def _score(unit_of_work: UnitOfWork, run_id: int, thresholds: rfm.Thresholds, side_by_side: bool) -> dict:
    def score(brands: bool) -> dict[int, int]:  # the brands or the platform: a transaction each
        with unit_of_work() as session:
            return rfm.score(session, run=session.get(RfmRun, run_id), brands=brands, thresholds=thresholds)

    with unit_of_work() as session:
        concurrent = side_by_side and session.get_bind().dialect.name == "postgresql"
    if concurrent:  # one backend runs one statement on one core: the brands and the platform side by side
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="rfm") as pool:
            counts = [future.result() for future in [pool.submit(score, brands) for brands in (True, False)]]
    else:  # SQLite: one writer at a time
        counts = [score(brands) for brands in (True, False)]
    scored = {("platform" if scope == 0 else str(scope)): n for each in counts for scope, n in each.items()}
    with unit_of_work() as session:
        pairs = rfm.pair_brands(session, run=session.get(RfmRun, run_id))
    return {"members": scored, "brand_pairs": pairs}


def refresh_tags(unit_of_work: UnitOfWork, *, run_id: int | None) -> dict:
    with unit_of_work() as session:
        batches = tags.user_id_batches(session)
    total: dict[str, int] = {}
    for lo, hi in batches:
        with unit_of_work() as session:
            for key, n in tags.refresh_batch(session, lo=lo, hi=hi, run_id=run_id).items():
                total[key] = total.get(key, 0) + n
    return total


def prune(unit_of_work: UnitOfWork) -> int:
    pruned = 0
    while True:
        with unit_of_work() as session:
            n = rfm.prune_batch(session)
        pruned += n
        if n == 0:
            return pruned
