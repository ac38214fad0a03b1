"""Checkout pricing: a quote for chosen cart lines, and brands' shipping policies."""

from __future__ import annotations

from flask import current_app

from api.auth import MallBlueprint, current_actor
from api.checkout.schemas import QuoteRequestSchema, QuoteSchema, ShippingPolicySchema
from api.extensions import db
from api.tx import commit, read_only
from mall.checkout import pricing
from mall.checkout import services as checkout
from mall.identity.roles import Role

blp = MallBlueprint("checkout", __name__, description="Quotes and shipping")


@blp.post("/checkout/quote")
@blp.auth(Role.SHOPPER)
@blp.arguments(QuoteRequestSchema)
@blp.response(200, QuoteSchema)
def quote(body):
    """Unit prices, discounts by source and by line, shipping per brand and the total. Changes nothing."""
    read_only()
    result = checkout.quote(db.session, shopper_id=current_actor().user_id, line_ids=body["line_ids"],
                            address_id=body["address_id"], coupon_ids=body["coupon_ids"],
                            points=body["points"])  # fmt: skip
    return quote_response(result)


def quote_response(result: checkout.QuoteResult | pricing.Quote):
    """QuoteSchema documents the response; quote_as_dict already builds exactly its fields, so the view sends
    the JSON itself (flask-smorest passes a Response through): dumping a 20-line quote with its coupons
    through marshmallow cost more than the pricing. Only the coupons' times need the schema's ISO format.
    A bare Quote (one SKU at a promotion's price) has no cart and no line problems."""
    if isinstance(result, pricing.Quote):
        result = checkout.QuoteResult(result, None, [])
    view = checkout.quote_as_dict(result)
    for coupon in view["coupons"]:
        coupon["valid_until"] = coupon["valid_until"].isoformat()
    return current_app.json.response(view)


@blp.put("/admin/brands/<int:brand_id>/shipping")
@blp.auth(Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)
@blp.arguments(ShippingPolicySchema)
@blp.response(200, ShippingPolicySchema)
def set_shipping(body, brand_id):
    """A flat fee per sub-order, waived when the brand's part reaches `free_above` (null: never)."""
    policy = checkout.set_shipping_policy(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return policy
