"""The points catalogue (积分兑券, ADR 0029): operators offer coupons for points; members list and redeem them."""

from __future__ import annotations

from flask import request

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.idempotency import HEADER, idempotent
from api.members.catalogue_schemas import (
    CatalogueArgs,
    CatalogueItemChangeSchema,
    CatalogueItemNewSchema,
    CatalogueItemSchema,
    OfferedItemSchema,
    RedeemedSchema,
)  # fmt: skip
from api.tx import commit, read_only
from mall.identity.roles import MERCHANT, Role
from mall.members import catalogue, queries

blp = MallBlueprint("points_catalogue", __name__, description="Points catalogue: coupons bought with points")


@blp.post("/admin/points/catalogue")
@blp.auth(*MERCHANT)
@blp.arguments(CatalogueItemNewSchema)
@blp.response(201, CatalogueItemSchema)
def create_item(body):
    """Offer a coupon template for points (brand admins: their brand's templates only)."""
    item = catalogue.create_item(db.session, actor=current_actor(), **body)
    commit()
    return item


@blp.get("/admin/points/catalogue")
@blp.auth(*MERCHANT)
@blp.arguments(CatalogueArgs, location="query")
@blp.response(200, CatalogueItemSchema(many=True))
def list_items(args):
    """Every item (brand admins: their brand's), whatever its status and window."""
    read_only()
    return catalogue.list_items(db.session, actor=current_actor(), **args)


@blp.patch("/admin/points/catalogue/<int:item_id>")
@blp.auth(*MERCHANT)
@blp.arguments(CatalogueItemChangeSchema)
@blp.response(200, CatalogueItemSchema)
def update_item(body, item_id):
    """Change the price, caps, stock (not below what was redeemed), window or status (`ended` takes it off)."""
    item = catalogue.update_item(db.session, actor=current_actor(), item_id=item_id, **body)
    commit()
    return item


@blp.get("/me/points/catalogue")
@blp.auth(Role.SHOPPER)
@blp.arguments(CatalogueArgs, location="query")
@blp.response(200, OfferedItemSchema(many=True))
def offered(args):
    """Coupons offered for points now (active, in their window, in stock), cheapest first."""
    read_only()
    return catalogue.available(db.session, user_id=current_actor().user_id, **args)


@blp.post("/me/points/catalogue/<int:item_id>/redeem")
@blp.auth(Role.SHOPPER)
@idempotent("points.catalogue_redeem")
@blp.response(201, RedeemedSchema)
def redeem(item_id):
    """Buy one coupon with points, atomically: the points (oldest expiring first) and the coupon (with its
    template's limits, audience and quantity) or neither. Needs an `Idempotency-Key` header."""
    user_id = current_actor().user_id
    key = catalogue.redemption_key(user_id, request.headers[HEADER])
    redemption, coupon = catalogue.redeem(db.session, user_id=user_id, item_id=item_id, key=key)
    return {"redemption_id": redemption.id, "item_id": item_id, "points": redemption.points, "coupon": coupon,
            "balance": queries.summary(db.session, user_id=user_id)}  # fmt: skip
