"""Live cart links: the room's host or brand admin makes them, viewers reshare and open them, and anyone with a
link's token gets its QR code."""

from __future__ import annotations

import io
from functools import cache, lru_cache

import segno
from flask import Response, url_for

from api.auth import MallBlueprint, current_actor
from api.extensions import db
from api.live.link_fast_path import FastOpens
from api.live.link_schemas import (
    LinkOpenedSchema,
    LinkSchema,
    LinkTokenSchema,
    NewLinkSchema,
    OpenLinkSchema,
    QrArgs,
    SharedLinkSchema,
)
from api.settings import settings
from api.tx import commit, read_only
from mall.identity.roles import Role
from mall.live import links
from mall.live.models import LiveLink
from workers.flash import token_cache

blp = MallBlueprint("live_links", __name__, description="Live cart links and their QR codes")


@blp.record_once
def _open_links_early(state) -> None:
    """Cart-link opens that will succeed are served in front of Flask (api/live/link_fast_path.py)."""
    app = state.app

    @cache
    def engine():
        with app.app_context():
            return db.engine

    app.wsgi_app = FastOpens(app, app.wsgi_app, prefix=state.url_prefix or "", engine=engine, token_cache=token_cache)


RUNNERS = (Role.HOST, Role.BRAND_ADMIN, Role.PLATFORM_ADMIN)


def _shared(link: LiveLink, token: str) -> dict:
    return {"link_id": link.id, "room_id": link.room_id, "token": token, "path": links.path(token),
            "qr_url": url_for("live_links.qr", t=token), "expires_at": link.expires_at}  # fmt: skip


def _with_token(link: LiveLink) -> dict:
    return {**{c.key: getattr(link, c.key) for c in LiveLink.__table__.columns},
            **_shared(link, links.token(link, secret=settings().secret_key))}  # fmt: skip


@blp.post("/live/rooms/<int:room_id>/links")
@blp.auth(*RUNNERS)
@blp.arguments(NewLinkSchema)
@blp.response(201, LinkSchema)
def create_link(body, room_id):
    """A signed cart link for a lineup item (or one SKU of it), expiring after `expires_in` seconds: its token,
    mini-program path and QR code. The room's host or its brand's admin (403 live.not_your_room); 422
    live.not_in_lineup / live.sku_not_in_lineup / live.sku_unknown."""
    link = links.create_link(db.session, actor=current_actor(), room_id=room_id, **body)
    commit()
    return _with_token(link)


@blp.get("/live/rooms/<int:room_id>/links")
@blp.auth(*RUNNERS)
@blp.response(200, LinkSchema(many=True))
def list_links(room_id):
    """The room's links, newest first."""
    read_only()
    return [_with_token(link) for link in links.room_links(db.session, actor=current_actor(), room_id=room_id)]


@blp.post("/live/links/share")
@blp.auth(Role.SHOPPER)
@blp.arguments(LinkTokenSchema)
@blp.response(200, SharedLinkSchema)
def share(body):
    """A viewer's own token for a link (the host's or another viewer's reshare): same room, host, product and
    expiry; whoever opens it is recorded as shared by this viewer."""
    read_only()
    link, token = links.share(db.session, actor=current_actor(), link_token=body["token"],
                              secret=settings().secret_key)  # fmt: skip
    return _shared(link, token)


@blp.post("/live/links/open")
@blp.auth(Role.SHOPPER)
@blp.arguments(OpenLinkSchema)
@blp.response(200, LinkOpenedSchema)
def open_link(body):
    """Add the link's product to the cart with the room's LIVE source (room, host, the pin segment open now,
    the link, the sharer of a reshared link, the time). 422 live.link_invalid (altered or not ours), 422
    live.link_other_room (`room_id` given and not the link's), 410 live.link_expired, 422 live.sku_required
    (a link to a product with several SKUs, and no `sku_id`). A link of an ended room still works."""
    opened = links.open_link(db.session, actor=current_actor(), link_token=body.pop("token"),
                             secret=settings().secret_key, **body)  # fmt: skip
    commit()
    return opened.view()


@blp.get("/live/links/qr.png")
@blp.arguments(QrArgs, location="query")
@blp.response(200, description="A PNG QR code of the link's mini-program path")
def qr(args):
    """The QR code of a link's (or reshare's) mini-program path, as PNG; only for a valid, unexpired token
    (not a QR generator for any text)."""
    read_only()
    links.resolve(db.session, args["t"], secret=settings().secret_key)
    return Response(_qr_png(args["t"], args["scale"]), content_type="image/png",
                    headers={"Cache-Control": "private, max-age=300"})  # fmt: skip


@lru_cache(maxsize=512)
def _qr_png(token: str, scale: int) -> bytes:
    """The PNG (a few kB) of a token's path. A token always gives the same image, and a room's QR code is fetched
    by many viewers at once: rendering it in pure Python costs tens of ms, so the last few hundred are kept."""
    out = io.BytesIO()
    segno.make(links.path(token), error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
