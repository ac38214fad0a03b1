"""Lucky bags (福袋) of a live room: the host opens one, viewers enter, the host draws, winners claim (ADR 0020)."""

from __future__ import annotations

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.idempotency import idempotent
from api.live.lucky_bag_schemas import BagCreateSchema, BagSchema, ClaimSchema, EntrySchema, PrizeSchema
from api.live.routes import RUNNERS, room_cache
from api.orders.schemas import OrderSchema
from api.tx import commit, read_only
from mall.identity.roles import Role
from mall.live import lucky_bags
from mall.live.announce import room_changed

blp = MallBlueprint("live_lucky_bags", __name__, description="Lucky bags (福袋) of live rooms")


def _changed(bag) -> None:
    """After the commit: the room's view for the next poll, and the announcement to its streams."""
    room_cache().publish(db.session, bag.room_id)
    room_changed(bag.room_id, "lucky_bag", {"bag_id": bag.id, "status": bag.status, "seed_hash": bag.seed_hash})


@blp.post("/live/rooms/<int:room_id>/lucky-bags")
@blp.auth(*RUNNERS)
@blp.arguments(BagCreateSchema)
@blp.response(201, BagSchema)
def create(body, room_id):
    """One open bag per room (409 lucky_bag.one_at_a_time). The seed is drawn now and its hash published."""
    bag = lucky_bags.create(db.session, actor=current_actor(), room_id=room_id, **body)
    commit()
    _changed(bag)
    return lucky_bags.public(db.session, bag)


@blp.get("/live/rooms/<int:room_id>/lucky-bags")
@blp.response(200, BagSchema(many=True))
def list_bags(room_id):
    """The room's bags, newest first: each one's seed hash; once drawn its seed, entrants and winners."""
    read_only()
    return [lucky_bags.public(db.session, bag) for bag in lucky_bags.of_room(db.session, room_id)]


@blp.get("/live/lucky-bags/<int:bag_id>")
@blp.response(200, BagSchema)
def get_bag(bag_id):
    """Everything needed to recompute the winners once drawn (ADR 0020): seed, entrants, prizes_awarded."""
    read_only()
    return lucky_bags.public(db.session, lucky_bags.get(db.session, bag_id))


@blp.post("/live/lucky-bags/<int:bag_id>/enter")
@blp.auth(Role.SHOPPER)
@blp.response(200, EntrySchema)
def enter(bag_id):
    """While the room is live and the bag open (409 live.room_not_live, lucky_bag.not_open). Again: a no-op."""
    bag, entered = lucky_bags.enter(db.session, user_id=current_actor().user_id, bag_id=bag_id)
    commit()
    return {"bag_id": bag.id, "entered": entered}


@blp.post("/live/lucky-bags/<int:bag_id>/draw")
@blp.auth(*RUNNERS)
@blp.response(200, BagSchema)
def draw(bag_id):
    """Close, snapshot the entrants, rank them, give the prizes: once. A second draw answers the same result."""
    bag, drew = lucky_bags.draw(db.session, actor=current_actor(), bag_id=bag_id)
    commit()
    if drew:
        _changed(bag)
    return lucky_bags.public(db.session, bag)


@blp.post("/live/lucky-bags/<int:bag_id>/cancel")
@blp.auth(*RUNNERS)
@blp.response(200, BagSchema)
def cancel(bag_id):
    bag = lucky_bags.cancel(db.session, actor=current_actor(), bag_id=bag_id)
    commit()
    _changed(bag)
    return lucky_bags.public(db.session, bag)


@blp.get("/live/lucky-bags/<int:bag_id>/prize")
@blp.auth(Role.SHOPPER)
@blp.response(200, PrizeSchema)
def my_prize(bag_id):
    """Your prize from this bag (404 lucky_bag.no_prize when you did not win)."""
    read_only()
    prize = lucky_bags.my_prize(db.session, user_id=current_actor().user_id, bag_id=bag_id)
    if prize is None:
        raise lucky_bags.no_prize()
    return prize


@blp.post("/live/lucky-bags/<int:bag_id>/claim")
@blp.auth(Role.SHOPPER)
@idempotent("lucky_bag.claim")
@blp.arguments(ClaimSchema)
@blp.response(201, OrderSchema)
def claim(body, bag_id):
    """A gift prize into an order at price 0 (shipping waived), paid as placed; within 24 h of the draw
    (409 lucky_bag.claim_expired after). Needs an `Idempotency-Key`."""
    return lucky_bags.claim_gift(db.session, user_id=current_actor().user_id, bag_id=bag_id, **body)
