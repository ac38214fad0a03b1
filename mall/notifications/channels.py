"""Channels carry a message to a person. One interface; WeChat subscribe messages for real, and
logging stand-ins for SMS, email and the embedded default's WeChat.

A send is two steps so that no transaction is open during the provider call: `prepare` runs inside the
claim's transaction and may read the database (WeChat resolves the recipient's openid there); `send`
runs after that transaction has committed, with only the `Outgoing` it was given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy.orm import Session

from mall.notifications.templates import Template

log = logging.getLogger("mall.notifications")


@dataclass(frozen=True)
class SendResult:
    status: str  # "sent" | "rejected" (permanent: skip with `reason`) | "retry" (transient)
    reason: str = ""


@dataclass(frozen=True)
class Outgoing:
    """A claimed message as the channel sends it, outside any transaction. `attempt` fences the record:
    only the dispatcher holding the latest claim writes the outcome."""

    id: int
    user_id: int
    template_key: str
    payload: dict
    attempt: int
    route: Any = None  # what `prepare` resolved for the send (WeChat: the app and openid)

    def routed(self, route: Any) -> Outgoing:
        return replace(self, route=route)


class Channel(Protocol):
    name: str

    def prepare(self, session: Session, outgoing: Outgoing, template: Template) -> Outgoing | SendResult:
        """Inside the claim's transaction: the message ready to send, or a permanent rejection."""

    def send(self, outgoing: Outgoing, template: Template) -> SendResult:
        """The provider call, with no transaction open."""


class LogChannel:
    """Writes what would be sent. The embedded default uses it for every channel."""

    def __init__(self, name: str):
        self.name = name

    def prepare(self, session: Session, outgoing: Outgoing, template: Template) -> Outgoing:
        return outgoing

    def send(self, outgoing: Outgoing, template: Template) -> SendResult:
        page = template.page.format_map(_Missing(outgoing.payload))
        log.info("[%s] to user %s: %s (%s) %s", self.name, outgoing.user_id, template.title, page, outgoing.payload)
        return SendResult("sent")


class _Missing(dict):
    def __missing__(self, key):
        return ""
