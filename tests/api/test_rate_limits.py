"""Rate limits (ADR 0033): each family answers 429 `rate.limited` with Retry-After once over its limit, the
limited request changes nothing, shoppers are counted per user and anonymous callers per client IP (here through
one trusted proxy: X-Forwarded-For), logins also per email; the flash purchase and link-open fast paths count in
the same windows. Runs on the embedded Redis (a unix socket) and on TEST_REDIS_URL alike."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import sqlalchemy as sa

from api import wsgi_fast
from api.extensions import db
from api.live import link_fast_path
from mall import clock
from mall.identity.models import User
from mall.live.tracking import LiveCartAdd
from mall.notifications.models import SubscriptionGrant
from mall.orders.models import IdempotencyRecord, Order
from mall.promotions.coupons.models import Coupon
from mall.promotions.flash_sale.models import FlashOrder
from mall.rate_limits import DEFAULTS
from tests.api.test_flash_sale_fast_path import START, buy, sale  # noqa: F401 (sale: a fixture)
from tests.api.test_live_links import link_for, open_link, sku_of
from tests.coupon_helpers import Coupons
from tests.live_helpers import Live
from tests.shop_helpers import Shop
from workers.flash import gate

ROOMY = {family: "1000/minute" for family in DEFAULTS}  # the set-up's own requests never reach a limit
PASSWORD, WECHAT = "/api/v1/auth/password", "/api/v1/auth/wechat"


@pytest.fixture(scope="module")
def app(app):
    """The session's app again (same database and Redis), with rate limits on, behind one trusted proxy."""
    from api import create_app

    limited = create_app(dataclasses.replace(app.extensions["mall.settings"], rate_limits_on=True, proxy_hops=1,
                                             rate_limits=ROOMY))  # fmt: skip
    yield limited
    with limited.app_context():
        db.engine.dispose()


@pytest.fixture
def limit(app):
    """limit(claims="2/minute"): those families' limits for this test (the others stay roomy)."""
    base = app.extensions["mall.settings"]

    def set_limits(**families):
        app.extensions["mall.settings"] = dataclasses.replace(base, rate_limits=ROOMY | families)

    yield set_limits
    app.extensions["mall.settings"] = base


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def assert_limited(resp, seconds: int) -> dict:
    """A 429 in the problem shape, Retry-After in whole seconds within the window."""
    assert resp.status_code == 429, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["code"] == "rate.limited" and body["type"] == "urn:mall:problem:rate.limited"
    assert body["status"] == 429 and body["title"] == "Too Many Requests" and body["instance"] == resp.request.path
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= seconds
    assert f"retry in {retry_after} s" in body["detail"]
    return body


def same_but_seconds(resp) -> tuple:
    """A 429's body and headers with its seconds blanked (two answers a second apart differ only in those), less
    the X-Request-Id only Flask's answers carry (ADR 0035)."""
    seconds = resp.headers["Retry-After"]
    headers = {k: v for k, v in resp.headers.items() if k not in ("Retry-After", "Content-Length", "X-Request-Id")}
    return resp.get_data(as_text=True).replace(f"retry in {seconds} s", "retry in N s"), headers


def from_ip(address: str) -> dict:
    return {"X-Forwarded-For": address}


# ---- logins: per client IP, and password logins per email -------------------------------------------------


def test_wechat_logins_are_limited_per_client_ip_and_a_limited_one_does_not_reach_wechat(app, client, limit,
                                                                                          fake_wechat):  # fmt: skip
    limit(login_ip="2/minute")
    for n in range(3):
        fake_wechat.issue_code(f"c{n}", openid=f"openid-{n}")
    assert client.post(WECHAT, json={"code": "c0"}, headers=from_ip("203.0.113.7")).status_code == 200
    assert client.post(WECHAT, json={"code": "c1"}, headers=from_ip("203.0.113.7")).status_code == 200
    users = count(app, User)

    assert_limited(client.post(WECHAT, json={"code": "c2"}, headers=from_ip("203.0.113.7")), 60)

    assert count(app, User) == users  # nobody was created
    other_ip = client.post(WECHAT, json={"code": "c2"}, headers=from_ip("198.51.100.9"))
    assert other_ip.status_code == 200, other_ip.get_json()  # WeChat never saw the code: it still works


def test_password_logins_are_limited_per_email_whatever_the_ip(client, limit):
    limit(login_account="2/hour")
    wrong = {"email": "Ops@Example.com", "password": "guess"}
    for n in range(2):
        assert client.post(PASSWORD, json=wrong, headers=from_ip(f"203.0.113.{n}")).status_code == 401

    limited = client.post(PASSWORD, json=wrong | {"email": " ops@example.COM"}, headers=from_ip("203.0.113.50"))

    assert_limited(limited, 3600)
    other = client.post(PASSWORD, json=wrong | {"email": "else@example.com"}, headers=from_ip("203.0.113.50"))
    assert other.status_code == 401  # another account from the same address: its own count


def test_password_logins_are_limited_per_client_ip_across_emails(client, limit):
    limit(login_ip="2/minute")
    for n in range(2):
        body = {"email": f"user{n}@example.com", "password": "guess"}
        assert client.post(PASSWORD, json=body, headers=from_ip("192.0.2.1")).status_code == 401

    assert_limited(client.post(PASSWORD, json={"email": "x@example.com", "password": "g"}, headers=from_ip("192.0.2.1")),
                   60)  # fmt: skip


# ---- per shopper: claims, purchases, subscription grants, other writes ------------------------------------


def test_coupon_claims_are_limited_per_shopper_and_a_limited_claim_takes_nothing(app, client, shop, limit):
    coupons = Coupons(shop)
    template = coupons.template(per_shopper_limit=10, total_quantity=100)
    amy, ben = shop.shopper(), shop.shopper()
    limit(claims="2/minute")
    assert coupons.claim(amy, template).status_code == 201
    assert coupons.claim(amy, template).status_code == 201

    key = uuid.uuid4().hex
    assert_limited(coupons.claim(amy, template, key=key), 60)

    assert count(app, Coupon) == 2
    assert count(app, IdempotencyRecord, IdempotencyRecord.key == key) == 0  # the key can be used again later
    assert coupons.claim(ben, template).status_code == 201  # another shopper, same address: own count


def test_order_placement_is_limited_and_a_limited_one_places_nothing(app, client, shop, limit):
    brand = shop.brand()
    sku = shop.sku(brand, price=1000, stock=10)
    me = shop.shopper()
    address, line = shop.address(me), shop.add(me, sku)
    limit(purchases="1/minute")
    assert shop.place(me, [line], address).status_code == 201
    line = shop.add(me, sku)

    assert_limited(shop.place(me, [line], address), 60)

    assert count(app, Order) == 1 and shop.stock(sku) == 9
    join = client.post("/api/v1/groups/1/join", json={"address_id": address},
                       headers={**me, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert_limited(join, 60)  # a group-buy join spends the same budget (refused before the group is looked up)


def test_subscription_grants_are_limited(app, client, shop, limit):
    me = shop.shopper()
    limit(subscriptions="1/minute")
    grant = {"results": {"order.paid": "accept"}}
    assert client.post("/api/v1/notifications/subscriptions", json=grant, headers=me).status_code == 201

    assert_limited(client.post("/api/v1/notifications/subscriptions", json=grant, headers=me), 60)

    assert count(app, SubscriptionGrant) == 1


def test_other_shopper_writes_have_the_writes_limit_but_reads_and_staff_writes_do_not(app, client, shop, limit):
    brand = shop.brand()
    sku = shop.sku(brand, price=1000)
    me, admin = shop.shopper(), shop.merchant(brand)
    limit(writes="2/minute")
    shop.add(me, sku)
    shop.add(me, sku)

    assert_limited(client.post("/api/v1/cart/lines", json={"sku_id": sku, "quantity": 1}, headers=me), 60)

    assert client.get("/api/v1/cart", headers=me).get_json()["lines"][0]["quantity"] == 2
    for _ in range(3):
        assert client.get("/api/v1/cart", headers=me).status_code == 200
    for n in range(3):
        resp = client.post("/api/v1/admin/categories", json={"name": f"staff-{n}"}, headers=admin)
        assert resp.status_code != 429, resp.get_json()


# ---- the flash purchase fast path: the same window, counted in the gate's script ---------------------------


def test_flash_purchases_count_once_either_way_and_the_fast_path_answers_429(app, shop, sale, limit, monkeypatch):  # noqa: F811
    client, (me, rival) = shop.client, (shop.shopper(), shop.shopper())
    address, rival_address = shop.address(me), shop.address(rival)
    clock.freeze(START)
    limit(purchases="3/minute")
    answered = []  # the statuses the fast path sent itself
    real = wsgi_fast.json_answer
    monkeypatch.setattr(wsgi_fast, "json_answer", lambda *a, **k: answered.append(int(a[1][:3])) or real(*a, **k))

    assert buy(client, sale, me, address).status_code == 201  # admitted: the probe counted it, Flask did not
    assert buy(client, sale, me, address).status_code == 409 and answered == [409]  # a fast refusal: 2
    app.config["FLASH_FAST_REFUSALS"] = False
    try:
        assert buy(client, sale, me, address).status_code == 409  # Flask's refusal, flask-limiter counts: 3
        plain = buy(client, sale, me, address)  # the 4th, the plain way: flask-limiter refuses it
    finally:
        app.config.pop("FLASH_FAST_REFUSALS")
    fast = buy(client, sale, me, address)  # the 5th, the fast way: the gate's script refuses it

    assert answered == [409, 429]
    for resp in (plain, fast):
        assert_limited(resp, 60)
    assert same_but_seconds(fast) == same_but_seconds(plain)
    assert count(app, FlashOrder) == 1
    remaining, buyers = gate().counters(sale["item"])
    assert remaining == 1 and sum(buyers.values()) == 1  # the 429s took nothing
    assert buy(client, sale, rival, rival_address).status_code == 201  # the rival's own count


def test_flash_fast_path_counts_only_when_limits_are_on(app, client, shop, sale, limit):  # noqa: F811
    me = shop.shopper()
    address = shop.address(me)
    clock.freeze(START)
    limit(purchases="1/minute")
    assert buy(client, sale, me, address).status_code == 201
    assert_limited(buy(client, sale, me, address), 60)
    app.extensions["mall.limiter"].enabled = False
    app.extensions["mall.settings"] = dataclasses.replace(app.extensions["mall.settings"], rate_limits_on=False)
    try:
        assert buy(client, sale, me, address).status_code == 409  # the off-switch: the fast path's refusal again
    finally:
        app.extensions["mall.limiter"].enabled = True


# ---- link opens: the live fast path and the guide link share one window ------------------------------------


def test_live_link_opens_are_limited_in_the_fast_path_and_a_limited_open_adds_nothing(app, client, shop, limit,
                                                                                       monkeypatch):  # fmt: skip
    live = Live(shop)
    brand = shop.brand()
    product = live.product(brand)
    admin = shop.merchant(brand)
    host, host_id = live.host()
    room = live.room(admin, host_id, [product])
    live.act(host, room["id"], "start")
    link = link_for(client, host, room["id"], product_id=product)
    me = shop.shopper()
    shop.user_id(me)  # fills the token cache: the fast path serves this shopper
    assert client.get("/api/v1/cart", headers=me).status_code == 200
    limit(link_opens="2/minute")
    answered = []  # the statuses the fast path sent itself
    real = wsgi_fast.json_answer
    record = lambda *a, **k: answered.append(int(a[1][:3])) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(wsgi_fast, "json_answer", record)
    monkeypatch.setattr(link_fast_path, "json_answer", record)

    assert open_link(client, me, link["token"]).status_code == 200
    assert open_link(client, me, link["token"]).status_code == 200

    assert_limited(open_link(client, me, link["token"]), 60)

    assert answered == [200, 200, 429]  # all three answered by the fast path

    assert count(app, LiveCartAdd) == 2
    line = next(
        x for x in client.get("/api/v1/cart", headers=me).get_json()["lines"] if x["sku_id"] == sku_of(app, product)
    )
    assert line["quantity"] == 2
    guide_open = client.post("/api/v1/guide/links/open", json={"token": "whatever"}, headers=me)
    assert_limited(guide_open, 60)  # the guide's share links spend the same budget


# ---- settings, the document ---------------------------------------------------------------------------------


def test_the_document_lists_429_for_shopper_and_anonymous_writes_only(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    limited = {
        ("post", "/api/v1/auth/password"), ("post", "/api/v1/auth/wechat"), ("post", "/api/v1/coupons/{template_id}/claim"),
        ("post", "/api/v1/orders"), ("post", "/api/v1/flash-sales/{sale_id}/items/{item_id}/purchase"),
        ("post", "/api/v1/groups/{group_id}/join"), ("post", "/api/v1/live/links/open"),
        ("post", "/api/v1/guide/links/open"), ("post", "/api/v1/notifications/subscriptions"),
        ("post", "/api/v1/cart/lines"),
    }  # fmt: skip
    for method, path in limited:
        assert "429" in paths[path][method]["responses"], (method, path)
    not_limited = {("get", "/api/v1/cart"), ("post", "/api/v1/payments/stripe/webhook"),
                   ("post", "/api/v1/admin/flash-sales")}  # fmt: skip
    for method, path in not_limited:
        assert "429" not in paths[path][method]["responses"], (method, path)
    assert "x-mall-rate-limited" not in str(paths)
