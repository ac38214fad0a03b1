"""The flash purchase fast path: a refusal touches no database row; idempotency records in Redis (and
the database row behind them); the bearer token checked inside the gate's script; the token cache kept
exact by the write path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.identity.models import User
from mall.orders.models import IdempotencyRecord, Order
from mall.promotions.flash_sale import services
from mall.promotions.flash_sale.admission import Once
from mall.promotions.flash_sale.models import FlashOrder
from tests.shop_helpers import Shop, answer_of
from workers.flash import gate

START = datetime(2026, 12, 12, 2, 0, tzinfo=UTC)
ME = "/api/v1/me"


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def sale(shop, client):
    """Live from START for an hour: quota 2, limit 1 per shopper."""
    clock.freeze(START - timedelta(minutes=5))
    brand = shop.brand()
    sku = shop.sku(brand, price=10000, stock=50)
    body = {"name": "Double 12", "starts_at": START.isoformat(), "ends_at": (START + timedelta(hours=1)).isoformat(),
            "items": [{"sku_id": sku, "flash_price": 3900, "quota": 2, "per_shopper_limit": 1}]}  # fmt: skip
    resp = client.post("/api/v1/admin/flash-sales", json=body, headers=shop.merchant(brand))
    assert resp.status_code == 201, resp.get_json()
    return {"id": resp.get_json()["id"], "item": resp.get_json()["items"][0]["id"], "sku": sku}


def buy(client, sale, headers, address, key=None, **body):
    return client.post(
        f"/api/v1/flash-sales/{sale['id']}/items/{sale['item']}/purchase",
        json={"address_id": address, **body},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def buyer(shop):
    headers = shop.shopper()
    return headers, shop.address(headers)


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


@pytest.fixture
def statements(app):
    """SQL statements run on the app's engine while the test's block runs."""
    seen = []

    def note(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", note)


def test_a_refusal_reads_nothing_from_the_database(app, shop, client, sale, statements):
    clock.freeze(START)
    me, address = buyer(shop)
    assert buy(client, sale, me, address).status_code == 201
    statements.clear()

    again = buy(client, sale, me, address)

    assert again.status_code == 409 and again.get_json()["code"] == "flash_sale.limit_reached"
    assert statements == []


def test_same_key_replays_the_order_and_another_body_is_422(app, shop, client, sale):
    clock.freeze(START)
    me, address = buyer(shop)
    key = uuid.uuid4().hex
    first = buy(client, sale, me, address, key)
    assert first.status_code == 201

    again = buy(client, sale, me, address, key)
    other = buy(client, sale, me, address, key, quantity=2)

    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/api/v1/orders/{first.get_json()['id']}", headers=me).get_json() == first.get_json()
    with app.app_context():
        record = db.session.scalar(sa.select(IdempotencyRecord).filter_by(key=key))
        assert (record.status_code, record.response) == (201, first.get_json())
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency.key_reused"
    assert count(app, Order) == 1 and count(app, IdempotencyRecord, IdempotencyRecord.key == key) == 1


def test_a_key_is_replayed_from_the_database_once_redis_lost_it(app, shop, client, sale, settings):
    from workers.connection import get_redis

    clock.freeze(START)
    me, address = buyer(shop)
    key = uuid.uuid4().hex
    first = buy(client, sale, me, address, key)
    get_redis(settings).flushdb()  # Redis restarted empty: counters, facts, keys and token cache gone

    again = buy(client, sale, me, address, key)

    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    with app.app_context():
        assert count(app, FlashOrder) == 1
        assert services.reconcile(db.session, gate(), item_id=sale["item"])["agree"] is True


def test_a_refused_key_may_be_used_again(shop, client, sale):
    me, address = buyer(shop)
    key = uuid.uuid4().hex
    early = buy(client, sale, me, address, key)
    assert early.status_code == 409 and early.get_json()["code"] == "flash_sale.not_started"
    clock.freeze(START)

    assert buy(client, sale, me, address, key).status_code == 201


def test_a_key_still_running_is_409_in_progress(app, shop, client, sale):
    clock.freeze(START)
    me, address = buyer(shop)
    user_id, key = shop.user_id(me), uuid.uuid4().hex
    with app.test_request_context(
        f"/api/v1/flash-sales/{sale['id']}/items/{sale['item']}/purchase", method="POST", json={"address_id": address}
    ):
        from api.idempotency import _request_hash

        once = Once("flash_sales.purchase", key, _request_hash())
    outcome, *_ = gate().admit(
        item_id=sale["item"],
        sale_id=sale["id"],
        user_id=user_id,
        quantity=1,
        now_ms=int(START.timestamp() * 1000),
        once=once,
    )  # a twin admitted, not yet committed
    assert outcome == "admitted"

    resp = buy(client, sale, me, address, key)

    assert resp.status_code == 409 and resp.get_json()["code"] == "idempotency.in_progress"


def test_an_unknown_address_gives_the_unit_and_the_key_back(app, shop, client, sale):
    clock.freeze(START)
    me, _ = buyer(shop)
    _, someone_elses = buyer(shop)
    key = uuid.uuid4().hex

    resp = buy(client, sale, me, someone_elses, key)

    assert resp.status_code == 404 and resp.get_json()["code"] == "address.not_found"
    assert gate().counters(sale["item"]) == (2, {})
    assert buy(client, sale, me, shop.address(me), key).status_code == 201  # a corrected retry may reuse the key


def test_an_unknown_item_or_another_sales_item_is_404(shop, client, sale):
    clock.freeze(START)
    me, address = buyer(shop)
    for path in (f"/api/v1/flash-sales/{sale['id']}/items/999999/purchase",
                 f"/api/v1/flash-sales/{sale['id'] + 1}/items/{sale['item']}/purchase"):  # fmt: skip
        resp = client.post(path, json={"address_id": address}, headers={**me, "Idempotency-Key": uuid.uuid4().hex})
        assert resp.status_code == 404 and resp.get_json()["code"] == "flash_sale.item_not_found"


def test_a_revoked_token_cannot_buy_even_once_cached(app, shop, client, sale):
    clock.freeze(START)
    me, address = buyer(shop)
    assert client.get(ME, headers=me).status_code == 200  # the token's state is cached now
    assert client.post("/api/v1/auth/logout-all", headers=me).status_code == 204

    resp = buy(client, sale, me, address)

    assert resp.status_code == 401 and resp.get_json()["code"] == "auth.token_revoked"
    assert gate().counters(sale["item"]) == (2, {})


@pytest.mark.parametrize("revocation", ["logout", "disable"])
def test_one_logged_out_token_and_a_disabled_user_are_refused_on_the_fast_path_at_once(app, shop, client, sale, login,
                                                                                       flask_requests, revocation):  # fmt: skip
    """Sold out: a refusal the fast path answers in front of Flask for a good token. A token logged out (its jti
    denied) or whose user an admin disabled must not get it: the gate's guard sends it to Flask, which says 401."""
    clock.freeze(START)
    for _ in range(2):
        assert buy(client, sale, *buyer(shop)).status_code == 201
    me, address = buyer(shop)
    other_device = shop.login("shopper", name=client.get(ME, headers=me).get_json()["display_name"])
    flask_requests.clear()
    assert buy(client, sale, me, address).status_code == 409 and flask_requests == []  # answered in front
    if revocation == "logout":
        assert client.post("/api/v1/auth/logout", headers=me).status_code == 204
    else:
        user_id = shop.user_id(me)
        assert client.post(f"/api/v1/admin/users/{user_id}/disable", headers=login("platform_admin")).status_code == 200
    flask_requests.clear()

    resp = buy(client, sale, me, address)

    assert resp.status_code == 401 and resp.get_json()["code"] == "auth.token_revoked"
    assert flask_requests == [1]  # not answered in front of Flask
    assert gate().counters(sale["item"])[0] == 0
    flask_requests.clear()
    still = buy(client, sale, other_device, address)
    if revocation == "logout":  # the same user's other login is untouched: refused as sold out, in front of Flask
        assert still.status_code == 409 and flask_requests == []
    else:
        assert still.status_code == 401 and flask_requests == [1]


def test_a_token_is_checked_before_the_body_and_the_sale(shop, client, sale):
    headers = {"Authorization": "Bearer not-a-token", "Idempotency-Key": uuid.uuid4().hex}
    resp = client.post(f"/api/v1/flash-sales/{sale['id']}/items/{sale['item']}/purchase", json={}, headers=headers)
    assert resp.status_code == 401 and resp.get_json()["code"] == "auth.token_invalid"
    merchant = shop.merchant(shop.brand())
    resp = buy(client, sale, merchant, 1)
    assert resp.status_code == 403 and resp.get_json()["code"] == "auth.role_forbidden"


@pytest.mark.parametrize("change", ["status", "role", "delete"])
def test_a_user_changed_through_the_unit_of_work_loses_its_cached_token(app, client, login, change):
    headers = login("shopper", name="amy")
    assert client.get(ME, headers=headers).status_code == 200  # cached
    with app.app_context():
        user = db.session.scalar(sa.select(User).filter_by(display_name="amy"))
        if change == "delete":
            db.session.delete(user)
        else:
            setattr(user, change, "disabled" if change == "status" else "host")
        db.session.commit()

    resp = client.get(ME, headers=headers)

    assert resp.status_code == 401 and resp.get_json()["code"] == "auth.token_revoked"


def test_an_unrelated_change_keeps_the_cached_token(app, client, login):
    from workers.flash import token_cache

    headers = login("shopper", name="bob")
    assert client.get(ME, headers=headers).status_code == 200
    with app.app_context():
        user = db.session.scalar(sa.select(User).filter_by(display_name="bob"))
        user.member_level, user_id = 3, user.id
        db.session.commit()

    assert client.get(ME, headers=headers).status_code == 200
    assert token_cache().get(user_id) not in (None, b"-")  # still a cached state, not a tombstone


@pytest.fixture
def flask_requests(app):
    """Requests that reached Flask (the fast path answers the others in front of it)."""
    from flask import request_started

    seen = []

    def note(sender, **extra):
        seen.append(1)

    request_started.connect(note, app)
    yield seen
    request_started.disconnect(note, app)


def _answer(app, client, sale, headers, address, fast: bool, **body):
    app.config["FLASH_FAST_REFUSALS"] = fast
    try:
        resp = buy(client, sale, headers, address, **body)
    finally:
        app.config.pop("FLASH_FAST_REFUSALS", None)
    return answer_of(resp)


def test_refusals_answered_in_front_of_flask_are_the_views_own(app, shop, client, sale, flask_requests):
    me, address = buyer(shop)
    early = [_answer(app, client, sale, me, address, fast) for fast in (True, False)]
    clock.freeze(START)
    assert buy(client, sale, me, address).status_code == 201
    limit = [_answer(app, client, sale, me, address, fast) for fast in (True, False)]
    assert buy(client, sale, *buyer(shop)).status_code == 201
    other, other_address = buyer(shop)
    sold_out = [_answer(app, client, sale, other, other_address, fast) for fast in (True, False)]
    clock.freeze(START + timedelta(hours=1))
    late = [_answer(app, client, sale, other, other_address, fast) for fast in (True, False)]
    flask_requests.clear()

    for fast, slow in (early, limit, sold_out, late):
        assert fast == slow and fast[0] == 409
        assert {("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")} <= set(fast[1])  # ADR 0036
    assert [b'"code":"flash_sale.' + c in a[2] for a, c in zip((early[0], limit[0], sold_out[0], late[0]),
            (b"not_started", b"limit_reached", b"sold_out", b"ended"), strict=True)] == [True] * 4  # fmt: skip
    assert buy(client, sale, other, other_address).status_code == 409
    assert flask_requests == []  # answered in front of Flask


def test_a_refusal_naming_coupons_and_a_live_link_is_answered_in_front_of_flask_too(app, shop, client, sale,
                                                                                     flask_requests):  # fmt: skip
    from tests.api.test_cart import live_token

    clock.freeze(START)
    for _ in range(2):
        assert buy(client, sale, *buyer(shop)).status_code == 201
    me, address = buyer(shop)
    extra = {"coupon_ids": [7], "source_token": live_token()}
    flask_requests.clear()
    fast, slow = (_answer(app, client, sale, me, address, fast, **extra) for fast in (True, False))
    assert fast == slow and fast[0] == 409 and b"flash_sale.sold_out" in fast[2]
    assert flask_requests == [1]  # only the slow one


@pytest.mark.parametrize(
    "case",
    ["admitted", "replay", "bad-body", "unknown-field", "string-id", "revoked", "no-key", "form-body", "forged-link"],
)
def test_everything_but_a_refusal_goes_to_flask(app, shop, client, sale, flask_requests, case):
    clock.freeze(START)
    me, address = buyer(shop)
    key = uuid.uuid4().hex
    path = f"/api/v1/flash-sales/{sale['id']}/items/{sale['item']}/purchase"
    if case in ("replay", "revoked"):
        assert buy(client, sale, me, address, key).status_code == 201
    if case == "revoked":
        assert client.post("/api/v1/auth/logout-all", headers=me).status_code == 204
    flask_requests.clear()
    headers = {**me, "Idempotency-Key": key}
    if case == "no-key":
        del headers["Idempotency-Key"]
    body = {"bad-body": {"address_id": 0}, "unknown-field": {"address_id": address, "coupon": 1},
            "string-id": {"address_id": str(address)},
            "forged-link": {"address_id": address, "source_token": "not-signed"}}.get(case, {"address_id": address})  # fmt: skip
    if case == "form-body":
        resp = client.post(path, data={"address_id": address}, headers=headers)
    else:
        resp = client.post(path, json=body, headers=headers)

    expected = {"admitted": 201, "replay": 201, "bad-body": 422, "unknown-field": 422, "string-id": 422,
                "revoked": 401, "no-key": 400, "form-body": 422, "forged-link": 422}[case]  # fmt: skip
    assert resp.status_code == expected, resp.get_json()
    assert flask_requests == [1]


def test_the_database_guards_hold_when_redis_is_wrong(app, shop, client, sale):
    clock.freeze(START)
    first, first_address = buyer(shop)
    assert buy(client, sale, first, first_address).status_code == 201
    gate().load(item_id=sale["item"], remaining=2, buyers={})  # drifted: forgot the buyer

    again = buy(client, sale, first, first_address)
    assert again.status_code == 409 and again.get_json()["code"] == "flash_sale.limit_reached"
    assert buy(client, sale, *buyer(shop)).status_code == 201
    gate().load(item_id=sale["item"], remaining=5, buyers={})  # drifted: says units are left
    over = buy(client, sale, *buyer(shop))

    assert over.status_code == 409 and over.get_json()["code"] == "flash_sale.sold_out"
    assert count(app, FlashOrder) == 2 and count(app, Order) == 2
    assert gate().counters(sale["item"])[0] == 5  # each refused purchase gave its unit back to the gate
    assert shop.stock(sale["sku"]) == 48


def test_a_key_redis_forgot_while_its_counters_drifted_is_replayed_and_gives_its_unit_back(app, shop, client, sale):
    """The database's unique idempotency record is the last word: a second order for the key is rolled back."""
    clock.freeze(START)
    me, address = buyer(shop)
    key = uuid.uuid4().hex
    first = buy(client, sale, me, address, key)
    assert first.status_code == 201
    flash_gate = gate()
    with app.app_context():
        flash_gate.client.delete(*flash_gate.client.keys(f"flash:{{{sale['item']}}}:once:*"))
    flash_gate.load(item_id=sale["item"], remaining=2, buyers={})  # and forgot the buyer too

    again = buy(client, sale, me, address, key)

    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count(app, Order) == 1 and count(app, FlashOrder) == 1
    assert flash_gate.counters(sale["item"])[0] == 2  # the second admission's unit went back
    assert shop.stock(sale["sku"]) == 49
