"""A payment racing the level job (ADR 0030): the job read a member's growth before the payment committed and would
lower them (their grace ran out), while the payment brings them back to their level. Both take the member's
`users` row lock before deciding, so the job decides again with the payment's growth and the level stays.
Deterministic: the payment's transaction holds the lock until the job waits on it, then commits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.extensions import db
from mall import clock
from mall.members import levels
from mall.members.level_models import MemberGrowth
from mall.orders.models import Order
from tests.level_helpers import SILVER, Levels
from tests.member_helpers import Members
from workers.jobs.levels import evaluate_levels

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def test_a_payment_committing_while_the_job_lowers_the_member_keeps_the_level(app, client, login):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row locks and lock waits are PostgreSQL's")
    clock.freeze(T0)
    members = Members(app)
    brand = members.brand()
    member = members.shopper()
    order_id = members.order(member, {brand: 6000}, paid_at=T0)
    with app.app_context():
        levels.replace(db.session, [SILVER])
        db.session.execute(sa.update(Order).where(Order.id == order_id).values(paid_at=None))  # not paid yet
        db.session.add(MemberGrowth(user_id=member, growth=0, below_since=T0 - timedelta(days=40), updated_at=T0))
        db.session.commit()
    Levels(app, client, {}).set(member, level=1)

    with app.app_context():
        payment = Session(db.engine)
        payment.execute(sa.update(Order).where(Order.id == order_id).values(paid_at=T0))
        levels._react(payment, member, key=None)  # the payment's reaction: holds the member's row until its commit
        done = {}
        job = threading.Thread(target=lambda: done.update(evaluate_levels()))
        job.start()
        time.sleep(1.0)
        assert job.is_alive()  # waiting on the member's row
        payment.commit()
        payment.close()
        job.join(timeout=30)

    assert done.get("down") is None and done.get("end_grace") == 1
    assert Levels(app, client, {}).level_of(member) == 1
    with app.app_context():
        assert db.session.get(MemberGrowth, member).growth == 6000
