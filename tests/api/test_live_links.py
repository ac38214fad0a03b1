"""Live cart links over HTTP: the host makes a signed, expiring link, a shopper opens it into the cart with the
room's LIVE source, viewers reshare it, and its QR code is a PNG of the mini-program path."""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from datetime import timedelta

import pytest
import segno
import sqlalchemy as sa

from api.extensions import db
from mall import attribution, clock
from mall.attribution import Source, SourceType
from mall.catalog import services as catalog
from mall.catalog import taxonomy
from mall.live.models import LiveLink, PinSegment
from tests.conftest import TEST_SECRET
from tests.live_helpers import ROOMS, Live
from tests.shop_helpers import PLATFORM, Shop

OPEN, SHARE = "/api/v1/live/links/open", "/api/v1/live/links/share"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def live(shop) -> Live:
    return Live(shop)


@pytest.fixture
def show(shop, live):
    """A brand with two products, its admin, a host and a scheduled room with both in its lineup."""
    brand = shop.brand()
    products = [live.product(brand, price=9900 + n) for n in range(2)]
    admin = shop.merchant(brand)
    host, host_id = live.host()
    room = live.room(admin, host_id, products)
    return {"brand": brand, "products": products, "admin": admin, "host": host, "host_id": host_id, "room": room}


def make_link(client, headers, room_id, **body):
    return client.post(f"/api/v1/live/rooms/{room_id}/links", json=body, headers=headers)


def link_for(client, headers, room_id, **body) -> dict:
    resp = make_link(client, headers, room_id, **body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def open_link(client, headers, token, **extra):
    return client.post(OPEN, json={"token": token, **extra}, headers=headers)


def cart_line(client, headers, sku_id: int) -> dict:
    lines = client.get("/api/v1/cart", headers=headers).get_json()["lines"]
    return next(line for line in lines if line["sku_id"] == sku_id)


def cart_lines(client, headers) -> list:
    return client.get("/api/v1/cart", headers=headers).get_json()["lines"]


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == code
    return resp.get_json()


def sku_of(app, product_id: int) -> int:
    from mall.catalog.models import Sku

    with app.app_context():
        return db.session.scalar(sa.select(Sku.id).where(Sku.product_id == product_id))


def test_a_shopper_opens_the_hosts_link_into_the_cart_with_the_live_source(app, client, shop, live, show):
    room, host, (a, b) = show["room"], show["host"], show["products"]
    live.act(host, room["id"], "start")
    live.act(host, room["id"], "pin", product_id=b)
    segment = live.act(host, room["id"], "pin", product_id=a).get_json()

    link = link_for(client, host, room["id"], product_id=a)
    assert (link["room_id"], link["product_id"], link["created_by"]) == (room["id"], a, show["host_id"])
    assert link["path"] == f"pages/live/link?t={link['token']}"
    assert link["qr_url"].startswith("/api/v1/live/links/qr.png?t=")
    with app.app_context():
        row = db.session.get(LiveLink, link["id"])
        assert row.expires_at - row.created_at == timedelta(days=7) and row.item_id == segment["item_id"]

    me = shop.shopper()
    now = clock.now()
    clock.freeze(now)
    opened = open_link(client, me, link["token"], room_id=room["id"], quantity=2)
    assert opened.status_code == 200, opened.get_json()
    sku = sku_of(app, a)
    source = {"type": "live", "room_id": room["id"], "host_id": show["host_id"], "segment_id": segment["id"],
              "link_id": link["id"], "shared_by": None, "opened_at": now.isoformat()}  # fmt: skip
    assert opened.get_json() == {"line_id": opened.get_json()["line_id"], "link_id": link["id"], "room_id": room["id"],
                                 "product_id": a, "sku_id": sku, "source": source}  # fmt: skip
    line = cart_line(client, me, sku)
    assert (line["id"], line["quantity"], line["source"]) == (opened.get_json()["line_id"], 2, source)
    assert line["unit_price"] == 9900

    # The brand's admin makes links too, and lists the room's links (newest first, tokens re-rendered).
    other = link_for(client, show["admin"], room["id"], product_id=b, expires_in=3600)
    listed = client.get(f"/api/v1/live/rooms/{room['id']}/links", headers=host).get_json()
    assert [(x["id"], x["token"]) for x in listed] == [(other["id"], other["token"]), (link["id"], link["token"])]


def test_re_adding_the_sku_without_a_link_keeps_the_links_live_source(app, client, shop, live, show):
    room, host, (a, _) = show["room"], show["host"], show["products"]
    live.act(host, room["id"], "start")
    link = link_for(client, host, room["id"], product_id=a)
    me, sku = shop.shopper(), sku_of(app, a)
    opened = open_link(client, me, link["token"]).get_json()

    shop.add(me, sku, 3)  # the same SKU, no link: organic

    line = cart_line(client, me, sku)
    assert line["quantity"] == 4 and line["source"] == opened["source"]
    assert line["source"]["link_id"] == link["id"] and line["source"]["segment_id"] is None  # nothing pinned


def test_the_links_source_reaches_the_order_line(app, client, shop, live, show):
    room, host, (a, _) = show["room"], show["host"], show["products"]
    live.act(host, room["id"], "start")
    segment = live.act(host, room["id"], "pin", product_id=a).get_json()
    link = link_for(client, host, room["id"], product_id=a)
    me = shop.shopper()
    line_id = open_link(client, me, link["token"]).get_json()["line_id"]

    placed = shop.place(me, [line_id], shop.address(me))
    assert placed.status_code == 201, placed.get_json()
    from mall.orders.models import OrderLine

    with app.app_context():
        source = db.session.scalar(sa.select(OrderLine.source))
    assert (source["type"], source["room_id"], source["segment_id"], source["link_id"]) == (
        "live", room["id"], segment["id"], link["id"])  # fmt: skip


def test_a_link_of_an_ended_room_still_adds_at_the_normal_price_without_a_segment(app, client, shop, live, show):
    room, host, (a, _) = show["room"], show["host"], show["products"]
    live.act(host, room["id"], "start")
    live.act(host, room["id"], "pin", product_id=a)
    link = link_for(client, host, room["id"], product_id=a)
    assert live.act(host, room["id"], "end").status_code == 200

    me = shop.shopper()
    opened = open_link(client, me, link["token"], room_id=room["id"])
    assert opened.status_code == 200, opened.get_json()
    assert opened.get_json()["source"]["room_id"] == room["id"] and opened.get_json()["source"]["segment_id"] is None
    assert cart_line(client, me, sku_of(app, a))["unit_price"] == 9900
    # and a link can still be made for the replay's viewers
    assert make_link(client, host, room["id"], product_id=a).status_code == 201


def test_tampered_foreign_other_room_and_expired_links_are_refused_and_add_nothing(app, client, shop, live, show):
    room, host, (a, _) = show["room"], show["host"], show["products"]
    link = link_for(client, host, room["id"], product_id=a, expires_in=600)
    other_room = live.room(show["admin"], show["host_id"], [a])
    me = shop.shopper()

    payload, _, signature = link["token"].rpartition(".")
    forged = payload.replace(payload[1], "A" if payload[1] != "A" else "B", 1) + "." + signature
    assert_problem(open_link(client, me, forged), 422, "live.link_invalid")
    assert_problem(open_link(client, me, link["token"][:-2]), 422, "live.link_invalid")
    assert_problem(open_link(client, me, "not-a-token"), 422, "live.link_invalid")
    # a cart-source token (signed with another salt) is not a link token
    source_token = attribution.sign(Source(SourceType.LIVE, {"room_id": room["id"], "host_id": 1}), secret=TEST_SECRET)
    assert_problem(open_link(client, me, source_token), 422, "live.link_invalid")
    wrong_room = assert_problem(open_link(client, me, link["token"], room_id=other_room["id"]), 422,
                                "live.link_other_room")  # fmt: skip
    assert wrong_room["link_room_id"] == room["id"]

    clock.advance(timedelta(seconds=601))
    expired = assert_problem(open_link(client, me, link["token"], room_id=room["id"]), 410, "live.link_expired")
    assert expired["status"] == 410
    assert_problem(client.post(SHARE, json={"token": link["token"]}, headers=me), 410, "live.link_expired")
    assert_problem(client.get(link["qr_url"]), 410, "live.link_expired")
    assert cart_lines(client, me) == []


def test_a_link_of_a_cancelled_room_is_not_found(client, shop, live, show):
    room, admin, (a, _) = show["room"], show["admin"], show["products"]
    link = link_for(client, admin, room["id"], product_id=a)
    assert client.post(f"{ROOMS}/{room['id']}/cancel", headers=admin).status_code == 200
    assert_problem(open_link(client, shop.shopper(), link["token"]), 404, "live.room_not_found")
    assert_problem(make_link(client, admin, room["id"], product_id=a), 404, "live.room_not_found")


def test_a_reshare_chain_records_who_shared_and_keeps_room_host_and_expiry(app, client, shop, live, show):
    room, host, (a, _) = show["room"], show["host"], show["products"]
    live.act(host, room["id"], "start")
    link = link_for(client, host, room["id"], product_id=a)
    alice, bob, carol = shop.shopper(), shop.shopper(), shop.shopper()
    alice_id, bob_id = shop.user_id(alice), shop.user_id(bob)

    from_alice = client.post(SHARE, json={"token": link["token"]}, headers=alice).get_json()
    assert from_alice["token"] != link["token"] and from_alice["link_id"] == link["id"]
    assert from_alice["path"] == f"pages/live/link?t={from_alice['token']}"
    assert from_alice["expires_at"] == link["expires_at"] and from_alice["room_id"] == room["id"]

    by_bob = open_link(client, bob, from_alice["token"], room_id=room["id"]).get_json()["source"]
    assert (by_bob["room_id"], by_bob["host_id"], by_bob["link_id"], by_bob["shared_by"]) == (
        room["id"], show["host_id"], link["id"], alice_id)  # fmt: skip

    from_bob = client.post(SHARE, json={"token": from_alice["token"]}, headers=bob).get_json()
    by_carol = open_link(client, carol, from_bob["token"]).get_json()["source"]
    assert (by_carol["room_id"], by_carol["host_id"], by_carol["shared_by"]) == (room["id"], show["host_id"], bob_id)

    # Opening one's own reshare is not a share; a reshare token tampered to name someone else is refused.
    assert open_link(client, alice, from_alice["token"]).get_json()["source"]["shared_by"] is None
    payload, _, signature = from_bob["token"].rpartition(".")
    assert_problem(open_link(client, carol, payload + "." + signature[::-1]), 422, "live.link_invalid")


def test_the_qr_code_is_a_png_of_the_mini_program_path(client, shop, live, show):
    room, host, (a, _) = show["room"], show["host"], show["products"]
    link = link_for(client, host, room["id"], product_id=a)

    resp = client.get(link["qr_url"])  # no sign-in: whoever holds the token may show its code

    assert resp.status_code == 200 and resp.content_type == "image/png"
    png = resp.data
    assert png.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    expected = segno.make(link["path"], error="m")
    modules = expected.symbol_size(scale=1, border=4)[0]
    assert width == height == modules * 8
    idat = b"".join(_chunks(png, b"IDAT"))
    assert len(zlib.decompress(idat)) > 0  # a well-formed image stream
    rendered = io.BytesIO()
    expected.save(rendered, kind="png", scale=8, border=4)
    assert png == rendered.getvalue()  # the code of exactly this path
    assert struct.unpack(">II", client.get(link["qr_url"] + "&scale=2").data[16:24]) == (modules * 2, modules * 2)

    assert_problem(client.get("/api/v1/live/links/qr.png?t=hello"), 422, "live.link_invalid")
    assert client.get("/api/v1/live/links/qr.png").status_code == 422


def _chunks(png: bytes, kind: bytes):
    at = len(PNG_MAGIC)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        if png[at + 4 : at + 8] == kind:
            yield png[at + 8 : at + 8 + length]
        at += 12 + length


def test_only_the_rooms_host_or_its_brands_admin_makes_links(app, client, shop, live, show):
    room, (a, b) = show["room"], show["products"]
    other_brand = shop.brand()
    other_host, _ = live.host()
    path = f"/api/v1/live/rooms/{room['id']}/links"

    assert_problem(make_link(client, shop.merchant(other_brand), room["id"], product_id=a), 403, "live.not_your_room")
    assert_problem(make_link(client, other_host, room["id"], product_id=a), 403, "live.not_your_room")
    assert_problem(client.get(path, headers=other_host), 403, "live.not_your_room")
    assert_problem(make_link(client, shop.shopper(), room["id"], product_id=a), 403, "auth.role_forbidden")
    assert_problem(make_link(client, show["host"], 10**6, product_id=a), 404, "live.room_not_found")
    outside = live.product(show["brand"])
    assert_problem(make_link(client, show["host"], room["id"], product_id=outside), 422, "live.not_in_lineup")
    assert_problem(make_link(client, show["host"], room["id"], product_id=a, sku_id=sku_of(app, b)), 422,
                   "live.sku_unknown")  # fmt: skip
    assert make_link(client, show["host"], room["id"], product_id=a, expires_in=10).status_code == 422
    assert make_link(client, show["host"], room["id"], item_id=1, product_id=a).status_code == 422
    assert_problem(client.post(OPEN, json={"token": "x"}, headers=show["host"]), 403, "auth.role_forbidden")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LiveLink)) == 0


def _two_sku_product(app, brand_id: int) -> tuple[int, list[int]]:
    with app.app_context():
        category = taxonomy.create_category(db.session, actor=PLATFORM, name=f"c-{uuid.uuid4().hex[:6]}")
        product = catalog.create_product(
            db.session, actor=PLATFORM, brand_id=brand_id, currency="CNY", category_id=category.id,
            title="Two sizes", tier="profit",
            skus=[{"specs": {"size": s}, "price": 5000, "list_price": 5000, "stock": 10} for s in ("M", "L")],
        )  # fmt: skip
        catalog.set_product_status(db.session, actor=PLATFORM, product_id=product.id, status="active")
        db.session.commit()
        return product.id, [s.id for s in product.skus]


def test_a_product_link_asks_for_a_sku_when_the_product_has_several(app, client, shop, live, show):
    product, (m, large) = _two_sku_product(app, show["brand"])
    room = live.room(show["admin"], show["host_id"], [product])
    whole = link_for(client, show["host"], room["id"], product_id=product)
    only_l = link_for(client, show["host"], room["id"], product_id=product, sku_id=large)
    assert (whole["sku_id"], only_l["sku_id"]) == (None, large)
    me = shop.shopper()

    assert_problem(open_link(client, me, whole["token"]), 422, "live.sku_required")
    assert_problem(open_link(client, me, whole["token"], sku_id=sku_of(app, show["products"][0])), 422,
                   "live.sku_unknown")  # fmt: skip
    assert open_link(client, me, whole["token"], sku_id=m).get_json()["sku_id"] == m
    assert_problem(open_link(client, me, only_l["token"], sku_id=m), 422, "live.sku_not_in_link")
    assert open_link(client, me, only_l["token"]).get_json()["sku_id"] == large
    assert {line["sku_id"] for line in cart_lines(client, me)} == {m, large}


def test_a_linked_lineup_item_cannot_be_removed(app, client, live, show):
    room, (a, b) = show["room"], show["products"]
    link = link_for(client, show["host"], room["id"], product_id=a)
    resp = client.delete(f"{ROOMS}/{room['id']}/lineup/{link['item_id']}", headers=show["admin"])
    assert_problem(resp, 409, "live.item_has_links")
    item_b = next(i["id"] for i in room["lineup"] if i["product_id"] == b)
    assert client.delete(f"{ROOMS}/{room['id']}/lineup/{item_b}", headers=show["admin"]).status_code == 204
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PinSegment)) == 0


def test_opening_a_link_reads_the_link_once_and_writes_the_line_and_its_cart_add_only(app, client, shop, live, show):
    """The plain path's cost: the link is read once (not again after the commit), and the writes are the cart
    line, the cart's touch and the room's cart add (no event repeating that row). (The fast path's own cost:
    tests/api/test_live_link_fast_path.py.)"""
    app.config["LIVE_FAST_LINK_OPENS"] = False
    room, host, (a, _) = show["room"], show["host"], show["products"]
    live.act(host, room["id"], "start")
    link = link_for(client, host, room["id"], product_id=a)
    me = shop.shopper()
    assert open_link(client, me, link["token"]).status_code == 200  # the shopper's cart exists from here on
    seen = []

    def note(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()[:3]))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        assert open_link(client, me, link["token"], room_id=room["id"]).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    assert sum(s.startswith("SELECT live_links.id") for s in seen) == 1, seen
    assert not any(s.startswith("SELECT skus.status") for s in seen), seen  # read with the link
    writes = sorted(s for s in seen if s.split()[0] in ("INSERT", "UPDATE", "DELETE"))
    assert writes == ["INSERT INTO cart_lines", "INSERT INTO live_cart_adds", "UPDATE carts SET"], seen


def test_a_link_to_a_sku_or_product_taken_off_sale_is_refused_as_the_cart_refuses_it(app, client, shop, live, show):
    """The open reads whether the product and the link's SKU are on sale with the link (the cart does not read
    them again): a SKU archived, or its product, is refused as a plain cart add refuses it."""
    product, (m, large) = _two_sku_product(app, show["brand"])
    room = live.room(show["admin"], show["host_id"], [product])
    whole = link_for(client, show["host"], room["id"], product_id=product)
    only_l = link_for(client, show["host"], room["id"], product_id=product, sku_id=large)
    me = shop.shopper()
    with app.app_context():
        catalog.update_sku(db.session, actor=PLATFORM, sku_id=large, status="archived")
        db.session.commit()
    assert_problem(open_link(client, me, only_l["token"]), 422, "cart.sku_unavailable")
    assert_problem(open_link(client, me, whole["token"], sku_id=large), 422, "cart.sku_unavailable")
    assert open_link(client, me, whole["token"]).get_json()["sku_id"] == m  # the only SKU left on sale
    with app.app_context():
        catalog.set_product_status(db.session, actor=PLATFORM, product_id=product, status="archived")
        db.session.commit()
    assert_problem(open_link(client, me, whole["token"], sku_id=m), 422, "cart.sku_unavailable")
    assert_problem(open_link(client, me, whole["token"]), 422, "cart.sku_unavailable")
    assert [line["sku_id"] for line in cart_lines(client, me)] == [m]
