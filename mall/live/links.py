"""Cart links (直播购物链接): a signed, expiring link to a lineup product of a room, shared as a mini-program path or
a QR code; opening one puts the product in the shopper's cart with the room's LIVE source.

A link is a row (`live_links`: room, lineup item, product, optional SKU, who made it, when it expires) and a
token signed with the app's secret (itsdangerous, like the attribution tokens of mall.attribution, with a salt
of its own so neither kind of token passes for the other). The token names the link, its room and, for a
reshared link, the viewer who shared it; everything else (product, SKU, expiry) is read from the row, so a
reshare can never outlive or widen the link it came from. Refusals: 422 `live.link_invalid` (not signed by
us, altered, or naming a link that is not its room's), 422 `live.link_other_room` (a link of another room than
the one the shopper is in), 410 `live.link_expired`, 404 `live.room_not_found` (a cancelled room)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from mall import clock, events
from mall.attribution import Source, SourceType
from mall.cart import services as cart
from mall.cart.services import CartRef
from mall.catalog.models import Product, Sku
from mall.errors import Gone, Invalid
from mall.identity.roles import Actor
from mall.live.models import LineupItem, LiveLink, LiveRoom, PinSegment
from mall.live.rooms import ensure_runs, room_not_found

SALT = "mall.live.link.v1"
PAGE = "pages/live/link"  # the mini-program page that opens a link: PAGE?t=<token>
DEFAULT_TTL = timedelta(days=7)
MAX_TTL = timedelta(days=30)


class LinkRef(NamedTuple):
    """What opening, resharing or drawing a link needs of its row (plain columns: no ORM entity to build)."""

    id: int
    room_id: int
    product_id: int
    sku_id: int | None
    expires_at: datetime


class Resolved(NamedTuple):
    link: LinkRef
    room_status: str
    host_id: int  # the room's host
    segment_id: int | None  # the room's open pin segment, now
    only_sku: int | None  # the product's SKU when it has exactly one on sale
    shared_by: int | None  # the viewer who reshared it, if it was
    on_sale: bool  # the product is active, and so is the link's SKU when it names one
    cart: CartRef | None  # the opening shopper's cart, when they have one


class Opened(NamedTuple):
    link: LinkRef
    line_id: int
    sku_id: int
    source: Source

    def view(self) -> dict:
        """What the shopper is answered (LinkOpenedSchema)."""
        return {"line_id": self.line_id, "link_id": self.link.id, "room_id": self.link.room_id,
                "product_id": self.link.product_id, "sku_id": self.sku_id, "source": self.source.as_dict()}  # fmt: skip


def create_link(session: Session, *, actor: Actor, room_id: int, item_id: int | None = None,
                product_id: int | None = None, sku_id: int | None = None,
                expires_in: int | None = None) -> LiveLink:  # fmt: skip
    """A link for a lineup item (by its id, or the item of `product_id`), optionally one SKU of it; by the room's
    host or its brand's admin. A room that has ended still sells at the normal price, so it may still have links;
    a cancelled one is not found."""
    room = session.get(LiveRoom, room_id)
    if room is None or room.status == "cancelled":
        raise room_not_found(room_id)
    ensure_runs(actor, room)
    item = _item(room, item_id=item_id, product_id=product_id, sku_id=sku_id)
    if sku_id is not None:
        _check_sku(session, item.product_id, sku_id)
    ttl = DEFAULT_TTL if expires_in is None else timedelta(seconds=expires_in)
    if not timedelta(seconds=60) <= ttl <= MAX_TTL:
        raise Invalid("live.link_ttl", "A link lives from 60 seconds to 30 days.", field="expires_in")
    now = clock.now()
    link = LiveLink(room_id=room.id, item_id=item.id, product_id=item.product_id, sku_id=sku_id or item.sku_id,
                    created_by=actor.user_id, created_at=now, expires_at=now + ttl)  # fmt: skip
    session.add(link)
    session.flush()
    events.record(session, "live.link_created", aggregate="live_room", aggregate_id=room.id, actor=actor,
                  link_id=link.id, product_id=link.product_id, sku_id=link.sku_id)  # fmt: skip
    return link


def room_links(session: Session, *, actor: Actor, room_id: int, limit: int = 200) -> list[LiveLink]:
    """The room's links, newest first (its host's or brand admin's)."""
    room = session.get(LiveRoom, room_id)
    if room is None or room.status == "cancelled":
        raise room_not_found(room_id)
    ensure_runs(actor, room)
    query = sa.select(LiveLink).where(LiveLink.room_id == room_id).order_by(LiveLink.id.desc()).limit(limit)
    return list(session.scalars(query))


def token(link: LiveLink, *, secret: str, shared_by: int | None = None) -> str:
    """The link's token; with `shared_by`, a viewer's reshare of it. Deterministic: the same link (and sharer)
    always gives the same token."""
    claims = {"l": link.id, "r": link.room_id}
    if shared_by is not None:
        claims["s"] = shared_by
    return URLSafeSerializer(secret, salt=SALT).dumps(claims)


def path(link_token: str) -> str:
    """The mini-program path that opens the link (the token is URL-safe as it is)."""
    return f"{PAGE}?t={link_token}"


# The link with what opening it needs, in one statement: its room's status and host, the room's open pin segment,
# the product's SKU if it has only one on sale, whether the product (and the link's SKU) are on sale, and the
# shopper's cart (so the cart's add need read none of them again).
_RESOLVE = (
    sa.select(LiveLink.id, LiveLink.room_id, LiveLink.product_id, LiveLink.sku_id, LiveLink.expires_at,
              LiveRoom.status, LiveRoom.host_user_id,
              sa.select(PinSegment.id).where(PinSegment.room_id == LiveLink.room_id, PinSegment.ended_at.is_(None))
              .scalar_subquery(),
              sa.select(sa.case((sa.func.count() == 1, sa.func.min(Sku.id))))
              .where(Sku.product_id == LiveLink.product_id, Sku.status == "active").scalar_subquery(),
              sa.and_(Product.status == "active", sa.or_(LiveLink.sku_id.is_(None), sa.select(Sku.status)
                      .where(Sku.id == LiveLink.sku_id).scalar_subquery() == "active")),
              *cart.ref_columns(sa.bindparam("_user", type_=sa.Integer)))
    .join(LiveRoom, LiveRoom.id == LiveLink.room_id).join(Product, Product.id == LiveLink.product_id)
    .where(LiveLink.id == sa.bindparam("_link"))
)  # fmt: skip


def resolve(session: Session, link_token: str, *, secret: str, room_id: int | None = None,
            user_id: int = 0) -> Resolved:  # fmt: skip
    """The link a token names, refused when not ours or altered, of another room than `room_id` (when the
    shopper says which room they are in), of a cancelled room, or expired; with `user_id`, that shopper's cart.
    One statement."""
    link_id, token_room, shared_by = token_claims(link_token, secret=secret)
    row = session.connection().execute(_RESOLVE, {"_link": link_id, "_user": user_id}).first()
    if row is None or row[1] != token_room:
        raise _invalid()
    link, (status, host_id, segment_id, only_sku, on_sale, cart_id, line_count) = LinkRef(*row[:5]), row[5:]
    if room_id is not None and room_id != link.room_id:
        raise Invalid("live.link_other_room", f"This link is for live room {link.room_id}, not {room_id}.",
                      field="token", link_room_id=link.room_id)  # fmt: skip
    if status == "cancelled":
        raise room_not_found(link.room_id)
    if clock.now() >= link.expires_at:
        raise Gone("live.link_expired", "This live link has expired.", expired_at=link.expires_at.isoformat())
    return Resolved(link, status, host_id, segment_id, only_sku, shared_by, bool(on_sale),
                    None if cart_id is None else CartRef(cart_id, line_count))  # fmt: skip


def token_claims(link_token: str, *, secret: str) -> tuple[int, int, int | None]:
    """(link id, room id, sharer or None) of a token we signed; 422 live.link_invalid for any other."""
    return _verified(link_token, secret)


@lru_cache(maxsize=4096)
def _verified(link_token: str, secret: str) -> tuple[int, int, int | None]:
    """A token that verified once always will (what it names is read from the database on every open): the
    viewers of a room open the same few links, so the signature check is done once per link and process."""
    try:
        claims = URLSafeSerializer(secret, salt=SALT).loads(link_token)
    except BadSignature as exc:
        raise _invalid() from exc
    # Signed by us, so never seen in practice; a changed format would be.
    if not isinstance(claims, dict) or not all(type(claims.get(k)) is int for k in ("l", "r")):
        raise _invalid()
    shared_by = claims.get("s")
    if not (shared_by is None or type(shared_by) is int):
        raise _invalid()
    return claims["l"], claims["r"], shared_by


def share(session: Session, *, actor: Actor, link_token: str, secret: str) -> tuple[LiveLink, str]:
    """A viewer's own token for the link a token names (theirs or someone's reshare): the same room, host,
    product and expiry, and the viewer recorded as the sharer."""
    link = resolve(session, link_token, secret=secret).link
    return link, token(link, secret=secret, shared_by=actor.user_id)


def open_link(session: Session, *, actor: Actor, link_token: str, secret: str, room_id: int | None = None,
              sku_id: int | None = None, quantity: int = 1) -> Opened:  # fmt: skip
    """Put the link's product in the shopper's cart with a LIVE source: the room, its host, the pin segment open
    at this moment (None when nothing is pinned or the room is not live), the link, who shared it (a reshare by
    someone else) and when it was opened. The line merges as any cart add does (a later link's source replaces
    an earlier one; a re-add without a link keeps it). A room that has ended still works, at the normal price.

    `sku_id`: the shopper's choice when the link names only the product (not needed when it has one SKU on sale)."""
    found = resolve(session, link_token, secret=secret, room_id=room_id, user_id=actor.user_id)
    link = found.link
    chosen, on_sale = _sku_to_add(session, found, sku_id)
    source = Source(SourceType.LIVE, {
        "room_id": link.room_id, "host_id": found.host_id, "segment_id": found.segment_id, "link_id": link.id,
        "shared_by": found.shared_by if found.shared_by != actor.user_id else None,
        "opened_at": clock.now().isoformat(),
    })  # fmt: skip
    # The cart's add of a LIVE line records the open (live_cart_adds: room, segment, link, shopper, SKU,
    # quantity); the sharer and time are in the line's source. No event of its own: it repeated that row.
    line_id = cart.add_line(session, user_id=actor.user_id, sku_id=chosen, quantity=quantity, source=source,
                            cart=found.cart, known_on_sale=on_sale)  # fmt: skip
    return Opened(link, line_id, chosen, source)


def _invalid() -> Invalid:
    return Invalid("live.link_invalid", "This live link is not valid.", field="token")


def _item(room: LiveRoom, *, item_id: int | None, product_id: int | None, sku_id: int | None) -> LineupItem:
    """The lineup item a link is for: by id, or the item of the product (its SKU's own item first)."""
    candidates = [i for i in room.items if i.id == item_id or (item_id is None and i.product_id == product_id)]
    candidates.sort(key=lambda i: i.sku_id != sku_id)  # the SKU's own item before the whole product's
    for item in candidates:
        if sku_id is None or item.sku_id in (None, sku_id):
            return item
    if candidates:
        raise Invalid("live.sku_not_in_lineup", f"SKU {sku_id} is not the lineup item's SKU.", field="sku_id")
    what = f"item {item_id}" if item_id is not None else f"product {product_id}"
    raise Invalid("live.not_in_lineup", f"The lineup of room {room.id} has no {what}.",
                  field="item_id" if item_id is not None else "product_id")  # fmt: skip


def _check_sku(session: Session, product_id: int, sku_id: int) -> Sku:
    sku = session.get(Sku, sku_id)
    if sku is None or sku.product_id != product_id:
        raise Invalid("live.sku_unknown", f"SKU {sku_id} is not a SKU of product {product_id}.", field="sku_id")
    return sku


def _sku_to_add(session: Session, found: Resolved, sku_id: int | None) -> tuple[int, bool]:
    """The link's SKU; for a link to the whole product, the shopper's choice or the product's only SKU on sale.
    With it, whether it is known to be on sale (else the cart's add checks, and refuses it as it does any SKU)."""
    link = found.link
    if link.sku_id is not None:
        if sku_id not in (None, link.sku_id):
            raise Invalid("live.sku_not_in_link", f"This link is for SKU {link.sku_id}.", field="sku_id")
        return link.sku_id, found.on_sale
    if sku_id is not None:
        return sku_id, found.on_sale and _check_sku(session, link.product_id, sku_id).status == "active"
    if found.only_sku is None:
        raise Invalid("live.sku_required", "Choose a SKU of this product.", field="sku_id")
    return found.only_sku, found.on_sale
