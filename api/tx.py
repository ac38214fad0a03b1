"""The edge commits once per request, then releases the events the change recorded."""

from __future__ import annotations

from api.extensions import db
from mall import events


def commit() -> None:
    db.session.commit()
    events.release(db.session)
