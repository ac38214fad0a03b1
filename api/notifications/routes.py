"""Consent grants from the mini-program, the operators' view of messages, and T+ journeys."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.fields import MAX_ID
from api.settings import settings
from api.tx import commit
from mall.identity.roles import Role
from mall.notifications import journeys
from mall.notifications import services as notifications

blp = MallBlueprint("notifications", __name__, description="Subscriptions (consent), messages, journeys")
ANSWERS = ["accept", "reject", "ban", "filter"]


class GrantSchema(Schema):
    results = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 64)),
        values=fields.String(validate=validate.OneOf(ANSWERS)),
        required=True,
        metadata={"description": "wx.requestSubscribeMessage's answer: template id or key -> answer"},
    )


class GrantResultSchema(Schema):
    granted = fields.Integer()


class MessageSchema(Schema):
    id = fields.Integer()
    user_id = fields.Integer()
    template_key = fields.String()
    channel = fields.String()
    kind = fields.String()
    payload = fields.Dict()
    status = fields.String()
    skip_reason = fields.String(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    send_after = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class MessageArgs(Schema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(["pending", "sending", "sent", "skipped", "failed"])
    )
    user_id = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID))
    template_key = fields.String(load_default=None)
    before = fields.Integer(load_default=None, validate=validate.Range(1, MAX_ID))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class StepSchema(Schema):
    offset_minutes = fields.Integer(strict=True, required=True, validate=validate.Range(0, 365 * 1440))
    template_key = fields.String(required=True)
    condition = fields.String(load_default=None, validate=validate.OneOf(sorted(journeys.CONDITIONS)))
    payload = fields.Dict(load_default=dict)


class JourneySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(1, 80))
    anchor = fields.String(required=True, validate=validate.OneOf(journeys.ANCHORS))
    inactive_days = fields.Integer(strict=True, load_default=None, validate=validate.Range(1, 3650))
    active = fields.Boolean(dump_only=True)
    steps = fields.List(fields.Nested(StepSchema), required=True, validate=validate.Length(1, 20))


@blp.post("/notifications/subscriptions")
@blp.auth(Role.SHOPPER)
@blp.arguments(GrantSchema)
@blp.response(201, GrantResultSchema)
def record_subscriptions(body):
    """Record one-time subscription grants: each accepted template allows one message."""
    by_wechat_id = {tmpl_id: key for key, tmpl_id in settings().wechat_template_ids.items()}
    results = {by_wechat_id.get(k, k): v for k, v in body["results"].items()}
    granted = notifications.record_grants(db.session, user_id=current_actor().user_id, results=results)
    commit()
    return {"granted": granted}


@blp.get("/admin/notifications")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.arguments(MessageArgs, location="query")
@blp.response(200, MessageSchema(many=True))
def list_messages(args):
    """Messages with their status and, for skipped ones, why (no_consent, frequency_cap, condition_failed ...)."""
    return notifications.list_messages(db.session, **args)


@blp.get("/admin/journeys")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.response(200, JourneySchema(many=True))
def list_journeys():
    import sqlalchemy as sa

    return db.session.scalars(sa.select(journeys.Journey).order_by(journeys.Journey.id)).all()


@blp.post("/admin/journeys")
@blp.auth(Role.PLATFORM_ADMIN)
@blp.arguments(JourneySchema)
@blp.response(201, JourneySchema)
def create_journey(body):
    """An anchor event and timed steps (T+1 = 1440 minutes), each with a template and optional condition."""
    journey = journeys.define(db.session, **body)
    commit()
    return journey
