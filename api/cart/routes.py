"""The shopper's cart."""

from __future__ import annotations

from api.auth import MallBlueprint, current_actor
from api.cart.schemas import AddBundleSchema, AddLineSchema, CartSchema, QuantitySchema
from api.extensions import db
from api.settings import settings
from api.tx import commit
from mall import attribution
from mall.cart import services as cart
from mall.checkout import bundles as checkout_bundles
from mall.identity.roles import Role

blp = MallBlueprint("cart", __name__, url_prefix="/cart", description="The shopper's cart")


def _view(held: tuple | None = None) -> dict:
    """The cart as the shopper sees it. `held`: the (cart, member level) this request read already."""
    the_cart, level = held or cart.cart_and_level(db.session, current_actor().user_id)
    lines = [
        {
            "id": line.id, "sku_id": sku.id, "product_id": product.id, "brand_id": product.brand_id,
            "title": product.title, "image": (product.images or [None])[0], "specs": sku.specs,
            "quantity": line.quantity, "unit_price": sku.price, "list_price": sku.list_price,
            "currency": product.currency, "stock": sku.stock, "source": line.source,
            "problem": cart.line_problem(line, sku, product, level), "bundle_id": None, "bundle_items": [],
        }
        for line, sku, product in cart.lines_with_skus(db.session, the_cart)
    ]  # fmt: skip
    lines += _bundle_lines(the_cart, level)
    lines.sort(key=lambda line: line["id"])
    return {"id": the_cart.id, "version": the_cart.version, "last_activity_at": the_cart.last_activity_at,
            "lines": lines}  # fmt: skip


def _bundle_lines(the_cart, level: int) -> list[dict]:
    """The cart's bundle lines: the bundle's price, and the bundles its parts' stock allows."""
    lines = cart.bundle_lines(db.session, the_cart)
    found = checkout_bundles.bundles_of(db.session, {line.bundle_id for line in lines}) if lines else {}
    views = []
    for line in lines:
        bundle = found.get(line.bundle_id)
        parts = bundle.parts if bundle else []
        problem = checkout_bundles.problem(line, bundle, level)
        views.append({
            "id": line.id, "sku_id": None, "bundle_id": line.bundle_id, "product_id": None,
            "brand_id": parts[0].product.brand_id if parts else None, "title": bundle.title if bundle else "",
            "image": None, "specs": {}, "quantity": line.quantity, "unit_price": bundle.price if bundle else 0,
            "list_price": sum(p.sku.list_price * p.units for p in parts), "currency": bundle.currency if bundle else "",
            "stock": min((p.sku.stock // p.units for p in parts), default=0), "source": line.source,
            "problem": problem["reason"] if problem else None,
            "bundle_items": [{"sku_id": p.sku.id, "quantity": p.units} for p in parts],
        })  # fmt: skip
    return views


@blp.get("")
@blp.auth(Role.SHOPPER)
@blp.response(200, CartSchema)
def get_cart():
    """Lines with live prices and availability; unavailable lines are flagged with `problem`, not dropped."""
    view = _view()
    commit()  # the cart may have just been created
    return view


@blp.post("/lines")
@blp.auth(Role.SHOPPER)
@blp.arguments(AddLineSchema)
@blp.response(200, CartSchema)
def add_line(body):
    """Add a SKU; the same SKU merges into its line. A live or guide source on the line is kept when the SKU is
    re-added without a link, and replaced only by a newer link."""
    source = attribution.verify(body["source_token"], secret=settings().secret_key)
    held = cart.cart_and_level(db.session, current_actor().user_id)
    cart.add_line(db.session, user_id=current_actor().user_id, sku_id=body["sku_id"], quantity=body["quantity"],
                  source=source, cart=held[0])  # fmt: skip
    view = _view(held)
    commit()
    return view


@blp.post("/bundles")
@blp.auth(Role.SHOPPER)
@blp.arguments(AddBundleSchema)
@blp.response(200, CartSchema)
def add_bundle(body):
    """Add a bundle (套餐) as one line; the same bundle merges into its line (`quantity` counts bundles). At checkout
    it is priced at the bundle's price, split over its parts, and takes stock from every part."""
    source = attribution.verify(body["source_token"], secret=settings().secret_key)
    held = cart.cart_and_level(db.session, current_actor().user_id)
    cart.add_bundle(db.session, user_id=current_actor().user_id, bundle_id=body["bundle_id"],
                    quantity=body["quantity"], source=source, cart=held[0])  # fmt: skip
    view = _view(held)
    commit()
    return view


@blp.patch("/lines/<int:line_id>")
@blp.auth(Role.SHOPPER)
@blp.arguments(QuantitySchema)
@blp.response(200, CartSchema)
def set_quantity(body, line_id):
    held = cart.cart_and_level(db.session, current_actor().user_id)
    cart.set_quantity(db.session, user_id=current_actor().user_id, line_id=line_id, quantity=body["quantity"],
                      cart=held[0])  # fmt: skip
    view = _view(held)
    commit()
    return view


@blp.delete("/lines/<int:line_id>")
@blp.auth(Role.SHOPPER)
@blp.response(200, CartSchema)
def remove_line(line_id):
    held = cart.cart_and_level(db.session, current_actor().user_id)
    cart.remove_line(db.session, user_id=current_actor().user_id, line_id=line_id, cart=held[0])
    view = _view(held)
    commit()
    return view


@blp.delete("")
@blp.auth(Role.SHOPPER)
@blp.response(200, CartSchema)
def clear_cart():
    cart.clear(db.session, user_id=current_actor().user_id)
    view = _view()
    commit()
    return view
