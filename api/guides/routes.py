"""Guides: a brand admin manages guides, stores and the binding rule and reads why a shopper is (not) bound; a
guide makes share links and reads the same for their own customers; a shopper opens a link."""

from __future__ import annotations

import io
from functools import lru_cache

import segno
from flask import Response, url_for

from api.auth import MallBlueprint, acting_brand, current_actor
from api.extensions import db
from api.guides.schemas import (
    BindingEventSchema,
    BindingRuleSchema,
    GuideLinkOpenedSchema,
    GuideLinkSchema,
    GuideQrArgs,
    GuideSchema,
    HandedOverSchema,
    HandOverSchema,
    InviteSchema,
    NewGuideLinkSchema,
    NewStoreSchema,
    OpenGuideLinkSchema,
    RemoveGuideSchema,
    StoreSchema,
    WhyArgs,
)
from api.settings import settings
from api.tx import commit, read_only
from mall.guides import services
from mall.guides.models import GuideLink
from mall.identity.roles import MERCHANT, Role

blp = MallBlueprint("guides", __name__, description="Guides (导购): share links and explainable customer binding")

_CODE = "guides.brand_required"


def _link(link: GuideLink) -> dict:
    token = services.token(link, secret=settings().secret_key)
    return {**{c.key: getattr(link, c.key) for c in GuideLink.__table__.columns}, "token": token,
            "path": services.path(token), "qr_url": url_for("guides.qr", t=token)}  # fmt: skip


@blp.post("/admin/guides/stores")
@blp.auth(*MERCHANT)
@blp.arguments(NewStoreSchema)
@blp.response(201, StoreSchema)
def create_store(body):
    """A store of the brand (guides may belong to one; store links are printable in-store QR codes)."""
    actor = current_actor()
    store = services.create_store(db.session, actor=actor, brand_id=acting_brand(body["brand_id"], code=_CODE),
                                  name=body["name"])  # fmt: skip
    commit()
    return store


@blp.post("/admin/guides")
@blp.auth(*MERCHANT)
@blp.arguments(InviteSchema)
@blp.response(201, GuideSchema)
def invite(body):
    """Invite a staff user (role guide, of the brand) as a guide; they sell once activated. 422
    guides.not_a_guide_user, 409 guides.already_invited."""
    brand_id = acting_brand(body.pop("brand_id"), code=_CODE)
    guide = services.invite(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return guide


@blp.post("/admin/guides/<int:guide_id>/activate")
@blp.auth(*MERCHANT)
@blp.response(200, GuideSchema)
def activate(guide_id):
    """An invited or suspended guide becomes active (409 guides.status otherwise)."""
    guide = services.move(db.session, actor=current_actor(), guide_id=guide_id, action="activate")
    commit()
    return guide


@blp.post("/admin/guides/<int:guide_id>/suspend")
@blp.auth(*MERCHANT)
@blp.response(200, GuideSchema)
def suspend(guide_id):
    """An active guide is suspended: their links stop working (410 guides.link_inactive); bindings stay."""
    guide = services.move(db.session, actor=current_actor(), guide_id=guide_id, action="suspend")
    commit()
    return guide


@blp.post("/admin/guides/<int:guide_id>/remove")
@blp.auth(*MERCHANT)
@blp.arguments(RemoveGuideSchema)
@blp.response(200, GuideSchema)
def remove(body, guide_id):
    """The guide leaves: their customers go to `hand_to` (an active guide of the brand) or are unbound; history
    kept."""
    guide = services.move(db.session, actor=current_actor(), guide_id=guide_id, action="remove", **body)
    commit()
    return guide


@blp.post("/admin/guides/<int:guide_id>/hand-over")
@blp.auth(*MERCHANT)
@blp.arguments(HandOverSchema)
@blp.response(200, HandedOverSchema)
def hand_over(body, guide_id):
    """Every customer bound to the guide is handed to another active guide of the brand, each binding's window and
    rule kept, the old bindings ended as handed_over."""
    moved = services.hand_over(db.session, actor=current_actor(), guide_id=guide_id, **body)
    commit()
    return {"customers": moved}


@blp.post("/admin/guides/binding-rule")
@blp.auth(*MERCHANT)
@blp.arguments(BindingRuleSchema)
@blp.response(201, BindingRuleSchema)
def set_rule(body):
    """A new dated version of the brand's binding rule, in force from now for new bindings only."""
    brand_id = acting_brand(body.pop("brand_id"), code=_CODE)
    row = services.set_rule(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return row


@blp.get("/admin/guides/customers/<int:shopper_id>/why")
@blp.auth(*MERCHANT)
@blp.arguments(WhyArgs, location="query")
@blp.response(200, BindingEventSchema(many=True))
def admin_why(args, shopper_id):
    """The shopper's binding history in the brand, every event with its reason."""
    read_only()
    return services.why(db.session, actor=current_actor(), shopper_id=shopper_id, brand_id=args["brand_id"])


@blp.get("/guide/customers/<int:shopper_id>/why")
@blp.auth(Role.GUIDE)
@blp.response(200, BindingEventSchema(many=True))
def guide_why(shopper_id):
    """Why this shopper is (not) bound to me: the events about me, with their reasons."""
    read_only()
    return services.why(db.session, actor=current_actor(), shopper_id=shopper_id)


@blp.post("/guide/links")
@blp.auth(Role.GUIDE)
@blp.arguments(NewGuideLinkSchema)
@blp.response(201, GuideLinkSchema)
def create_link(body):
    """A share link (product, live room, storefront or store): its short signed code, mini-program path and QR
    code."""
    link = services.create_link(db.session, actor=current_actor(), **body)
    commit()
    return _link(link)


@blp.get("/guide/links")
@blp.auth(Role.GUIDE)
@blp.response(200, GuideLinkSchema(many=True))
def my_links():
    """My links, newest first."""
    read_only()
    return [_link(link) for link in services.my_links(db.session, actor=current_actor())]


@blp.post("/guide/links/open")
@blp.auth(Role.SHOPPER)
@blp.arguments(OpenGuideLinkSchema)
@blp.response(200, GuideLinkOpenedSchema)
def open_link(body):
    """A visit, the brand's binding rule applied (the outcome and its reason in `binding`), and for a product link
    the product in the cart with a GUIDE source. 422 guides.link_invalid, 410 guides.link_inactive."""
    opened = services.open_link(db.session, actor=current_actor(), link_token=body.pop("token"),
                                secret=settings().secret_key, **body)  # fmt: skip
    commit()
    return {"link_id": opened.link.id, "guide_id": opened.link.guide_id, "target": opened.link.target,
            "visit_id": opened.visit.id, "binding": opened.binding, "line_id": opened.line_id,
            "source": opened.source.as_dict() if opened.source else None}  # fmt: skip


@blp.get("/guide/links/qr.png")
@blp.arguments(GuideQrArgs, location="query")
@blp.response(200, description="A PNG QR code of the link's mini-program path")
def qr(args):
    """The QR code of a guide link's mini-program path, as PNG; only for a valid token of an active guide."""
    read_only()
    services.resolve(db.session, args["t"], secret=settings().secret_key)
    return Response(_qr_png(args["t"], args["scale"]), content_type="image/png",
                    headers={"Cache-Control": "private, max-age=300"})  # fmt: skip


@lru_cache(maxsize=512)
def _qr_png(token: str, scale: int) -> bytes:
    out = io.BytesIO()
    segno.make(services.path(token), error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
