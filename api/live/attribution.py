"""Live attribution over HTTP: shoppers' room visits, a brand's attribution windows, a room's numbers."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import MallBlueprint, acting_brand, current_actor
from api.extensions import db
from api.fields import Id
from api.settings import settings
from api.tx import commit, read_only
from mall.identity.roles import MERCHANT, Role
from mall.live import attribution, numbers

blp = MallBlueprint("live_attribution", __name__, description="Live rooms: visits, attribution windows, numbers")

RUNNERS = (Role.HOST, Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)
THIRTY_DAYS = 30 * 24 * 60


class VisitSchema(Schema):
    room_id = fields.Integer()
    recorded = fields.Boolean(metadata={"description": "false: a repeat within a minute, not written again"})


class WindowsArgs(Schema):
    brand_id = Id(load_default=None, metadata={"description": "a platform admin names the brand"})


class WindowsSchema(Schema):
    brand_id = Id(load_default=None)
    direct_window_minutes = fields.Integer(strict=True, required=True, validate=validate.Range(1, THIRTY_DAYS),
                                           metadata={"description": "the viewing session; default 30"})  # fmt: skip
    indirect_window_minutes = fields.Integer(strict=True, required=True, validate=validate.Range(1, THIRTY_DAYS),
                                             metadata={"description": "at least the direct window; default 7 days"})  # fmt: skip


class NumbersSchema(Schema):
    viewers = fields.Integer()
    cart_adds = fields.Integer()
    orders = fields.Integer()
    paid_gmv = fields.Integer()
    refunds = fields.Integer()
    net_gmv = fields.Integer()
    conversion = fields.Float()
    direct_gmv = fields.Integer()
    indirect_gmv = fields.Integer()


class SegmentNumbersSchema(NumbersSchema):
    segment_id = fields.Integer()
    product_id = fields.Integer()
    title = fields.String()
    started_at = fields.AwareDateTime()
    ended_at = fields.AwareDateTime(allow_none=True)


class RoomNumbersSchema(Schema):
    room_id = fields.Integer()
    currency = fields.String()
    totals = fields.Nested(NumbersSchema)
    segments = fields.List(fields.Nested(SegmentNumbersSchema))


@blp.post("/live/rooms/<int:room_id>/visits")
@blp.auth(Role.SHOPPER)
@blp.response(201, VisitSchema)
def visit(room_id):
    """The mini-program opened the room: a visit (shopper, room, now). Counts the shopper as a viewer and starts
    their viewing session, within which their orders of the room's lines are direct. 404 for a cancelled room."""
    recorded = attribution.record_visit(db.session, user_id=current_actor().user_id, room_id=room_id)
    commit()
    return {"room_id": room_id, "recorded": recorded}


@blp.get("/admin/live/settings")
@blp.auth(*MERCHANT)
@blp.arguments(WindowsArgs, location="query")
@blp.response(200, WindowsSchema)
def get_windows(args):
    read_only()
    brand_id = acting_brand(args["brand_id"], code="live.brand_required")
    return attribution.settings_of(db.session, actor=current_actor(), brand_id=brand_id)


@blp.put("/admin/live/settings")
@blp.auth(*MERCHANT)
@blp.arguments(WindowsSchema)
@blp.response(200, WindowsSchema)
def set_windows(body):
    """The brand's attribution windows: an order placed within `direct_window_minutes` of the shopper opening
    the link or the room is direct, within `indirect_window_minutes` indirect, later the room's no more. They
    apply to orders placed from now on."""
    brand_id = acting_brand(body.pop("brand_id"), code="live.brand_required")
    found = attribution.set_windows(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return found


@blp.get("/live/rooms/<int:room_id>/numbers")
@blp.auth(*RUNNERS)
@blp.response(200, RoomNumbersSchema)
def room_numbers(room_id):
    """The room's numbers and each pin segment's ("what sold while X was on screen"), for its host and its
    brand's admins: computed from paid order lines and the refund ledger on each read, so a payment shows at
    once. A line counts in the segment pinned when its link was opened (ADR 0017)."""
    read_only()
    return numbers.room_numbers(db.session, actor=current_actor(), room_id=room_id,
                                default_currency=settings().default_currency)  # fmt: skip
