"""Lucky bags (福袋): a room's prize draw that anyone can check (ADR 0020).

The seed is drawn and committed (its SHA-256 published) when the bag is created, before anyone enters; the
entrants are snapshotted at the draw (no entry is taken once the bag's status left `open`); the seed is
revealed after. The winners are `ranking(seed, entrants)[:prizes_awarded]`, a pure function anyone can run
on what the bag's read publishes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.cart.models import Cart, CartLine
from mall.catalog.models import Product, Sku
from mall.db import insert_on_conflict
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity.roles import Actor
from mall.inventory import services as inventory
from mall.live import rooms
from mall.live.lucky_bag_models import LuckyBag, LuckyBagEntry, LuckyBagPrize
from mall.live.models import LiveRoom
from mall.orders import services as orders
from mall.promotions.coupons import services as coupons
from mall.promotions.coupons.models import CouponTemplate

CLAIM_WINDOW = timedelta(hours=24)
GIFT_PAYMENT_WINDOW = timedelta(minutes=15)  # never used: the gift's order is paid (0) as it is placed


# The draw: a pure function of what is published ---------------------------------------------------------


def commitment(seed_hex: str) -> str:
    """The published commitment: SHA-256 of the seed's bytes, hex."""
    return hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()


def ticket(seed_hex: str, user_id: int) -> str:
    """An entrant's ticket: HMAC-SHA256 keyed by the seed's bytes over the user id in decimal ASCII, hex."""
    return hmac.new(bytes.fromhex(seed_hex), str(user_id).encode("ascii"), hashlib.sha256).hexdigest()


def ranking(seed_hex: str, entrants: list[int]) -> list[int]:
    """Entrants ordered by their ticket (ties, which need a SHA-256 collision, by user id): the winners are
    the first `prizes_awarded` of it."""
    return sorted(entrants, key=lambda user_id: (ticket(seed_hex, user_id), user_id))


# The host's (or brand admin's) verbs ---------------------------------------------------------------------


def create(session: Session, *, actor: Actor, room_id: int, title: str, prize_type: str, winner_count: int,
           opens_at: datetime, closes_at: datetime, coupon_template_id: int | None = None,
           gift_sku_id: int | None = None, entry_condition: str = "in_room") -> LuckyBag:  # fmt: skip
    room = rooms.lock(session, room_id)  # first statement: bags of one room queue here
    rooms.ensure_runs(actor, room)
    if room.status not in rooms.OPEN_STATUSES:
        raise Conflict("live.room_closed", f"The room is {room.status}; it cannot change.")
    if closes_at <= opens_at:
        raise Invalid("lucky_bag.window", "A lucky bag must close after it opens.", field="closes_at")
    _check_prize(session, room, prize_type, coupon_template_id, gift_sku_id, winner_count)
    if session.scalar(sa.select(LuckyBag.id).where(LuckyBag.room_id == room_id, LuckyBag.status == "open")):
        raise Conflict("lucky_bag.one_at_a_time", "This room has a lucky bag open; draw or cancel it first.")
    seed = secrets.token_hex(32)
    bag = LuckyBag(room_id=room_id, brand_id=room.brand_id, created_by=actor.user_id, title=title,
                   prize_type=prize_type, coupon_template_id=coupon_template_id, gift_sku_id=gift_sku_id,
                   winner_count=winner_count, entry_condition=entry_condition, opens_at=opens_at,
                   closes_at=closes_at, status="open", seed=seed, seed_hash=commitment(seed), entrant_count=0)  # fmt: skip
    session.add(bag)
    session.flush()  # the partial unique index is the last word on "one at a time"
    events.record(session, "live.lucky_bag_created", aggregate="live_room", aggregate_id=room_id, actor=actor,
                  bag_id=bag.id, seed_hash=bag.seed_hash)  # fmt: skip
    return bag


def _check_prize(session: Session, room: LiveRoom, prize_type: str, template_id: int | None, sku_id: int | None,
                 winner_count: int) -> None:  # fmt: skip
    if prize_type == "coupon":
        template = session.get(CouponTemplate, template_id) if template_id and not sku_id else None
        if template is None or template.brand_id != room.brand_id:
            raise Invalid("lucky_bag.prize_unknown", "The prize must be a coupon template of the room's brand.",
                          field="coupon_template_id")  # fmt: skip
        coupons.ensure_issuing(template)
        return
    sku = session.get(Sku, sku_id) if sku_id and not template_id else None
    product = sku and session.get(Product, sku.product_id)
    if sku is None or product.brand_id != room.brand_id:
        raise Invalid("lucky_bag.prize_unknown", "The prize must be a SKU of the room's brand.", field="gift_sku_id")
    if sku.status != "active" or sku.stock < winner_count:
        raise Conflict("lucky_bag.gift_short", "The gift SKU has not enough stock for every winner.",
                       stock=sku.stock if sku.status == "active" else 0)  # fmt: skip


def cancel(session: Session, *, actor: Actor, bag_id: int) -> LuckyBag:
    bag = _runs_bag(session, actor, bag_id)
    done = session.execute(sa.update(LuckyBag).where(LuckyBag.id == bag.id, LuckyBag.status == "open")
                           .values(status="cancelled", updated_at=clock.now())).rowcount  # fmt: skip
    if done != 1:
        raise Conflict("lucky_bag.not_open", "Only an open lucky bag can be cancelled.")
    session.refresh(bag)
    events.record(session, "live.lucky_bag_cancelled", aggregate="live_room", aggregate_id=bag.room_id,
                  actor=actor, bag_id=bag.id)  # fmt: skip
    return bag


def draw(session: Session, *, actor: Actor, bag_id: int) -> tuple[LuckyBag, bool]:
    """Close the bag, snapshot its entrants, rank them, give the prizes: exactly once. (bag, drew): a draw
    that lost the race (or came after) finds the bag drawn and answers the one result there is."""
    bag = _runs_bag(session, actor, bag_id)
    now = clock.now()
    if bag.status == "drawn":
        return bag, False
    if now < bag.opens_at:
        raise Conflict("lucky_bag.not_opened", "The lucky bag has not opened yet.")
    won = session.execute(sa.update(LuckyBag).where(LuckyBag.id == bag.id, LuckyBag.status == "open")
                          .values(status="drawn", drawn_at=now, updated_at=now)).rowcount  # fmt: skip
    session.refresh(bag)
    if won != 1:
        if bag.status == "drawn":
            return bag, False
        raise Conflict("lucky_bag.not_open", f"The lucky bag is {bag.status}.")
    entrants = entrant_ids(session, bag.id)  # entries are refused from here on: this is the snapshot
    ranked = ranking(bag.seed, entrants)
    awarded = min(bag.winner_count, len(ranked))
    if bag.prize_type == "gift":
        awarded = _reserve_gifts(session, bag.gift_sku_id, awarded)
    bag.prizes_awarded = awarded
    bag.entrant_count = len(entrants)
    template = session.get(CouponTemplate, bag.coupon_template_id) if bag.prize_type == "coupon" else None
    for rank, user_id in enumerate(ranked[:awarded], start=1):
        session.add(_prize(session, bag, template, rank, user_id, now))
    session.flush()
    events.record(session, "live.lucky_bag_drawn", aggregate="live_room", aggregate_id=bag.room_id, actor=actor,
                  bag_id=bag.id, entrants=len(entrants), winners=awarded)  # fmt: skip
    return bag, True


def _prize(session: Session, bag: LuckyBag, template, rank: int, user_id: int, now: datetime) -> LuckyBagPrize:
    if template is None:
        return LuckyBagPrize(bag_id=bag.id, user_id=user_id, rank=rank, status="reserved", sku_id=bag.gift_sku_id,
                             claim_by=now + CLAIM_WINDOW)  # fmt: skip
    # The coupons capability's own limits (total quantity, per-shopper limit, audience) decide; a refusal leaves
    # the prize `not_granted` rather than failing everyone's draw.
    coupon = coupons.issue(session, template=template, user_id=user_id, source="live",
                           grant_ref=f"lucky_bag:{bag.id}", strict=False)  # fmt: skip
    return LuckyBagPrize(bag_id=bag.id, user_id=user_id, rank=rank, status="granted" if coupon else "not_granted",
                         coupon_id=coupon.id if coupon else None, settled_at=now)  # fmt: skip


def _reserve_gifts(session: Session, sku_id: int, wanted: int) -> int:
    """Take `wanted` units, or as many as there are: the number of gifts there will be. One conditional UPDATE
    checked by its row count; when short, the row is locked, its stock read, and that much taken."""
    while wanted > 0:
        taken = session.execute(
            sa.update(Sku).where(Sku.id == sku_id, Sku.stock >= wanted, Sku.status == "active")
            .values(stock=Sku.stock - wanted, updated_at=clock.now()),
            execution_options={"synchronize_session": False},
        ).rowcount  # fmt: skip
        if taken == 1:
            return wanted
        row = session.execute(sa.select(Sku.stock, Sku.status).where(Sku.id == sku_id).with_for_update()).one()
        wanted = min(wanted, row.stock) if row.status == "active" else 0
    return 0


# Shoppers ---------------------------------------------------------------------------------------------------


def enter(session: Session, *, user_id: int, bag_id: int) -> tuple[LuckyBag, bool]:
    """Enter an open bag of a live room: (bag, entered now). Entering again changes nothing.

    The entry counts itself on the bag's row with a conditional UPDATE (`status = 'open'`) before inserting:
    a draw's UPDATE of the same row either comes first (this one then matches no row: refused) or waits for
    this entry's commit and then reads it. No entry lands after the snapshot."""
    now = clock.now()
    # The first statement, an UPDATE: on SQLite the write lock is taken before anything is read.
    room_live = sa.select(LiveRoom.id).where(LiveRoom.id == LuckyBag.room_id, LiveRoom.status == "live").exists()
    counted = session.execute(
        sa.update(LuckyBag)
        .where(LuckyBag.id == bag_id, LuckyBag.status == "open", LuckyBag.opens_at <= now, LuckyBag.closes_at > now,
               room_live)
        .values(entrant_count=LuckyBag.entrant_count + 1)
    ).rowcount  # fmt: skip
    bag = session.get(LuckyBag, bag_id)
    if bag is None:
        raise bag_not_found(bag_id)
    if counted != 1:
        if session.get(LiveRoom, bag.room_id).status != "live":
            raise Conflict("live.room_not_live", "Lucky bags are entered while the room is live.")
        raise Conflict("lucky_bag.not_open", "This lucky bag is not taking entries.")
    if bag.entry_condition == "followed_link" and not _followed_link(session, user_id, bag.room_id):
        raise Forbidden("lucky_bag.link_required", "Open one of the room's links to enter this lucky bag.")
    values = {"bag_id": bag_id, "user_id": user_id, "entered_at": now}
    if insert_on_conflict(session, LuckyBagEntry.__table__, values=values, index_elements=["bag_id", "user_id"]):
        return bag, True
    session.execute(sa.update(LuckyBag).where(LuckyBag.id == bag_id)
                    .values(entrant_count=LuckyBag.entrant_count - 1))  # fmt: skip
    return bag, False


def _followed_link(session: Session, user_id: int, room_id: int) -> bool:
    """A line of the shopper's cart came from this room's link (a LIVE source naming the room)."""
    sources = session.scalars(sa.select(CartLine.source).join(Cart, Cart.id == CartLine.cart_id)
                              .where(Cart.user_id == user_id))  # fmt: skip
    return any((s or {}).get("type") == "live" and (s or {}).get("room_id") == room_id for s in sources)


def claim_gift(session: Session, *, user_id: int, bag_id: int, address_id: int):
    """The winner's gift into an order at price 0 through the order path (address required), paid as placed.
    Within CLAIM_WINDOW of the draw; the prize row moves `reserved -> claimed` by a conditional UPDATE."""
    now = clock.now()
    prize = session.scalar(sa.select(LuckyBagPrize).where(LuckyBagPrize.bag_id == bag_id,
                                                          LuckyBagPrize.user_id == user_id))  # fmt: skip
    if prize is None or prize.sku_id is None:
        raise no_prize()
    if prize.status == "claimed":
        raise Conflict("lucky_bag.already_claimed", "This gift has been claimed.", order_id=prize.order_id)
    moved = session.execute(
        sa.update(LuckyBagPrize)
        .where(LuckyBagPrize.id == prize.id, LuckyBagPrize.status == "reserved", LuckyBagPrize.claim_by > now)
        .values(status="claimed", settled_at=now)
    ).rowcount  # fmt: skip
    if moved != 1:
        session.refresh(prize)  # a claim that raced this one may have taken it
        if prize.status == "claimed":
            raise Conflict("lucky_bag.already_claimed", "This gift has been claimed.", order_id=prize.order_id)
        raise Conflict("lucky_bag.claim_expired", "The time to claim this gift is over.")
    bag = session.get(LuckyBag, bag_id)
    # The stock was reserved at the draw (reserve=False).
    order = orders.place_direct(
        session, shopper_id=user_id, sku_id=prize.sku_id, quantity=1, unit_price=0, price_source="lucky_bag",
        source={"type": "lucky_bag", "bag_id": bag_id, "room_id": bag.room_id}, address_id=address_id,
        payment_window=GIFT_PAYMENT_WINDOW, reserve=False, free_shipping=True, bag_id=bag_id,
    )  # fmt: skip
    orders.mark_paid(session, order_id=order.id, amount=0, currency=order.currency, reference=f"lucky-bag-{bag_id}")
    session.execute(sa.update(LuckyBagPrize).where(LuckyBagPrize.id == prize.id).values(order_id=order.id))
    return order


def release_unclaimed(session: Session, *, limit: int = 500) -> int:
    """Give back the stock of gifts not claimed in time. Each prize moves `reserved -> released` by a
    conditional UPDATE first: a claim racing the sweep wins or loses whole, and stock returns once."""
    now = clock.now()
    due = session.execute(
        sa.select(LuckyBagPrize.id, LuckyBagPrize.sku_id)
        .where(LuckyBagPrize.status == "reserved", LuckyBagPrize.claim_by <= now)
        .order_by(LuckyBagPrize.claim_by, LuckyBagPrize.id).limit(limit)
    ).all()  # fmt: skip
    released: dict[int, int] = {}
    for prize_id, sku_id in due:
        moved = session.execute(sa.update(LuckyBagPrize)
                                .where(LuckyBagPrize.id == prize_id, LuckyBagPrize.status == "reserved")
                                .values(status="released", settled_at=now)).rowcount  # fmt: skip
        if moved == 1:
            released[sku_id] = released.get(sku_id, 0) + 1
    inventory.release(session, released)
    return sum(released.values())


# Reads ------------------------------------------------------------------------------------------------------


def bag_not_found(bag_id: int) -> NotFound:
    return NotFound("lucky_bag.not_found", f"Lucky bag {bag_id} not found.")


def no_prize() -> NotFound:
    return NotFound("lucky_bag.no_prize", "You have no prize from this lucky bag.")


def entrant_ids(session: Session, bag_id: int) -> list[int]:
    return list(session.scalars(sa.select(LuckyBagEntry.user_id).where(LuckyBagEntry.bag_id == bag_id)
                                .order_by(LuckyBagEntry.user_id)))  # fmt: skip


def public(session: Session, bag: LuckyBag) -> dict:
    """What anyone may read: the commitment always; once drawn the seed, the entrant list (ascending user id)
    and the winners in rank order."""
    drawn = bag.status == "drawn"
    body = {"id": bag.id, "room_id": bag.room_id, "title": bag.title, "status": bag.status,
            "prize_type": bag.prize_type, "coupon_template_id": bag.coupon_template_id,
            "gift_sku_id": bag.gift_sku_id, "winner_count": bag.winner_count, "entry_condition": bag.entry_condition,
            "opens_at": bag.opens_at, "closes_at": bag.closes_at, "seed_hash": bag.seed_hash,
            "entrant_count": bag.entrant_count, "drawn_at": bag.drawn_at, "seed": bag.seed if drawn else None,
            "prizes_awarded": bag.prizes_awarded, "entrants": None, "winners": None}  # fmt: skip
    if drawn:
        body["entrants"] = entrant_ids(session, bag.id)
        body["winners"] = list(session.scalars(sa.select(LuckyBagPrize.user_id).where(LuckyBagPrize.bag_id == bag.id)
                                               .order_by(LuckyBagPrize.rank)))  # fmt: skip
    return body


def get(session: Session, bag_id: int) -> LuckyBag:
    bag = session.get(LuckyBag, bag_id)
    room = bag and session.get(LiveRoom, bag.room_id)
    if bag is None or room.status == "cancelled":
        raise bag_not_found(bag_id)
    return bag


def of_room(session: Session, room_id: int) -> list[LuckyBag]:
    if session.scalar(sa.select(LiveRoom.id).where(LiveRoom.id == room_id, LiveRoom.status != "cancelled")) is None:
        raise rooms.room_not_found(room_id)
    return list(session.scalars(sa.select(LuckyBag).where(LuckyBag.room_id == room_id, LuckyBag.status != "cancelled")
                                .order_by(LuckyBag.id.desc())))  # fmt: skip


def my_prize(session: Session, *, user_id: int, bag_id: int) -> LuckyBagPrize | None:
    return session.scalar(sa.select(LuckyBagPrize).where(LuckyBagPrize.bag_id == bag_id,
                                                         LuckyBagPrize.user_id == user_id))  # fmt: skip


def _runs_bag(session: Session, actor: Actor, bag_id: int) -> LuckyBag:
    """The bag, its room locked first (rooms.lock, the room's version bumped), for its host or brand admin."""
    # rooms.lock, reached through the bag: the first statement.
    bumped = session.execute(
        sa.update(LiveRoom)
        .where(LiveRoom.id == sa.select(LuckyBag.room_id).where(LuckyBag.id == bag_id).scalar_subquery())
        .values(version=LiveRoom.version + 1, updated_at=clock.now()).returning(LiveRoom.id)
    ).first()  # fmt: skip
    if bumped is None:
        raise bag_not_found(bag_id)
    room = session.get(LiveRoom, bumped.id, populate_existing=True)
    if room.status == "cancelled" and not actor.can_manage_brand(room.brand_id):
        raise bag_not_found(bag_id)
    rooms.ensure_runs(actor, room)
    return session.get(LuckyBag, bag_id, populate_existing=True)
