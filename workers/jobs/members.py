"""Members jobs: the nightly RFM, lifecycle and tag refresh; tagging a segment's members in batches."""

from __future__ import annotations

from mall.identity.models import User
from mall.members import nightly, segments, tags
from mall.members.models import Segment
from workers.runtime import unit_of_work


def members_nightly() -> dict:
    return nightly.run(unit_of_work)


def tag_segment(tag_id: int, segment_id: int, actor_id: int | None = None) -> int:
    """Give a tag to every member of a segment, one batch per transaction (re-running tags nobody twice)."""
    tagged, after = 0, 0
    while True:
        with unit_of_work() as session:
            segment = session.get(Segment, segment_id)
            ids = segments.member_ids(session, scope=segment.scope, definition=segment.definition)
            batch = list(session.scalars(ids.where(User.id > after).limit(tags.BATCH // 4)))
            if batch:
                tagged += tags.assign_query(session, tag_id=tag_id, user_ids=ids.where(
                    User.id.in_(batch)), actor_id=actor_id)  # fmt: skip
        if len(batch) < tags.BATCH // 4:
            return tagged
        after = batch[-1]
