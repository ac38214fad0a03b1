"""Live attribution (ADR 0017): room visits, cart adds from a room, each brand's windows, and the live columns an
order line is written with.

A line's touch is measured from the later of the link's opening (`opened_at` in its live source) and the
shopper's latest visit to the room: within the brand's direct window the order was placed in the viewing
session ('direct'), within its indirect window 'indirect', later no touch (the room, host and segment are kept
on the line; the room's numbers count only touched lines)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.attribution import ORIGIN, SourceType
from mall.catalog.taxonomy import get_brand
from mall.errors import Invalid
from mall.identity.roles import Actor
from mall.live.models import LiveRoom
from mall.live.rooms import ensure_manages_brand, room_not_found
from mall.live.tracking import DIRECT_WINDOW, INDIRECT_WINDOW, LiveCartAdd, LiveSettings, RoomVisit

VISIT_DEDUPE = timedelta(minutes=1)  # a room reopened within this is one visit (a reload, a flaky network)
MAX_INDIRECT_WINDOW = timedelta(days=30)
DIRECT, INDIRECT = "direct", "indirect"
NO_LIVE = {"live_room_id": None, "live_host_id": None, "live_segment_id": None, "live_link_id": None,
           "live_touch": None}  # fmt: skip


def live_source(source: dict | None) -> dict | None:
    """The live source a line (or cart line) carries: its own, or a promotion line's `origin`."""
    if not source:
        return None
    found = source.get(ORIGIN) or source
    return found if found.get("type") == SourceType.LIVE else None


# Visits -------------------------------------------------------------------------------------------------------


def record_visit(session: Session, *, user_id: int, room_id: int) -> bool:
    """The shopper opened the room: one INSERT, skipped if they opened it within VISIT_DEDUPE. A cancelled or
    unknown room is 404. Whether a visit was written."""
    status = session.scalar(sa.select(LiveRoom.status).where(LiveRoom.id == room_id))
    if status is None or status == "cancelled":
        raise room_not_found(room_id)
    now = clock.now()
    written = session.execute(_VISIT, {"room_id": room_id, "user_id": user_id, "now": now,
                                       "since": now - VISIT_DEDUPE}).first()  # fmt: skip
    return written is not None


_V = RoomVisit.__table__
_VISIT = sa.insert(_V).from_select(
    ["room_id", "user_id", "visited_at"],
    sa.select(sa.bindparam("room_id", type_=sa.Integer), sa.bindparam("user_id", type_=sa.Integer),
              sa.bindparam("now", type_=_V.c.visited_at.type)).where(
        ~sa.exists().where(_V.c.user_id == sa.bindparam("user_id"), _V.c.room_id == sa.bindparam("room_id"),
                           _V.c.visited_at > sa.bindparam("since", type_=_V.c.visited_at.type))
    ),
).returning(_V.c.id)  # fmt: skip


# Cart adds ----------------------------------------------------------------------------------------------------


def record_cart_add(session: Session, *, user_id: int, source: dict, quantity: int, sku_id: int | None = None,
                    bundle_id: int | None = None) -> None:  # fmt: skip
    """Called by the cart's add for a line with a live source, in its transaction."""
    refs = _refs(source)
    if refs is None:
        return
    session.connection().execute(_CART_ADD, {
        "room_id": refs["room_id"], "segment_id": refs["segment_id"], "link_id": refs["link_id"], "user_id": user_id,
        "sku_id": sku_id, "bundle_id": bundle_id, "quantity": quantity, "created_at": clock.now()})  # fmt: skip


_CART_ADD = sa.insert(LiveCartAdd.__table__)  # built once: its values are the parameters


# Windows ------------------------------------------------------------------------------------------------------


def windows(session: Session, brand_ids) -> dict[int, tuple[timedelta, timedelta]]:
    """(direct, indirect) per brand: its settings, else the defaults."""
    found = {brand_id: (DIRECT_WINDOW, INDIRECT_WINDOW) for brand_id in brand_ids}
    if found:
        rows = session.execute(
            sa.select(LiveSettings.brand_id, LiveSettings.direct_window_s, LiveSettings.indirect_window_s)
            .where(LiveSettings.brand_id.in_(list(found)))
        )  # fmt: skip
        for brand_id, direct, indirect in rows:
            found[brand_id] = (timedelta(seconds=direct), timedelta(seconds=indirect))
    return found


def settings_of(session: Session, *, actor: Actor, brand_id: int) -> dict:
    ensure_manages_brand(actor, brand_id)
    direct, indirect = windows(session, [brand_id])[brand_id]
    return {"brand_id": brand_id, "direct_window_minutes": int(direct.total_seconds()) // 60,
            "indirect_window_minutes": int(indirect.total_seconds()) // 60}  # fmt: skip


def set_windows(session: Session, *, actor: Actor, brand_id: int, direct_window_minutes: int,
                indirect_window_minutes: int) -> dict:  # fmt: skip
    """Both windows of a brand, in minutes: direct at least 1, indirect not shorter than direct, at most 30 days.
    They apply to orders placed from now on (a placed line keeps the touch it was given)."""
    ensure_manages_brand(actor, brand_id)
    direct, indirect = timedelta(minutes=direct_window_minutes), timedelta(minutes=indirect_window_minutes)
    if direct <= timedelta(0) or indirect < direct or indirect > MAX_INDIRECT_WINDOW:
        raise Invalid("live.bad_windows", "The direct window must be positive, and the indirect window at least "
                      "as long as it and at most 30 days.", field="indirect_window_minutes")  # fmt: skip
    get_brand(session, brand_id)  # a platform admin may name any id: an unknown brand is a 404, not a 500
    row = session.get(LiveSettings, brand_id) or LiveSettings(brand_id=brand_id)
    row.direct_window_s, row.indirect_window_s = int(direct.total_seconds()), int(indirect.total_seconds())
    row.updated_at = clock.now()
    session.add(row)
    session.flush()
    return settings_of(session, actor=actor, brand_id=brand_id)


# Placement ----------------------------------------------------------------------------------------------------


def touch(placed_at: datetime, since: datetime | None, direct: timedelta, indirect: timedelta) -> str | None:
    """'direct', 'indirect' or None for an order placed at `placed_at`, `since` the link or visit."""
    if since is None:
        return None
    elapsed = max(placed_at - since, timedelta(0))  # a link "opened" in the future (a skewed clock): just now
    if elapsed <= direct:
        return DIRECT
    return INDIRECT if elapsed <= indirect else None


def line_columns(session: Session, *, shopper_id: int, lines: list[tuple[int, dict]], now: datetime) -> list[dict]:
    """The live columns of each (brand id, line source) of an order placed `now`. Organic and promotion-only
    lines get NULLs at no cost; lines with a live source cost two indexed reads per placement (the shopper's
    latest visits to those rooms, the brands' windows)."""
    refs = [_refs(source) for _, source in lines]
    rooms = {r["room_id"] for r in refs if r is not None}
    if not rooms:
        return [NO_LIVE] * len(lines)
    visited = dict(session.execute(
        sa.select(RoomVisit.room_id, sa.func.max(RoomVisit.visited_at))
        .where(RoomVisit.user_id == shopper_id, RoomVisit.room_id.in_(sorted(rooms)), RoomVisit.visited_at <= now)
        .group_by(RoomVisit.room_id)
    ).all())  # fmt: skip
    brand_windows = windows(session, {brand_id for (brand_id, _), r in zip(lines, refs, strict=True) if r})
    found = []
    for (brand_id, _), r in zip(lines, refs, strict=True):
        if r is None:
            found.append(NO_LIVE)
            continue
        since = max((t for t in (r["opened_at"], visited.get(r["room_id"])) if t is not None), default=None)
        found.append({"live_room_id": r["room_id"], "live_host_id": r["host_id"], "live_segment_id": r["segment_id"],
                      "live_link_id": r["link_id"], "live_touch": touch(now, since, *brand_windows[brand_id])})  # fmt: skip
    return found


def _refs(source: dict | None) -> dict | None:
    """A live source's refs as the columns take them; None for any other source (or a malformed one: a signed
    source names room and host, the rest is optional)."""
    live = live_source(source)
    if live is None:
        return None
    try:
        return {"room_id": int(live["room_id"]), "host_id": int(live["host_id"]),
                "segment_id": _int(live.get("segment_id")), "link_id": _int(live.get("link_id")),
                "opened_at": _time(live.get("opened_at"))}  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


def _int(value) -> int | None:
    return None if value is None else int(value)


def _time(value) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
