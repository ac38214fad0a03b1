"""Racing pins: a room's pin segments never overlap and exactly one is open, whatever order the requests land
in. Real threads, each with its own client and connection; meaningful on PostgreSQL, where the writers do not
queue behind one database lock as on SQLite. And the database's own guards, for a writer that skips the
services (or dies between closing one segment and opening the next)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from api.extensions import db
from mall import clock
from mall.live.models import PinSegment
from tests.concurrency.test_order_concurrency import race
from tests.live_helpers import Live
from tests.shop_helpers import Shop


@pytest.fixture
def live(app, client, login) -> Live:
    return Live(Shop(app, client, login))


@pytest.fixture
def on_air(live):
    brand = live.shop.brand()
    products = [live.product(brand) for _ in range(6)]
    host, host_id = live.host()
    room = live.room(live.shop.merchant(brand), host_id, products)
    assert live.act(host, room["id"], "start").status_code == 200
    return room, host, products


def _segments(app, room_id: int) -> list[PinSegment]:
    with app.app_context():
        query = (
            sa.select(PinSegment).where(PinSegment.room_id == room_id).order_by(PinSegment.started_at, PinSegment.id)
        )
        return list(db.session.scalars(query))


def _assert_no_overlap(rows: list[PinSegment]) -> None:
    for before, after in zip(rows, rows[1:], strict=False):
        assert before.ended_at is not None and before.ended_at <= after.started_at, (before.id, after.id)


def test_twenty_racing_pins_leave_contiguous_segments_and_exactly_one_open(app, live, on_air):
    room, host, products = on_air
    calls = [lambda client, p=products[n % 6]: live.act(host, room["id"], "pin", client=client, product_id=p)
             for n in range(20)]  # fmt: skip
    responses = race(app, calls)

    assert [r.status_code for r in responses] == [200] * 20, [r.get_json() for r in responses if r.status_code != 200]
    rows = _segments(app, room["id"])
    assert [s.ended_at for s in rows].count(None) == 1 and rows[-1].ended_at is None
    _assert_no_overlap(rows)
    assert all(a.product_id != b.product_id for a, b in zip(rows, rows[1:], strict=False))  # a repeat pin is a no-op
    assert live.view(room["id"]).get_json()["pinned"]["segment_id"] == rows[-1].id


def test_pins_racing_the_end_of_the_show_leave_no_segment_open(app, live, on_air):
    room, host, products = on_air
    calls = [lambda client, p=p: live.act(host, room["id"], "pin", client=client, product_id=p) for p in products]
    calls += [lambda client: live.act(host, room["id"], "end", client=client),
              lambda client: live.act(host, room["id"], "unpin", client=client)]  # fmt: skip
    responses = race(app, calls)

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 204, 409} and statuses[6] == 200, [r.get_json() for r in responses]
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} <= {"live.room_not_live"}
    rows = _segments(app, room["id"])
    assert all(s.ended_at is not None for s in rows)
    _assert_no_overlap(rows)
    assert live.view(room["id"]).get_json()["status"] == "ended"


def test_the_database_refuses_a_second_open_segment_and_on_postgresql_an_overlapping_one(app, live, on_air):
    room, host, products = on_air
    live.act(host, room["id"], "pin", product_id=products[0])
    clock.advance(timedelta(minutes=1))
    live.act(host, room["id"], "pin", product_id=products[1])
    first, current = _segments(app, room["id"])

    def insert(**times):
        with app.app_context():
            db.session.add(PinSegment(room_id=room["id"], item_id=current.item_id, product_id=current.product_id,
                                      pinned_by=current.pinned_by, **times))  # fmt: skip
            try:
                db.session.commit()
            finally:
                db.session.rollback()

    with pytest.raises(IntegrityError, match="ix_live_pin_segments_open|UNIQUE"):
        insert(started_at=clock.now() + timedelta(minutes=5))  # a second open segment
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    if postgres:  # a closed segment inside the first one's time
        with pytest.raises(IntegrityError, match="ex_live_pin_segments_no_overlap"):
            insert(started_at=first.started_at, ended_at=first.ended_at)
