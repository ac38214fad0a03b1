"""The unpaid-order reminder: written by the sweep when due and only if the order is still unpaid, sent
once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq.registry import ScheduledJobRegistry

from api.extensions import db
from mall import clock
from mall.notifications.models import Message
from mall.notifications.reminders import unpaid_reminder_at
from tests.test_outbox import DAYTIME, grant
from workers import queues
from workers.jobs import notifications as jobs

pytest_plugins = ["tests.test_outbox"]  # its fixtures: shop, channel


def reminders(app) -> dict[int, Message]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Message).filter_by(template_key="order.unpaid_reminder")).all()
        db.session.expunge_all()
        return {m.payload["order_id"]: m for m in rows}


def place(shop, me, sku) -> int:
    resp = shop.place(me, [shop.add(me, sku, 1)], shop.address(me))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


@pytest.fixture
def placed(app, shop):
    """Two orders of one shopper who granted two reminders: one left unpaid, one paid at once."""
    clock.freeze(DAYTIME)
    sku = shop.sku(shop.brand(), price=500, stock=5)
    me = shop.shopper()
    grant(app, shop.user_id(me), "order.unpaid_reminder", "order.unpaid_reminder")
    unpaid, paid = place(shop, me, sku), place(shop, me, sku)
    assert shop.pay(me, paid).status_code == 200
    return me, unpaid, paid


def test_placement_writes_no_reminder_and_schedules_none(app, placed):
    assert reminders(app) == {}
    queue = queues.queue()
    scheduled = {queue.fetch_job(job_id).func_name for job_id in ScheduledJobRegistry(queue=queue).get_job_ids()}
    assert scheduled == {"workers.jobs.orders.expire_unpaid_order"}  # the payment timeouts
    high = queues.queue(queues.HIGH)
    # the paid order's notification, due now: queued at once
    assert {high.fetch_job(job_id).func_name for job_id in high.get_job_ids()} == {
        "workers.jobs.notifications.dispatch_message"
    }


def test_an_unpaid_order_is_reminded_once_and_a_paid_one_never(app, placed, channel):
    _, unpaid, paid = placed
    clock.advance(timedelta(minutes=10))
    assert jobs.remind_unpaid_order(unpaid) is True
    assert jobs.remind_unpaid_order(unpaid) is False  # run twice: one message
    assert jobs.remind_unpaid_order(paid) is False
    written = reminders(app)
    assert list(written) == [unpaid]
    reminder = written[unpaid]
    assert reminder.send_after == DAYTIME + timedelta(minutes=10)
    assert reminder.payload == {"order_id": unpaid, "amount": 500}
    assert jobs.dispatch_message(reminder.id) == "sent"
    assert channel.sent == [reminder.id]


def test_a_reminder_written_then_paid_for_is_not_sent(app, shop, placed, channel):
    me, unpaid, _ = placed
    clock.advance(timedelta(minutes=10))
    assert jobs.remind_unpaid_order(unpaid) is True
    assert shop.pay(me, unpaid).status_code == 200  # just before the message goes out
    assert jobs.dispatch_message(reminders(app)[unpaid].id) == "skipped:condition_failed"
    assert channel.sent == []


def test_the_sweep_writes_the_reminders_that_came_due(app, shop, placed):
    _, unpaid, _ = placed
    clock.advance(timedelta(minutes=9))
    assert jobs.sweep_unpaid_reminders() == 0  # not due yet
    clock.advance(timedelta(minutes=1))
    assert jobs.sweep_unpaid_reminders() == 1
    assert jobs.sweep_unpaid_reminders() == 0  # written: not again
    assert list(reminders(app)) == [unpaid]


def test_the_sweep_leaves_closed_orders_alone(app, shop, placed):
    clock.advance(timedelta(minutes=31))  # the unpaid one is past its window (its timeout job did not run yet)
    assert jobs.sweep_unpaid_reminders() == 0
    assert reminders(app) == {}


@pytest.mark.parametrize(
    ("window", "delay", "expected"),
    [(30, 10, 10), (10, 10, 5), (15, 10, 10), (7, 10, 2), (5, 10, None), (6, 10, 1)],
)
def test_the_unpaid_reminder_comes_in_time_to_pay_or_not_at_all(window, delay, expected):
    """minutes after placement, for a payment window of `window` minutes and a configured `delay`"""
    at = unpaid_reminder_at(DAYTIME, DAYTIME + timedelta(minutes=window), timedelta(minutes=delay))
    assert at == (None if expected is None else DAYTIME + timedelta(minutes=expected))


def test_a_window_read_a_few_milliseconds_apart_still_gets_its_reminder():
    placed = DAYTIME + timedelta(milliseconds=3)  # the event is recorded just after expires_at was computed
    assert unpaid_reminder_at(placed, DAYTIME + timedelta(minutes=6), timedelta(minutes=10)) is not None


def test_a_run_takes_a_bounded_batch_closing_soonest_first(app, shop):
    from mall.notifications import reminders as service

    clock.freeze(DAYTIME)
    sku = shop.sku(shop.brand(), price=500, stock=5)
    me = shop.shopper()
    first = place(shop, me, sku)
    clock.advance(timedelta(seconds=5))
    second, third = place(shop, me, sku), place(shop, me, sku)
    clock.advance(timedelta(minutes=10))
    with app.app_context():
        assert service.due_unpaid_reminders(db.session, delay=timedelta(minutes=10), limit=2) == [first, second]
    assert jobs.sweep_unpaid_reminders() == 3 and sorted(reminders(app)) == [first, second, third]


def test_one_order_failing_does_not_hold_up_the_others(app, shop, placed, monkeypatch, caplog):
    _, unpaid, _ = placed
    me = shop.shopper()
    other = place(shop, me, shop.sku(shop.brand(), price=500, stock=5))
    clock.advance(timedelta(minutes=10))
    real = jobs.reminders.remind_unpaid

    def failing_for_the_first(session, *, order_id, delay):
        if order_id == unpaid:
            raise RuntimeError("boom")
        return real(session, order_id=order_id, delay=delay)

    monkeypatch.setattr(jobs.reminders, "remind_unpaid", failing_for_the_first)
    assert jobs.sweep_unpaid_reminders() == 1
    assert list(reminders(app)) == [other]
    assert f"could not queue the unpaid reminder of order {unpaid}" in caplog.text
    monkeypatch.undo()
    assert jobs.sweep_unpaid_reminders() == 1  # the next run takes it
