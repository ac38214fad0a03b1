"""The expiry sweep's PostgreSQL statements (array parameters, one CTE) against the portable ones: the same lots
expire, the same entries and balances come out (ADR 0027). PostgreSQL only: SQLite has only the portable path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mall.identity.models import User
from mall.members import expiry, ledger
from mall.members.points_models import PointsBalance, PointsEntry, PointsLot

NOW = datetime(2027, 6, 1, tzinfo=UTC)


def _world(session) -> list[int]:
    """Three members with due, not-yet-due, empty and pending lots."""
    users = [User(role="shopper", display_name=f"m{i}") for i in range(3)]
    session.add_all(users)
    session.flush()
    for n, user in enumerate(users):
        for k, (points, days, state) in enumerate([(5, -2, "available"), (7, -1, "available"), (11, 3, "available"),
                                                   (13, -1, "pending")]):  # fmt: skip
            ledger.grant(session, user_id=user.id, amount=points + n, kind="adjust", key=f"k-{user.id}-{k}",
                         reason={}, now=NOW - timedelta(days=30), expires_at=NOW + timedelta(days=days), state=state)  # fmt: skip
    return [u.id for u in users]


def _facts(session, users: list[int]):
    entries = session.execute(sa.select(PointsEntry.user_id, PointsEntry.amount, PointsEntry.key)
                              .where(PointsEntry.kind == "expire").order_by(PointsEntry.key)).all()  # fmt: skip
    lots = session.execute(
        sa.select(PointsLot.key, PointsLot.remaining, PointsLot.expired_at).order_by(PointsLot.key)
    ).all()
    balances = session.execute(sa.select(PointsBalance.user_id, PointsBalance.available, PointsBalance.pending)
                               .order_by(PointsBalance.user_id)).all()  # fmt: skip
    users_of = {u: i for i, u in enumerate(users)}
    return (sorted((users_of[u], a) for u, a, _ in entries), sorted((users_of[int(k.split("-")[1])], k.split("-")[2], r, e)
            for k, r, e in lots), [(users_of[u], a, p) for u, a, p in balances])  # fmt: skip


@pytest.mark.parametrize("batch", [2, 100])
def test_the_postgresql_statements_expire_what_the_portable_ones_do(session, batch):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL statements: run with TEST_DATABASE_URL")
    outcomes = []
    for fast in (False, True):
        users = _world(session)
        while expiry.expire_due(session, limit=batch, now=NOW, fast=fast):
            pass
        outcomes.append(_facts(session, users))
        assert ledger.audit(session) == []
        session.rollback()
    portable, postgres = outcomes
    assert postgres == portable
    assert sorted(amount for _, amount in portable[0]) == [-9, -8, -7, -7, -6, -5]
