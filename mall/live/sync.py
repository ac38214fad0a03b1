"""Syncing a room's lineup to an external live platform (WeChat Channels, the mini-program live component).

The default build calls no one (`NoSync`). An adapter is called after the commit of a change to the room, never
inside the transaction (DESIGN §8); it must be idempotent (it receives the whole lineup each time) and is
expected to queue its own network call rather than make it in the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LineupSnapshot:
    room_id: int
    status: str
    stream_ref: str | None
    # (product_id, sku_id, live_price, currency), in lineup order
    items: tuple[tuple[int, int | None, int | None, str | None], ...]
    pinned_product_id: int | None


class LineupSync(Protocol):
    def push(self, snapshot: LineupSnapshot) -> None: ...


class NoSync:
    """No external platform: nothing to do."""

    def push(self, snapshot: LineupSnapshot) -> None:
        return None


def snapshot(view: dict) -> LineupSnapshot:
    """From the viewer's view of the room (mall/live/queries.room_view)."""
    pinned = view["pinned"]
    return LineupSnapshot(
        room_id=view["id"], status=view["status"], stream_ref=view["stream_ref"],
        items=tuple((i["product_id"], i["sku_id"], i["live_price"], i["currency"]) for i in view["lineup"]),
        pinned_product_id=pinned["item"]["product_id"] if pinned and pinned["item"] else None,
    )  # fmt: skip
