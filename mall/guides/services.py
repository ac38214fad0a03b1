"""Guides and their share links: a brand admin invites, activates, suspends and removes guides and hands a leaving
guide's customers to another; a guide makes share links; a shopper opening one records a visit, gets the brand's
binding rule applied (mall/guides/binding.py) and, for a product link, the product in the cart with a GUIDE source.

A link is a row and a short token signed with the app's secret (its own salt, so no other kind of token passes for
it) naming the link and its guide. Refusals: 422 `guides.link_invalid` (not ours or altered), 410
`guides.link_inactive` (its guide is no longer active: the visit is not recorded)."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from mall import clock, events
from mall.attribution import Source, SourceType
from mall.cart import services as cart
from mall.catalog.models import Product, Sku
from mall.catalog.taxonomy import get_brand
from mall.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from mall.guides import binding
from mall.guides.models import MODES, BindingEvent, BindingSetting, Guide, GuideLink, GuideVisit, Store
from mall.identity.models import User
from mall.identity.roles import Actor, Role
from mall.live.models import LiveRoom

SALT = "mall.guides.link.v1"
PAGE = "pages/guide/link"  # the mini-program page that opens a guide link: PAGE?t=<token>
_MOVES = {"activate": ({"invited", "suspended"}, "active"), "suspend": ({"active"}, "suspended"),
          "remove": ({"invited", "active", "suspended"}, "removed")}  # fmt: skip


class Opened(NamedTuple):
    link: GuideLink
    visit: GuideVisit
    binding: BindingEvent  # what the rule did, and why
    line_id: int | None  # the cart line of a product link
    source: Source | None


def _brand(actor: Actor, brand_id: int) -> None:
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("guides.not_your_brand", "Only the brand's admin manages its guides.")


def managed_guide(session: Session, *, actor: Actor, guide_id: int) -> Guide:
    # FOR NO KEY UPDATE: opens racing a hand-over insert events referencing the guide (FOR KEY SHARE), not blocked
    guide = session.get(Guide, guide_id, with_for_update={"key_share": True})
    if guide is None or not actor.can_manage_brand(guide.brand_id):
        raise NotFound("guides.guide_not_found", f"Guide {guide_id} not found.")
    return guide


def own_guide(session: Session, actor: Actor) -> Guide:
    """The guide record of a guide's token (of its brand)."""
    guide = session.scalars(sa.select(Guide).where(Guide.user_id == actor.user_id)).first()
    if guide is None or guide.brand_id != actor.brand_id:
        raise Forbidden("guides.not_a_guide", "This account is not a guide of a brand.")
    return guide


def create_store(session: Session, *, actor: Actor, brand_id: int, name: str) -> Store:
    _brand(actor, brand_id)
    get_brand(session, brand_id)  # a platform admin may name any id: an unknown brand is a 404, not a 500
    store = Store(brand_id=brand_id, name=name)
    session.add(store)
    session.flush()
    return store


def _store(session: Session, brand_id: int, store_id: int | None) -> None:
    if store_id is not None:
        store = session.get(Store, store_id)
        if store is None or store.brand_id != brand_id:
            raise Invalid("guides.store_unknown", f"Store {store_id} is not a store of brand {brand_id}.",
                          field="store_id")  # fmt: skip


def invite(session: Session, *, actor: Actor, brand_id: int, user_id: int, store_id: int | None = None,
           name: str = "", shopper_user_id: int | None = None) -> Guide:  # fmt: skip
    """Invite a staff user with role `guide` of the brand; `shopper_user_id`: the shopper account they buy with."""
    _brand(actor, brand_id)
    user = session.get(User, user_id)
    if user is None or user.role != Role.GUIDE or user.brand_id != brand_id:
        raise Invalid("guides.not_a_guide_user", f"User {user_id} is not a guide account of brand {brand_id}.",
                      field="user_id")  # fmt: skip
    if shopper_user_id is not None:
        shopper = session.get(User, shopper_user_id)
        if shopper is None or shopper.role != Role.SHOPPER:
            raise Invalid("guides.not_a_shopper", f"User {shopper_user_id} is not a shopper.", field="shopper_user_id")
    _store(session, brand_id, store_id)
    if session.scalar(sa.select(Guide.id).where(Guide.user_id == user_id)) is not None:
        raise Conflict("guides.already_invited", f"User {user_id} is already a guide.")
    guide = Guide(user_id=user_id, brand_id=brand_id, store_id=store_id, name=name or user.display_name,
                  shopper_user_id=shopper_user_id, invited_by=actor.user_id, status="invited")  # fmt: skip
    session.add(guide)
    session.flush()
    events.record(session, "guide.invited", aggregate="guide", aggregate_id=guide.id, actor=actor, brand_id=brand_id)
    return guide


def move(session: Session, *, actor: Actor, guide_id: int, action: str, hand_to: int | None = None) -> Guide:
    """activate | suspend | remove. Removing hands the guide's customers to `hand_to` (a guide of the brand), or
    ends their bindings; the history is kept either way."""
    guide = managed_guide(session, actor=actor, guide_id=guide_id)
    sources, target = _MOVES[action]
    if guide.status not in sources:
        raise Conflict(
            "guides.status", f"A guide that is {guide.status} cannot be {action}d.", guide_status=guide.status
        )
    if action == "remove":
        if hand_to is not None:
            hand_over(session, actor=actor, guide_id=guide.id, to_guide_id=hand_to)
        binding.end_all(session, guide=guide, why="guide_removed", by=actor.user_id, now=clock.now())
    guide.status = target
    events.record(session, f"guide.{target}", aggregate="guide", aggregate_id=guide.id, actor=actor,
                  hand_to=hand_to)  # fmt: skip
    return guide


def hand_over(session: Session, *, actor: Actor, guide_id: int, to_guide_id: int) -> int:
    """Hand every customer bound to the guide to another active guide of the brand (bulk, logged); returns how
    many."""
    source = managed_guide(session, actor=actor, guide_id=guide_id)
    target = session.get(Guide, to_guide_id)
    if target is None or target.brand_id != source.brand_id or target.id == source.id:
        raise Invalid("guides.handover_target", "Hand customers to another guide of the same brand.",
                      field="to_guide_id")  # fmt: skip
    if target.status != "active":
        raise Conflict("guides.handover_target_inactive", f"Guide {to_guide_id} is not active.")
    moved = binding.hand_over(session, source=source, target=target, by=actor.user_id, now=clock.now())
    events.record(session, "guide.customers_handed_over", aggregate="guide", aggregate_id=source.id, actor=actor,
                  to_guide_id=target.id, customers=len(moved))  # fmt: skip
    return len(moved)


def set_rule(session: Session, *, actor: Actor, brand_id: int, mode: str, days: int = 15,
             order_days: int = 30) -> BindingSetting:  # fmt: skip
    """A new version of the brand's binding rule, in force from now, for new bindings only."""
    _brand(actor, brand_id)
    if mode not in MODES:
        raise Invalid("guides.binding_mode", f"Mode is one of {', '.join(MODES)}.", field="mode")
    last = session.scalar(sa.select(sa.func.max(BindingSetting.version)).where(BindingSetting.brand_id == brand_id))
    row = BindingSetting(brand_id=brand_id, version=(last or 0) + 1, mode=mode, days=days, order_days=order_days,
                         effective_from=clock.now(), created_by=actor.user_id)  # fmt: skip
    session.add(row)
    session.flush()
    return row


def create_link(session: Session, *, actor: Actor, target: str, product_id: int | None = None,
                sku_id: int | None = None, room_id: int | None = None, store_id: int | None = None) -> GuideLink:  # fmt: skip
    """A share link of the guide's own brand: a product (optionally one SKU), a live room, the storefront or a store."""
    guide = own_guide(session, actor)
    if guide.status != "active":
        raise Conflict("guides.guide_not_active", "Only an active guide shares links.", guide_status=guide.status)
    brand_id = guide.brand_id
    if target == "product":
        product = session.get(Product, product_id)
        if product is None or product.brand_id != brand_id:
            raise Invalid("guides.product_unknown", f"Product {product_id} is not your brand's.", field="product_id")
        if sku_id is not None and (sku := session.get(Sku, sku_id)) is not None and sku.product_id != product_id:
            raise Invalid("guides.sku_unknown", f"SKU {sku_id} is not a SKU of product {product_id}.", field="sku_id")
    elif target == "live_room":
        room = session.get(LiveRoom, room_id)
        if room is None or room.brand_id != brand_id:
            raise Invalid("guides.room_unknown", f"Live room {room_id} is not your brand's.", field="room_id")
    elif target == "store":
        _store(session, brand_id, store_id)
    link = GuideLink(guide_id=guide.id, brand_id=brand_id, target=target,
                     product_id=product_id if target == "product" else None,
                     sku_id=sku_id if target == "product" else None,
                     room_id=room_id if target == "live_room" else None,
                     store_id=store_id if target == "store" else None)  # fmt: skip
    session.add(link)
    session.flush()
    return link


def my_links(session: Session, *, actor: Actor, limit: int = 200) -> list[GuideLink]:
    guide = own_guide(session, actor)
    query = sa.select(GuideLink).where(GuideLink.guide_id == guide.id).order_by(GuideLink.id.desc()).limit(limit)
    return list(session.scalars(query))


def token(link: GuideLink, *, secret: str) -> str:
    """The link's short signed code (deterministic)."""
    return URLSafeSerializer(secret, salt=SALT).dumps([link.id, link.guide_id])


def path(link_token: str) -> str:
    return f"{PAGE}?t={link_token}"


def resolve(session: Session, link_token: str, *, secret: str) -> tuple[GuideLink, Guide]:
    try:
        claims = URLSafeSerializer(secret, salt=SALT).loads(link_token)
    except BadSignature as exc:
        raise _invalid() from exc
    if not isinstance(claims, list) or len(claims) != 2 or not all(type(c) is int for c in claims):
        raise _invalid()
    link = session.get(GuideLink, claims[0])
    if link is None or link.guide_id != claims[1]:
        raise _invalid()
    guide = session.get(Guide, link.guide_id)
    if guide.status != "active":
        raise Gone("guides.link_inactive", "This guide's links no longer work.")
    return link, guide


def open_link(session: Session, *, actor: Actor, link_token: str, secret: str, sku_id: int | None = None,
              quantity: int = 1) -> Opened:  # fmt: skip
    """A shopper opens a guide's link: a visit, the brand's binding rule applied, and for a product link the product
    added to the cart with a GUIDE source (guide, link, brand, time)."""
    link, guide = resolve(session, link_token, secret=secret)
    now = clock.now()
    visit = GuideVisit(guide_id=guide.id, brand_id=guide.brand_id, shopper_id=actor.user_id, link_id=link.id,
                       visited_at=now)  # fmt: skip
    session.add(visit)
    outcome = binding.on_click(session, guide=guide, shopper_id=actor.user_id, link=link, now=now)
    line_id = source = None
    if link.target == "product":
        chosen = link.sku_id or sku_id or _only_sku(session, link.product_id)
        if link.sku_id is None and sku_id is not None:
            sku = session.get(Sku, sku_id)
            if sku is None or sku.product_id != link.product_id:
                raise Invalid("guides.sku_unknown", f"SKU {sku_id} is not a SKU of this product.", field="sku_id")
        source = Source(SourceType.GUIDE, {"guide_id": guide.id, "link_id": link.id, "brand_id": guide.brand_id,
                                           "opened_at": now.isoformat()})  # fmt: skip
        line_id = cart.add_line(session, user_id=actor.user_id, sku_id=chosen, quantity=quantity, source=source)
    session.flush()
    return Opened(link, visit, outcome, line_id, source)


def _only_sku(session: Session, product_id: int) -> int:
    skus = list(session.scalars(sa.select(Sku.id).where(Sku.product_id == product_id, Sku.status == "active").limit(2)))
    if len(skus) != 1:
        raise Invalid("guides.sku_required", "Choose a SKU of this product.", field="sku_id")
    return skus[0]


def _invalid() -> Invalid:
    return Invalid("guides.link_invalid", "This guide link is not valid.", field="token")


def why(session: Session, *, actor: Actor, shopper_id: int, brand_id: int | None = None) -> list[BindingEvent]:
    """A shopper's binding history in a brand, oldest first, each event with its reason. A brand admin sees every
    event of the shopper in the brand; a guide the events about themselves (bindings, extensions, refusals, hand
    overs); another brand's guide nothing."""
    query = sa.select(BindingEvent).where(BindingEvent.shopper_id == shopper_id).order_by(BindingEvent.id)
    if actor.role == Role.GUIDE:
        guide = own_guide(session, actor)
        query = query.where(BindingEvent.brand_id == guide.brand_id, BindingEvent.guide_id == guide.id)
    else:
        brand = brand_id if brand_id is not None else actor.brand_id
        if brand is None:
            raise Invalid("guides.brand_required", "Name the brand.", field="brand_id")
        _brand(actor, brand)
        query = query.where(BindingEvent.brand_id == brand)
    return list(session.scalars(query))
