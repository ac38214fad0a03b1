"""Group-buy (拼团): brands run campaigns; shoppers open groups, join through the share link, or leave."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.auth import MallBlueprint, acting_brand, current_actor
from api.checkout.routes import quote_response
from api.checkout.schemas import PromotionCouponIds, QuoteSchema, SourceToken
from api.extensions import db
from api.fields import Bool, Id
from api.idempotency import idempotent
from api.orders.schemas import OrderSchema
from api.settings import payment_gateway, settings
from api.tx import commit, read_only
from mall import attribution
from mall.identity.roles import Role
from mall.promotions.group_buy import services

blp = MallBlueprint("group_buy", __name__, description="Group-buy")


class CampaignSchema(Schema):
    id = fields.Integer(dump_only=True)
    brand_id = Id(load_default=None)
    sku_id = Id(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 100))
    group_price = fields.Integer(strict=True, required=True, validate=validate.Range(0, 10**10))
    leader_discount = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, 10**10))
    group_size = fields.Integer(strict=True, required=True, validate=validate.Range(2, 50))
    form_hours = fields.Integer(strict=True, load_default=24, validate=validate.Range(1, 240))
    per_shopper_limit = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 100))
    new_shoppers_only = Bool(load_default=False)
    complete_on_expiry = Bool(load_default=False)
    payment_minutes = fields.Integer(strict=True, load_default=15, validate=validate.Range(1, 120))
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)

    @validates_schema
    def _check(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("ends_at must be after starts_at.", field_name="ends_at")
        if data["leader_discount"] > data["group_price"]:
            raise ValidationError("The leader discount cannot exceed the group price.", field_name="leader_discount")


class GroupMemberSchema(Schema):
    user_id = fields.Integer()
    is_leader = fields.Boolean()
    status = fields.String()
    joined_at = fields.DateTime()


class GroupSchema(Schema):
    id = fields.Integer()
    campaign_id = fields.Integer()
    status = fields.String()
    group_size = fields.Integer()
    seats_taken = fields.Integer()
    paid_count = fields.Integer()
    completed_on_expiry = fields.Boolean(metadata={"description": "completed by the campaign's explicit rule"})
    expires_at = fields.DateTime(allow_none=True)
    members = fields.List(fields.Nested(GroupMemberSchema))


class GroupQuoteSchema(Schema):
    coupon_ids = PromotionCouponIds


class GroupAddressSchema(GroupQuoteSchema):
    address_id = Id(required=True)
    source_token = SourceToken


def _origin(body: dict):
    return attribution.verify(body.pop("source_token"), secret=settings().secret_key)


class OpenedSchema(Schema):
    group = fields.Nested(GroupSchema)
    order = fields.Nested(OrderSchema)


@blp.post("/admin/group-campaigns")
@blp.auth(Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)
@blp.arguments(CampaignSchema)
@blp.response(201, CampaignSchema)
def create_campaign(body):
    actor = current_actor()
    brand_id = acting_brand(body.pop("brand_id"), code="group_buy.brand_required")
    campaign = services.create_campaign(db.session, actor=actor, brand_id=brand_id, **body)
    commit()
    return campaign


@blp.post("/group-campaigns/<int:campaign_id>/groups")
@blp.auth(Role.SHOPPER)
@idempotent("group_buy.open")
@blp.arguments(GroupAddressSchema)
@blp.response(201, OpenedSchema)
def open_group(body, campaign_id):
    """Open a group: your leader order, to pay within the window; the group forms once it is paid."""
    group, order = services.open_group(db.session, campaign_id=campaign_id, user_id=current_actor().user_id,
                                       origin=_origin(body), **body)  # fmt: skip
    return {"group": group, "order": order}


@blp.post("/group-campaigns/<int:campaign_id>/quote")
@blp.auth(Role.SHOPPER)
@blp.arguments(GroupQuoteSchema)
@blp.response(200, QuoteSchema)
def quote_open(body, campaign_id):
    """What opening a group would cost you (the leader's price, shipping), with your coupons, each usable or not
    with the checkout's reason (`not_combinable` unless its template combines with `group_buy`). Changes nothing."""
    read_only()
    quote = services.quote_open(db.session, campaign_id=campaign_id, user_id=current_actor().user_id, **body)
    return quote_response(quote)


@blp.post("/groups/<int:group_id>/quote")
@blp.auth(Role.SHOPPER)
@blp.arguments(GroupQuoteSchema)
@blp.response(200, QuoteSchema)
def quote_join(body, group_id):
    """What joining this group would cost you, as the campaign's quote for a member. Changes nothing."""
    read_only()
    quote = services.quote_join(db.session, group_id=group_id, user_id=current_actor().user_id, **body)
    return quote_response(quote)


@blp.get("/groups/<int:group_id>")
@blp.response(200, GroupSchema)
def get_group(group_id):
    """What the share link shows: seats, paid members, time left."""
    return services.get_group(db.session, group_id)


@blp.post("/groups/<int:group_id>/join")
@blp.auth(Role.SHOPPER)
@idempotent("group_buy.join")
@blp.arguments(GroupAddressSchema)
@blp.response(201, OrderSchema)
def join(body, group_id):
    """Take a seat (atomically; never more than the group size) and get your order to pay."""
    return services.join(db.session, group_id=group_id, user_id=current_actor().user_id, origin=_origin(body), **body)


@blp.post("/groups/<int:group_id>/leave")
@blp.auth(Role.SHOPPER)
@blp.response(200, GroupMemberSchema)
def leave(group_id):
    """Before the group succeeds: your payment is refunded and your seat freed."""
    member = services.leave(db.session, group_id=group_id, user_id=current_actor().user_id,
                            gateway=payment_gateway())  # fmt: skip
    commit()
    return member
