"""Member level jobs (ADR 0030): the daily evaluation (growth recomputed, grace periods started, levels lowered
after them; also what an operator's apply queues) and the daily birthday coupons. One batch per transaction:
a crash resumes with the next run, and a re-run repeats nothing (the decisions and notices are idempotent)."""

from __future__ import annotations

from collections import Counter

from mall.members import birthdays, levels
from workers.runtime import unit_of_work


def evaluate_levels() -> dict:
    """Every managed member, in batches; returns how many took each action."""
    done, after = Counter(), 0
    while True:
        with unit_of_work() as session:
            moves = levels.evaluate_batch(session, after=after)
        done.update(move.action for move in moves)
        if len(moves) < levels.BATCH:
            return dict(done)
        after = moves[-1].user_id


def level_birthday_coupons() -> int:
    looked, after = 0, 0
    while True:
        with unit_of_work() as session:
            ids = birthdays.issue_batch(session, after=after)
        looked += len(ids)
        if len(ids) < levels.BATCH:
            return looked
        after = ids[-1]
