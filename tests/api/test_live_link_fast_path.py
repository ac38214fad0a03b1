"""The cart-link open's fast path (api/live/link_fast_path.py; on PostgreSQL mall/live/one_statement_open.py)
against the plain path: the same links opened both ways, by two shoppers in the same state, give the same
answer and the same rows, for every kind of open and every refusal; and the fast path really serves the opens
it is sure of, while a refusal writes nothing before the plain path answers it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from api.live import link_fast_path as fast_path
from mall import clock
from mall.cart.models import Cart, CartLine
from mall.catalog import services as catalog
from mall.live.tracking import LiveCartAdd
from tests.api.test_live_links import _two_sku_product, link_for, open_link, sku_of
from tests.live_helpers import ROOMS, Live
from tests.shop_helpers import PLATFORM, Shop

SHARE = "/api/v1/live/links/share"
FAST = "LIVE_FAST_LINK_OPENS"


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def live(shop) -> Live:
    return Live(shop)


@pytest.fixture
def show(app, shop, live):
    brand = shop.brand()
    products = [live.product(brand, price=9900 + n) for n in range(2)]
    admin = shop.merchant(brand)
    host, host_id = live.host()
    room = live.room(admin, host_id, products)
    live.act(host, room["id"], "start")
    segment = live.act(host, room["id"], "pin", product_id=products[0]).get_json()
    clock.freeze(clock.now())  # both ways open at the same moment: the same `opened_at`
    return {"brand": brand, "products": products, "admin": admin, "host": host, "host_id": host_id, "room": room,
            "segment": segment}  # fmt: skip


class Pair:
    """Two shoppers brought to the same state; `open` opens a link for each, one way each, and compares."""

    def __init__(self, app, client, shop, *, with_carts: bool = True):
        self.app, self.client = app, client
        self.fast, self.plain = shop.shopper(), shop.shopper()
        self.ids = {"fast": shop.user_id(self.fast), "plain": shop.user_id(self.plain)}  # fills the token cache
        if with_carts:
            for who in (self.fast, self.plain):
                assert client.get("/api/v1/cart", headers=who).status_code == 200

    def open(self, token, plain_token=None, **extra):
        """(the fast way's response, whether the fast path answered it itself)"""
        answered = []
        real = fast_path.json_answer
        fast_path.json_answer = lambda *args: answered.append(args) or real(*args)
        try:
            fast = open_link(self.client, self.fast, token, **extra)
        finally:
            fast_path.json_answer = real
        self.app.config[FAST] = False
        try:
            plain = open_link(self.client, self.plain, plain_token or token, **extra)
        finally:
            self.app.config.pop(FAST)
        assert (fast.status_code, fast.mimetype) == (plain.status_code, plain.mimetype), (fast.json, plain.json)
        assert _answer(fast) == _answer(plain)
        edge = ("Cache-Control", "X-Content-Type-Options")  # ADR 0036
        assert [fast.headers[h] for h in edge] == [plain.headers[h] for h in edge] == ["no-store", "nosniff"]
        assert self.rows("fast") == self.rows("plain")
        assert fast.status_code == 200 or not answered  # a refusal is always the plain path's answer
        return fast, bool(answered)

    def rows(self, who: str) -> dict:
        """What an open writes: the cart's version and line count, its lines, the room's cart adds."""
        user_id = self.ids[who]
        with self.app.app_context():
            s = db.session
            cart = s.execute(sa.select(Cart.id, Cart.version, Cart.line_count).where(Cart.user_id == user_id)).first()
            lines = [] if cart is None else s.execute(
                sa.select(CartLine.sku_id, CartLine.quantity, CartLine.source).where(CartLine.cart_id == cart.id)
                .order_by(CartLine.sku_id)).all()  # fmt: skip
            adds = s.execute(
                sa.select(LiveCartAdd.room_id, LiveCartAdd.segment_id, LiveCartAdd.link_id, LiveCartAdd.sku_id,
                          LiveCartAdd.quantity, LiveCartAdd.created_at)
                .where(LiveCartAdd.user_id == user_id).order_by(LiveCartAdd.id)).all()  # fmt: skip
        return {"cart": None if cart is None else tuple(cart[1:]), "lines": [tuple(x) for x in lines],
                "adds": [tuple(x) for x in adds]}  # fmt: skip


def _answer(resp) -> dict:
    body = dict(resp.get_json())
    body.pop("line_id", None)  # each shopper's own line
    body.pop("instance", None)
    return body


def test_successful_opens_match_the_plain_path_and_take_one_statement_on_postgresql(app, client, shop, live, show):
    room, host, (a, b) = show["room"], show["host"], show["products"]
    pair = Pair(app, client, shop)
    link_a = link_for(client, host, room["id"], product_id=a)
    link_b = link_for(client, host, room["id"], product_id=b, sku_id=sku_of(app, b))

    opened, served = pair.open(link_a["token"], room_id=room["id"], quantity=2)
    assert opened.status_code == 200 and served
    assert opened.get_json()["source"]["segment_id"] == show["segment"]["id"]
    opened, served = pair.open(link_a["token"], quantity=3)  # merges into the line (quantity 5), a second cart add
    assert opened.status_code == 200 and served
    assert pair.rows("fast")["lines"][0][1] == 5 and len(pair.rows("fast")["adds"]) == 2
    opened, served = pair.open(link_a["token"], quantity=999)  # capped as the cart caps it
    assert opened.status_code == 200 and pair.rows("fast")["lines"][0][1] == 999
    opened, served = pair.open(link_b["token"], sku_id=sku_of(app, b))  # a SKU link, its SKU named again
    assert opened.status_code == 200 and served and pair.rows("fast")["cart"][1] == 2

    live.act(host, room["id"], "unpin")  # nothing on screen: no segment
    opened, _ = pair.open(link_b["token"])
    assert opened.get_json()["source"]["segment_id"] is None


def test_reshares_and_sku_choices_match_the_plain_path(app, client, shop, live, show):
    room, host = show["room"], show["host"]
    product, (m, large) = _two_sku_product(app, show["brand"])
    lineup = f"/api/v1/admin/live/rooms/{room['id']}/lineup"
    assert client.post(lineup, json={"product_id": product}, headers=show["admin"]).status_code == 201
    whole = link_for(client, host, room["id"], product_id=product)
    pair = Pair(app, client, shop)

    alice = shop.shopper()
    reshared = client.post(SHARE, json={"token": whole["token"]}, headers=alice).get_json()["token"]
    opened, served = pair.open(reshared, sku_id=large)
    assert opened.status_code == 200 and opened.get_json()["source"]["shared_by"] == shop.user_id(alice)
    assert served
    own = [client.post(SHARE, json={"token": whole["token"]}, headers=h).get_json()["token"]
           for h in (pair.fast, pair.plain)]  # fmt: skip
    opened, _ = pair.open(own[0], own[1], sku_id=m)  # one's own reshare is no share
    assert opened.status_code == 200 and opened.get_json()["source"]["shared_by"] is None

    for extra, code in (({}, "live.sku_required"), ({"sku_id": sku_of(app, show["products"][0])}, "live.sku_unknown")):
        refused, _ = pair.open(whole["token"], **extra)
        assert refused.get_json()["code"] == code


def test_every_refusal_writes_nothing_and_is_the_plain_paths_answer(app, client, shop, live, show):
    room, host, admin, (a, b) = show["room"], show["host"], show["admin"], show["products"]
    link = link_for(client, host, room["id"], product_id=a, expires_in=600)
    sku_link = link_for(client, host, room["id"], product_id=b, sku_id=sku_of(app, b))
    other_room = live.room(admin, show["host_id"], [a])
    pair = Pair(app, client, shop)
    payload, _, signature = link["token"].rpartition(".")

    cases = [
        (link["token"][:-2], {}, "live.link_invalid"),
        (payload + "." + signature[::-1], {}, "live.link_invalid"),
        (link["token"], {"room_id": other_room["id"]}, "live.link_other_room"),
        (sku_link["token"], {"sku_id": sku_of(app, a)}, "live.sku_not_in_link"),
    ]
    for token, extra, code in cases:
        refused, _ = pair.open(token, **extra)
        assert refused.get_json()["code"] == code
    with app.app_context():
        catalog.set_product_status(db.session, actor=PLATFORM, product_id=b, status="archived")
        db.session.commit()
    refused, _ = pair.open(sku_link["token"])
    assert refused.get_json()["code"] == "cart.sku_unavailable"

    clock.advance(timedelta(seconds=601))
    refused, _ = pair.open(link["token"])
    assert (refused.status_code, refused.get_json()["code"]) == (410, "live.link_expired")
    assert client.post(f"{ROOMS}/{other_room['id']}/cancel", headers=admin).status_code == 200
    cancelled = link_for(client, admin, room["id"], product_id=a)
    assert client.post(f"{ROOMS}/{room['id']}/cancel", headers=admin).status_code == 409  # live: end it instead
    live.act(host, room["id"], "end")
    opened, _ = pair.open(cancelled["token"])  # an ended room's link still adds, at the normal price
    assert opened.status_code == 200 and opened.get_json()["source"]["segment_id"] is None
    assert pair.rows("fast")["lines"] and pair.rows("fast")["adds"]


def test_a_full_cart_and_a_shopper_without_a_cart_get_the_plain_paths_answer(app, client, shop, live, show):
    room, host, a = show["room"], show["host"], show["products"][0]
    link = link_for(client, host, room["id"], product_id=a)
    fresh = Pair(app, client, shop, with_carts=False)
    assert fresh.rows("fast")["cart"] is None
    opened, _ = fresh.open(link["token"])  # the cart is created (on PostgreSQL by the plain path)
    assert opened.status_code == 200 and fresh.rows("fast")["cart"] == (2, 1)

    full = Pair(app, client, shop)
    with app.app_context():
        db.session.execute(sa.update(Cart).where(Cart.user_id.in_(list(full.ids.values()))).values(line_count=100))
        db.session.commit()
    refused, _ = full.open(link["token"])
    assert refused.get_json()["code"] == "cart.full"


@pytest.mark.parametrize("logout", ["logout-all", "logout"])
def test_a_revoked_token_is_refused_by_the_fast_path_too(app, client, shop, live, show, logout):
    """The token cache and the denylist are checked on every fast open: a shopper logged out everywhere, or whose
    token was logged out alone, cannot open a link."""
    room, host, (a, _) = show["room"], show["host"], show["products"]
    link = link_for(client, host, room["id"], product_id=a)
    pair = Pair(app, client, shop)
    assert client.post(f"/api/v1/auth/{logout}", headers=pair.fast).status_code == 204
    resp = open_link(client, pair.fast, link["token"])
    assert resp.status_code == 401 and resp.get_json()["code"] == "auth.token_revoked"
    assert pair.rows("fast")["lines"] == []
