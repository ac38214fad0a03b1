"""Brands' side of orders: their sub-orders, shipping, after-sale decisions."""

from __future__ import annotations

import sqlalchemy as sa
from marshmallow import Schema, fields, validate

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.orders.schemas import AfterSaleSchema, DecisionSchema, OrderListArgs, ShipSchema, SubOrderSchema
from api.settings import payment_gateway, settings
from api.tx import commit
from mall.errors import Forbidden
from mall.identity.roles import MERCHANT
from mall.orders import after_sale
from mall.orders import services as orders

blp = MallBlueprint("orders_admin", __name__, url_prefix="/admin", description="Brands' sub-orders and after-sale")


class AfterSaleListArgs(Schema):
    status = fields.String(load_default="requested", validate=validate.OneOf(["requested", "rejected", "refunded"]))


@blp.get("/brands/<int:brand_id>/sub-orders")
@blp.auth(*MERCHANT)
@blp.arguments(OrderListArgs, location="query")
@blp.response(200, SubOrderSchema(many=True))
def list_sub_orders(args, brand_id):
    return orders.list_brand_sub_orders(db.session, actor=current_actor(), brand_id=brand_id, **args)


@blp.get("/sub-orders/<int:sub_order_id>")
@blp.auth(*MERCHANT)
@blp.response(200, SubOrderSchema)
def get_sub_order(sub_order_id):
    return orders.brand_sub_order(db.session, actor=current_actor(), sub_order_id=sub_order_id)


@blp.post("/sub-orders/<int:sub_order_id>/ship")
@blp.auth(*MERCHANT)
@blp.arguments(ShipSchema)
@blp.response(200, SubOrderSchema)
def ship(body, sub_order_id):
    sub = orders.ship(db.session, actor=current_actor(), sub_order_id=sub_order_id, policy=settings().order_policy,
                      **body)  # fmt: skip
    commit()
    return sub


@blp.post("/sub-orders/<int:sub_order_id>/deliver")
@blp.auth(*MERCHANT)
@blp.response(200, SubOrderSchema)
def mark_delivered(sub_order_id):
    """The carrier reported delivery; the shopper still confirms (or it auto-confirms)."""
    sub = orders.mark_delivered(db.session, actor=current_actor(), sub_order_id=sub_order_id)
    commit()
    return sub


@blp.get("/brands/<int:brand_id>/after-sales")
@blp.auth(*MERCHANT)
@blp.arguments(AfterSaleListArgs, location="query")
@blp.response(200, AfterSaleSchema(many=True))
def list_after_sales(args, brand_id):
    if not current_actor().can_manage_brand(brand_id):
        raise Forbidden("order.other_brand", "You can only see your own brand's after-sales.")
    query = (
        sa.select(after_sale.AfterSale)
        .join(orders.SubOrder, orders.SubOrder.id == after_sale.AfterSale.sub_order_id)
        .where(orders.SubOrder.brand_id == brand_id, after_sale.AfterSale.status == args["status"])
        .order_by(after_sale.AfterSale.id)
    )
    return db.session.scalars(query).all()


@blp.post("/after-sales/<int:after_sale_id>/approve")
@blp.auth(*MERCHANT)
@blp.arguments(DecisionSchema)
@blp.response(200, AfterSaleSchema)
def approve(body, after_sale_id):
    """Refund the requested units' paid amount through the gateway; restock returned goods. The refund is
    claimed with the approval and sent to the provider once it has committed (ADR 0014)."""
    case = after_sale.approve(db.session, actor=current_actor(), after_sale_id=after_sale_id,
                              gateway=payment_gateway(), note=body["note"])  # fmt: skip
    commit()
    return case


@blp.post("/after-sales/<int:after_sale_id>/reject")
@blp.auth(*MERCHANT)
@blp.arguments(DecisionSchema)
@blp.response(200, AfterSaleSchema)
def reject(body, after_sale_id):
    case = after_sale.reject(db.session, actor=current_actor(), after_sale_id=after_sale_id, note=body["note"])
    commit()
    return case
