"""After-commit reactions to domain events: schedule the jobs that follow a change."""

from __future__ import annotations

import logging
from datetime import datetime

from mall import clock, events
from mall.notifications.templates import MARKETING
from workers import queues

log = logging.getLogger(__name__)


def _schedule(when: datetime, job, aggregate_id: int, job_id: str) -> None:
    try:
        queues.enqueue_at(when, job, aggregate_id, job_id=job_id)
    except Exception:  # Redis down: the periodic sweep behind every scheduled job runs it instead
        log.exception("could not schedule %s", job_id)


def _schedule_unpaid_timeout(event) -> None:
    from workers.jobs.orders import expire_unpaid_order

    when = datetime.fromisoformat(event.payload["expires_at"])
    _schedule(when, expire_unpaid_order, event.aggregate_id, f"order-timeout-{event.aggregate_id}")


def _dispatch_when_due(event) -> None:
    """A message due now goes straight onto a queue (RQ's scheduler would move it there only at its next
    poll, up to a second later): transactional ones (paid, shipped) on `high`, marketing ones on `default`.
    Later ones are scheduled."""
    from workers.jobs.notifications import dispatch_message

    when = datetime.fromisoformat(event.payload["send_after"])
    job_id = f"message-{event.aggregate_id}-{int(when.timestamp())}"
    if when > clock.now():
        _schedule(when, dispatch_message, event.aggregate_id, job_id)
        return
    queue_name = queues.DEFAULT if event.payload.get("kind") == MARKETING else queues.HIGH
    try:
        queues.enqueue(dispatch_message, event.aggregate_id, queue_name=queue_name, job_id=job_id)
    except Exception:  # Redis down: the periodic sweep of due messages sends it instead
        log.exception("could not enqueue %s", job_id)


def _schedule_group_expiry(event) -> None:
    from workers.jobs.group_buy import expire_group

    when = datetime.fromisoformat(event.payload["expires_at"])
    _schedule(when, expire_group, event.aggregate_id, f"group-expiry-{event.aggregate_id}")


def _send_refund(event) -> None:
    from workers.jobs.payments import send_claimed_refund

    send_claimed_refund(event)


def register() -> None:
    events.around_release(queues.batch)
    events.subscribe("refund.claimed", _send_refund)
    events.subscribe("group.formed", _schedule_group_expiry)
    events.subscribe("order.placed", _schedule_unpaid_timeout)
    events.subscribe("message.queued", _dispatch_when_due)
