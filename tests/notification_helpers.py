"""Helpers for outbox-driven tests (nudges, journeys): a recording channel, consent grants, message reads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import sqlalchemy as sa

from api.extensions import db
from mall.notifications import services as outbox
from mall.notifications.channels import SendResult
from mall.notifications.models import Message
from workers.jobs import notifications as jobs

DAYTIME = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Shanghai: outside quiet hours


class Recorder:
    """A channel that records what it sends, standing in for WeChat, SMS and email."""

    name = "wechat"

    def __init__(self):
        self.sent: list[int] = []
        self.lock = threading.Lock()

    def prepare(self, session, outgoing, template):
        return outgoing

    def send(self, message, template):
        with self.lock:
            self.sent.append(message.id)
        return SendResult("sent")


def use_recorder(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(jobs, "channels", lambda: {"wechat": recorder, "sms": recorder, "email": recorder})
    return recorder


def grant(app, user_id: int, template_key: str, times: int = 1) -> None:
    """`times` accepted wx.requestSubscribeMessage answers for one template (each allows one send)."""
    with app.app_context():
        for _ in range(times):
            outbox.record_grants(db.session, user_id=user_id, results={template_key: "accept"})
        db.session.commit()


def messages(app, **where) -> list[Message]:
    """Outbox rows (detached), oldest first."""
    with app.app_context():
        rows = db.session.scalars(sa.select(Message).filter_by(**where).order_by(Message.id)).all()
        db.session.expunge_all()
        return rows


def count(app, model, **where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).filter_by(**where))
