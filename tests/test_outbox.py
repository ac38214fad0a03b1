"""The notification outbox: dedupe, consent, caps, quiet hours, crash safety."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from api.tx import commit
from mall import clock
from mall.notifications import services as outbox
from mall.notifications.channels import SendResult
from mall.notifications.models import Message, SubscriptionGrant
from tests.shop_helpers import Shop
from workers.jobs import notifications as jobs

DAYTIME = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
NIGHT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai


class Recorder:
    """A channel that records what it sends (optionally failing), standing in for WeChat."""

    name = "wechat"

    def __init__(self, fail_with: BaseException | None = None, delay: float = 0):
        self.sent: list[int] = []
        self.fail_with, self.delay = fail_with, delay
        self.lock = threading.Lock()

    def prepare(self, session, outgoing, template):
        return outgoing

    def send(self, message, template):
        if self.delay:
            import time

            time.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        with self.lock:
            self.sent.append(message.id)
        return SendResult("sent")


@pytest.fixture
def channel(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(jobs, "channels", lambda: {"wechat": recorder, "sms": recorder, "email": recorder})
    return recorder


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def shopper(app, shop):
    headers = shop.shopper()
    return headers, shop.user_id(headers)


def queue(app, user_id, template="journey.welcome", key="k", **kw) -> int:
    with app.app_context():
        outbox.notify(db.session, user_id=user_id, template_key=template, dedupe_key=key, **kw)
        commit()  # commit, then release: the after-commit subscriber schedules the dispatch job
        return db.session.scalar(sa.select(Message.id).filter_by(dedupe_key=key))


def grant(app, user_id, *templates) -> None:
    with app.app_context():
        for template in templates:  # one wx.requestSubscribeMessage answer per grant
            outbox.record_grants(db.session, user_id=user_id, results={template: "accept"})
        db.session.commit()


def message(app, message_id) -> Message:
    with app.app_context():
        row = db.session.get(Message, message_id)
        db.session.expunge(row)
        return row


def test_same_dedupe_key_queues_once(app, shopper, channel):
    _, user = shopper
    clock.freeze(DAYTIME)
    first, second = queue(app, user, key="once"), queue(app, user, key="once")
    assert first == second
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Message).filter_by(dedupe_key="once")) == 1


def test_queued_message_is_scheduled_as_a_job(app, shopper, settings):
    from rq.registry import ScheduledJobRegistry

    from workers import queues

    _, user = shopper
    clock.freeze(DAYTIME)
    message_id = queue(app, user, send_after=DAYTIME + timedelta(hours=1))
    ids = ScheduledJobRegistry(queue=queues.queue()).get_job_ids()
    assert any(job_id.startswith(f"message-{message_id}-") for job_id in ids)


def test_a_message_due_now_is_queued_at_once_transactional_ones_on_high(app, shopper, settings):
    from rq.registry import ScheduledJobRegistry

    from workers import queues

    _, user = shopper
    clock.freeze(DAYTIME)
    paid = queue(app, user, "order.paid", key="paid")  # transactional
    welcome = queue(app, user, "journey.welcome", key="welcome")  # marketing

    def waiting(name: str) -> list[str]:
        return queues.queue(name).get_job_ids()

    assert [j for j in waiting(queues.HIGH) if j.startswith(f"message-{paid}-")]
    assert [j for j in waiting(queues.DEFAULT) if j.startswith(f"message-{welcome}-")]
    assert not [j for j in waiting(queues.HIGH) if j.startswith(f"message-{welcome}-")]
    assert ScheduledJobRegistry(queue=queues.queue()).get_job_ids() == []  # no wait for the scheduler's poll


def test_no_grant_means_no_send(app, shopper, channel):
    _, user = shopper
    clock.freeze(DAYTIME)
    message_id = queue(app, user)
    assert jobs.dispatch_message(message_id) == "skipped:no_consent"
    assert channel.sent == [] and message(app, message_id).skip_reason == "no_consent"


def test_each_grant_allows_exactly_one_send(app, shopper, channel):
    _, user = shopper
    clock.freeze(DAYTIME)
    grant(app, user, "order.paid")
    first, second = queue(app, user, "order.paid", key="a"), queue(app, user, "order.paid", key="b")
    assert jobs.dispatch_message(first) == "sent"
    assert jobs.dispatch_message(second) == "skipped:no_consent"
    with app.app_context():
        spent = db.session.scalar(sa.select(SubscriptionGrant.message_id))
    assert spent == first and channel.sent == [first]


def test_marketing_daily_cap_but_transactional_passes(app, shopper, channel):
    _, user = shopper
    clock.freeze(DAYTIME)
    grant(app, user, *["journey.welcome"] * 3, "order.shipped")
    results = [jobs.dispatch_message(queue(app, user, key=f"m{i}")) for i in range(3)]
    assert results == ["sent", "sent", "skipped:frequency_cap"]
    assert jobs.dispatch_message(queue(app, user, "order.shipped", key="t")) == "sent"
    clock.advance(timedelta(days=1))  # a new shop day
    assert jobs.dispatch_message(queue(app, user, key="m-next-day")) == "sent"


def test_quiet_hours_defer_marketing_to_eight_and_let_transactional_through(app, shopper, channel):
    _, user = shopper
    clock.freeze(NIGHT)
    grant(app, user, "journey.welcome", "order.paid")
    marketing = queue(app, user, key="night")
    assert jobs.dispatch_message(marketing) == "deferred:quiet_hours"
    deferred = message(app, marketing)
    assert deferred.status == "pending"
    assert deferred.send_after == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert jobs.dispatch_message(queue(app, user, "order.paid", key="tx")) == "sent"
    clock.freeze(deferred.send_after)
    assert jobs.dispatch_message(marketing) == "sent"


def _healthy(monkeypatch) -> Recorder:
    healthy = Recorder()
    monkeypatch.setattr(jobs, "channels", lambda: {"wechat": healthy})
    return healthy


def _grants_spent(app) -> list:
    with app.app_context():
        return db.session.execute(sa.select(SubscriptionGrant.message_id, SubscriptionGrant.consumed_at)).all()


def test_worker_killed_during_the_call_sends_again_once_its_lease_runs_out(app, shopper, monkeypatch):
    _, user = shopper
    clock.freeze(DAYTIME)
    grant(app, user, "order.paid", "order.paid")
    message_id = queue(app, user, "order.paid")
    monkeypatch.setattr(jobs, "channels", lambda: {"wechat": Recorder(fail_with=SystemExit("killed"))})
    with pytest.raises(SystemExit):
        jobs.dispatch_message(message_id)
    row = message(app, message_id)
    assert (row.status, row.attempts) == ("sending", 1)  # the claim was committed before the call
    healthy = _healthy(monkeypatch)
    assert jobs.sweep_due_messages() == 0  # the lease still holds: nobody sends it meanwhile

    clock.advance(outbox.LEASE)
    assert jobs.sweep_due_messages() == 1
    assert jobs.sweep_due_messages() == 0
    assert healthy.sent == [message_id]
    assert (message(app, message_id).status, message(app, message_id).attempts) == ("sent", 2)
    spent = _grants_spent(app)  # the retry kept the grant its first claim spent: one of two, not both
    assert sorted(m for m, _ in spent if m is not None) == [message_id] and sum(c is None for _, c in spent) == 1


def test_a_record_that_cannot_commit_leaves_the_send_to_the_sweep(app, shopper, monkeypatch):
    _, user = shopper
    clock.freeze(DAYTIME)
    grant(app, user, "order.paid")
    message_id = queue(app, user, "order.paid")
    first = _healthy(monkeypatch)

    def failing_record(session, **kw):
        raise sa.exc.OperationalError("COMMIT", {}, Exception("connection lost"))

    monkeypatch.setattr(outbox, "record", failing_record)
    with pytest.raises(sa.exc.OperationalError):
        jobs.dispatch_message(message_id)
    assert first.sent == [message_id] and message(app, message_id).status == "sending"
    monkeypatch.undo()

    second = _healthy(monkeypatch)
    clock.advance(outbox.LEASE)
    assert jobs.sweep_due_messages() == 1 and second.sent == [message_id]
    assert message(app, message_id).status == "sent"


def test_a_gateway_timeout_returns_the_message_to_pending_with_a_backoff(app, shopper, monkeypatch):
    _, user = shopper
    clock.freeze(DAYTIME)
    grant(app, user, "order.paid")
    message_id = queue(app, user, "order.paid")

    class TimingOut(Recorder):
        def send(self, message, template):
            return SendResult("retry", "subscribe/send unreachable: ReadTimeout")

    monkeypatch.setattr(jobs, "channels", lambda: {"wechat": TimingOut()})
    assert jobs.dispatch_message(message_id) == "retry_later"
    row = message(app, message_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "subscribe/send unreachable: ReadTimeout")
    assert row.send_after == DAYTIME + timedelta(minutes=2)
    healthy = _healthy(monkeypatch)
    clock.advance(timedelta(minutes=2))
    assert jobs.sweep_due_messages() == 1 and healthy.sent == [message_id]
    assert len([m for m, _ in _grants_spent(app) if m == message_id]) == 1


def test_no_transaction_or_row_lock_is_held_during_the_call(app, shopper, monkeypatch):
    """While the channel talks to the provider, another connection can lock the shopper's row and the
    message's row at once: the dispatcher holds neither (nor, on SQLite, the database's write lock)."""
    _, user = shopper
    clock.freeze(DAYTIME)
    grant(app, user, "journey.welcome")  # marketing: its cap check locks the shopper's row while claiming
    message_id = queue(app, user, "journey.welcome")
    with app.app_context():
        engine = db.engine
    seen = []

    class Probing(Recorder):
        def send(self, message, template):
            with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET lock_timeout = '50ms'")
                    for table, row_id in (("users", user), ("messages", message_id)):
                        conn.exec_driver_sql(f"SELECT id FROM {table} WHERE id = {row_id} FOR UPDATE NOWAIT")
                else:
                    conn.exec_driver_sql("PRAGMA busy_timeout = 0")
                    conn.exec_driver_sql(f"UPDATE users SET updated_at = updated_at WHERE id = {user}")
                conn.rollback()
            seen.append(message.id)
            return SendResult("sent")

    monkeypatch.setattr(jobs, "channels", lambda: {"wechat": Probing()})
    assert jobs.dispatch_message(message_id) == "sent"
    assert seen == [message_id]


def test_two_workers_dispatching_one_message_send_it_once(app, shopper, monkeypatch):
    _, user = shopper
    clock.freeze(DAYTIME)
    grant(app, user, "order.paid", "order.paid")
    message_id = queue(app, user, "order.paid")
    slow = Recorder(delay=0.3)
    monkeypatch.setattr(jobs, "channels", lambda: {"wechat": slow})
    barrier = threading.Barrier(2)

    def run(_):
        barrier.wait()
        return jobs.dispatch_message(message_id)

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(run, range(2)))
    assert outcomes == ["not_pending", "sent"]
    assert slow.sent == [message_id]


def test_subscription_grants_from_the_mini_program(app, client, shopper, settings):
    headers, user = shopper
    resp = client.post(
        "/api/v1/notifications/subscriptions",
        json={"results": {"order.paid": "accept", "order.shipped": "reject"}},
        headers=headers,
    )
    assert resp.status_code == 201 and resp.get_json() == {"granted": 1}
    with app.app_context():
        assert db.session.scalars(sa.select(SubscriptionGrant.template_key)).all() == ["order.paid"]
    bad = client.post("/api/v1/notifications/subscriptions", json={"results": {"order.paid": "maybe"}}, headers=headers)
    assert bad.status_code == 422


def test_operators_see_statuses_and_skip_reasons(app, client, login, shopper, channel):
    _, user = shopper
    clock.freeze(DAYTIME)
    skipped = queue(app, user, key="x")
    jobs.dispatch_message(skipped)
    resp = client.get("/api/v1/admin/notifications?status=skipped", headers=login("platform_admin", name="ops"))
    assert resp.status_code == 200
    assert [(m["id"], m["skip_reason"]) for m in resp.get_json()] == [(skipped, "no_consent")]
