"""Points sweeps: lots expire in bounded batches (each its own transaction), reminders before they do."""

from __future__ import annotations

from mall.members import expiry
from workers import runtime
from workers.runtime import unit_of_work


def expire_points(batch: int = expiry.BATCH, max_batches: int = 400) -> int:
    """Due lots expire, oldest first, a batch per transaction until a batch comes back short (or `max_batches`)."""
    total = 0
    for _ in range(max_batches):
        with unit_of_work() as session:
            done = expiry.expire_due(session, limit=batch)
        total += done
        if done == 0:  # (a batch can come back short because a concurrent sweep took part of it)
            break
    return total


def remind_expiring_points(batch: int = 1000, max_batches: int = 1000) -> int:
    """`points.expiring` messages for members whose points expire within POINTS_EXPIRY_REMINDER_DAYS."""
    total, policy = 0, runtime.settings().points_policy
    for _ in range(max_batches):
        with unit_of_work() as session:
            done = expiry.remind(session, policy, limit=batch)
        total += done
        if done < batch:
            break
    return total
