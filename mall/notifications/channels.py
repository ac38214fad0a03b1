"""Channels carry a message to a person. One interface; WeChat subscribe messages for real, and
logging stand-ins for SMS, email and the embedded default's WeChat."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from mall.notifications.models import Message
from mall.notifications.templates import Template

log = logging.getLogger("mall.notifications")


@dataclass(frozen=True)
class SendResult:
    status: str  # "sent" | "rejected" (permanent: skip with `reason`) | "retry" (transient)
    reason: str = ""


class Channel(Protocol):
    name: str

    def send(self, session: Session, message: Message, template: Template) -> SendResult: ...


class LogChannel:
    """Writes what would be sent. The embedded default uses it for every channel."""

    def __init__(self, name: str):
        self.name = name

    def send(self, session: Session, message: Message, template: Template) -> SendResult:
        page = template.page.format_map(_Missing(message.payload))
        log.info("[%s] to user %s: %s (%s) %s", self.name, message.user_id, template.title, page, message.payload)
        return SendResult("sent")


class _Missing(dict):
    def __missing__(self, key):
        return ""
