from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mall import clock
from mall.db import Base, JSONType

PENDING, SENDING = "pending", "sending"  # sending: claimed, the provider call under way (services.claim)
_PENDING = sa.text("status = 'pending'")
_SENDING = sa.text("status = 'sending'")


class Message(Base):
    """An outbox row: committed with the change that caused it, dispatched by a job after commit.

    `guard` names a condition re-checked when the message fires (e.g. the order is still unpaid);
    `dedupe_key` makes the same message impossible to queue, hence to send, twice.
    """

    __tablename__ = "messages"
    __table_args__ = (
        sa.Index("ix_messages_due", "send_after", "id", postgresql_where=_PENDING, sqlite_where=_PENDING),
        sa.Index("ix_messages_leased", "send_after", "id", postgresql_where=_SENDING, sqlite_where=_SENDING),
        sa.Index("ix_messages_user_sent", "user_id", "kind", "sent_at"),
        sa.Index("ix_messages_created", "created_at"),  # retention (mall/retention.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))  # ix_messages_user_sent leads with it
    template_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    channel: Mapped[str] = mapped_column(sa.String(20))  # wechat | sms | email
    kind: Mapped[str] = mapped_column(sa.String(20))  # transactional | marketing
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    guard: Mapped[dict | None] = mapped_column(JSONType)
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20), default=PENDING)  # pending|sending|sent|skipped|failed
    skip_reason: Mapped[str | None] = mapped_column(sa.String(40))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(300))
    send_after: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class SubscriptionGrant(Base):
    """WeChat one-time subscription (一次性订阅): each accepted request allows exactly one send."""

    __tablename__ = "subscription_grants"
    __table_args__ = (
        sa.Index("ix_grants_open", "user_id", "template_key", "consumed_at", "id"),
        sa.Index("ix_grants_message", "message_id"),  # a message's spent grant (services._spend_grant, retention)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    template_key: Mapped[str] = mapped_column(sa.String(64))
    granted_at: Mapped[datetime] = mapped_column(default=clock.now)
    consumed_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("messages.id"))
