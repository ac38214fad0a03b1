"""Lucky-bag jobs: gifts not claimed within 24 hours of the draw go back to stock."""

from __future__ import annotations

from mall.live import lucky_bags
from workers.runtime import unit_of_work


def release_unclaimed_prizes() -> int:
    """Batches of 500, one transaction each, until none is due; returns the units given back."""
    total = 0
    while True:
        with unit_of_work() as session:
            released = lucky_bags.release_unclaimed(session, limit=500)
        total += released
        if released < 500:
            return total
