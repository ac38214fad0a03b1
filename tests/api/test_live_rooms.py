"""Live rooms over HTTP: scheduling and the lineup, a host running a show, who may pin, the viewer's ETag
read and the replay index."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.catalog.models import Product, Sku
from mall.live.models import PinSegment
from tests.live_helpers import ROOMS, Live
from tests.shop_helpers import Shop, answer_of


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def live(shop) -> Live:
    return Live(shop)


@pytest.fixture
def show(shop, live):
    """A brand with three products, its admin, a host and a scheduled room with the three in its lineup."""
    brand = shop.brand()
    products = [live.product(brand, price=9900 + n) for n in range(3)]
    admin = shop.merchant(brand)
    host, host_id = live.host()
    room = live.room(admin, host_id, products)
    return {"brand": brand, "products": products, "admin": admin, "host": host, "host_id": host_id, "room": room}


def segments(app, room_id: int) -> list[PinSegment]:
    with app.app_context():
        query = (
            sa.select(PinSegment).where(PinSegment.room_id == room_id).order_by(PinSegment.started_at, PinSegment.id)
        )
        return list(db.session.scalars(query))


def test_a_host_runs_a_show_schedule_live_pin_a_pin_b_end(app, live, show):
    room, host, (a, b, _) = show["room"], show["host"], show["products"]
    assert room["status"] == "scheduled" and [i["product_id"] for i in room["lineup"]] == show["products"]
    t0 = clock.now()
    clock.freeze(t0)

    assert live.act(host, room["id"], "end").get_json()["code"] == "live.room_not_live"
    assert live.act(host, room["id"], "start").get_json()["status"] == "live"
    assert live.act(host, room["id"], "start").get_json()["code"] == "live.room_not_scheduled"
    first = live.act(host, room["id"], "pin", product_id=a, stream_offset_ms=1000)
    assert first.status_code == 200 and first.get_json()["product_id"] == a, first.get_json()
    clock.advance(timedelta(minutes=3))
    second = live.act(host, room["id"], "pin", product_id=b, stream_offset_ms=181000)
    assert second.status_code == 200 and second.get_json()["product_id"] == b
    clock.advance(timedelta(minutes=2))
    ended = live.act(host, room["id"], "end", stream_offset_ms=301000)
    assert ended.status_code == 200 and ended.get_json()["status"] == "ended"

    rows = segments(app, room["id"])
    assert [(s.product_id, s.start_offset_ms, s.end_offset_ms) for s in rows] == [(a, 1000, 181000),
                                                                                  (b, 181000, 301000)]  # fmt: skip
    assert rows[0].ended_at == rows[1].started_at == t0 + timedelta(minutes=3)
    assert rows[1].ended_at == t0 + timedelta(minutes=5)
    replay = live.client.get(f"/api/v1/live/rooms/{room['id']}/replay").get_json()
    assert [(s["product_id"], s["start_offset_ms"], s["end_offset_ms"]) for s in replay["segments"]] == [
        (a, 1000, 181000), (b, 181000, 301000)]  # fmt: skip
    assert replay["segments"][0]["title"]
    view = live.view(room["id"]).get_json()
    assert view["status"] == "ended" and view["pinned"] is None


def test_the_viewer_read_answers_304_on_its_etag_and_a_new_etag_after_a_pin(live, show):
    room, host, (a, b, _) = show["room"], show["host"], show["products"]
    live.act(host, room["id"], "start")
    live.act(host, room["id"], "pin", product_id=a)
    first = live.view(room["id"])
    assert first.status_code == 200 and first.headers["ETag"]
    body = first.get_json()
    assert body["status"] == "live" and body["pinned"]["item"]["product_id"] == a
    assert body["pinned"]["item"]["remaining"] == 10 and [i["product_id"] for i in body["lineup"]] == show["products"]

    again = live.view(room["id"], first.headers["ETag"])
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == first.headers["ETag"]

    live.act(host, room["id"], "pin", product_id=b)
    after = live.view(room["id"], first.headers["ETag"])
    assert after.status_code == 200 and after.headers["ETag"] != first.headers["ETag"]
    assert after.get_json()["pinned"]["item"]["product_id"] == b
    assert live.view(room["id"], after.headers["ETag"]).status_code == 304


@pytest.mark.parametrize("signed_in", [False, True])
def test_a_poll_answered_in_front_of_flask_has_the_views_headers(app, shop, live, show, signed_in):
    """nosniff always; the view's no-cache (with its ETag) for anyone, no-store once the poll carries a token."""
    room = show["room"]
    live.act(show["host"], room["id"], "start")
    assert live.view(room["id"]).status_code == 200  # rendered and cached: the fast path answers the next
    headers = shop.shopper() if signed_in else {}
    answers = []
    for fast in (True, False):
        app.config["LIVE_FAST_VIEWS"] = fast
        try:
            resp = live.client.get(f"/api/v1/live/rooms/{room['id']}", headers=headers)
        finally:
            app.config.pop("LIVE_FAST_VIEWS")
        answers.append(answer_of(resp))
    assert answers[0] == answers[1]
    got = dict(answers[0][1])
    assert (got["Cache-Control"], got["X-Content-Type-Options"]) == ("no-store" if signed_in else "no-cache", "nosniff")


def test_a_cached_poll_reads_nothing_from_the_database_and_a_render_reads_the_same_whatever_the_lineup(
    app, shop, live, show
):
    statements = []

    def count(*args):
        statements.append(args[2])

    room, admin = show["room"], show["admin"]
    live.act(show["host"], room["id"], "start")
    live.act(show["host"], room["id"], "pin", product_id=show["products"][1])  # rendered and cached
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            cached = live.view(room["id"])
            assert cached.status_code == 200
            assert statements == []
            from workers.connection import get_redis

            get_redis(app.extensions["mall.settings"]).flushdb()  # a miss: rendered from the database
            rendered = live.view(room["id"])
            assert (rendered.data, rendered.headers["ETag"]) == (cached.data, cached.headers["ETag"])
            three = len(statements)
            assert three == 3  # the room with its host, the lineup with prices and stock, the open segment
            for _ in range(5):
                live.client.post(f"{ROOMS}/{room['id']}/lineup", json={"product_id": live.product(show["brand"])},
                                 headers=admin)  # fmt: skip
            get_redis(app.extensions["mall.settings"]).flushdb()
            statements.clear()
            assert len(live.view(room["id"]).get_json()["lineup"]) == 8
            assert len(statements) == three
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)


def test_another_brands_host_or_admin_a_shopper_and_an_unassigned_host_cannot_pin(shop, live, show):
    room, a = show["room"], show["products"][0]
    live.act(show["host"], room["id"], "start")
    other_brand = shop.brand()
    other_host, _ = live.host()
    refusals = {
        "shopper": live.act(shop.shopper(), room["id"], "pin", product_id=a),
        "other host": live.act(other_host, room["id"], "pin", product_id=a),
        "other brand's admin": live.act(shop.merchant(other_brand), room["id"], "pin", product_id=a),
        "other brand's host": live.act(
            shop.login("host", name="h-b", brand_id=other_brand), room["id"], "pin", product_id=a
        ),  # fmt: skip
    }
    assert {who: r.status_code for who, r in refusals.items()} == {who: 403 for who in refusals}
    assert refusals["other host"].get_json()["code"] == "live.not_your_room"
    assert live.view(room["id"]).get_json()["pinned"] is None
    assert live.act(show["admin"], room["id"], "pin", product_id=a).status_code == 200  # the brand's admin may


def test_pinning_off_shelf_out_of_stock_or_outside_the_lineup_is_refused_with_a_reason(app, shop, live, show):
    room, host, (a, b, c) = show["room"], show["host"], show["products"]
    assert live.act(host, room["id"], "pin", product_id=a).get_json()["code"] == "live.room_not_live"
    live.act(host, room["id"], "start")
    stranger = live.product(show["brand"])
    with app.app_context():
        db.session.get(Product, b).status = "archived"
        db.session.scalars(sa.select(Sku).filter_by(product_id=c)).one().stock = 0
        db.session.commit()

    outside = live.act(host, room["id"], "pin", product_id=stranger)
    assert (outside.status_code, outside.get_json()["code"]) == (422, "live.not_in_lineup")
    off = live.act(host, room["id"], "pin", product_id=b)
    assert (off.status_code, off.get_json()["code"]) == (409, "live.product_off_shelf")
    empty = live.act(host, room["id"], "pin", product_id=c)
    assert (empty.status_code, empty.get_json()["code"]) == (409, "live.out_of_stock")
    assert segments(app, room["id"]) == []

    assert live.act(host, room["id"], "pin/next").get_json()["product_id"] == a
    nothing = live.act(host, room["id"], "pin/next")  # b and c cannot be pinned
    assert (nothing.status_code, nothing.get_json()["code"]) == (409, "live.no_next_item")
    assert live.act(host, room["id"], "unpin").status_code == 204
    assert live.view(room["id"]).get_json()["pinned"] is None
    assert [s.ended_at is not None for s in segments(app, room["id"])] == [True]


def test_brand_admins_manage_their_own_rooms_and_lineup_only(shop, live, show):
    room, admin, (a, _, _) = show["room"], show["admin"], show["products"]
    other_admin = shop.merchant(shop.brand())
    assert live.client.patch(f"{ROOMS}/{room['id']}", json={"title": "x"}, headers=other_admin).status_code == 403
    assert live.client.post(f"{ROOMS}/{room['id']}/cancel", headers=other_admin).status_code == 403
    other_product = live.product(shop.brand())
    added = live.client.post(f"{ROOMS}/{room['id']}/lineup", json={"product_id": other_product}, headers=admin)
    assert (added.status_code, added.get_json()["code"]) == (422, "live.product_unknown")
    twice = live.client.post(f"{ROOMS}/{room['id']}/lineup", json={"product_id": a}, headers=admin)
    assert (twice.status_code, twice.get_json()["code"]) == (409, "live.item_duplicate")
    dear = live.client.post(f"{ROOMS}/{room['id']}/lineup", json={"product_id": live.product(show["brand"]),
                                                                   "live_price": 10**6}, headers=admin)  # fmt: skip
    assert (dear.status_code, dear.get_json()["code"]) == (422, "live.price_above_normal")

    item = room["lineup"][0]["id"]
    priced = live.client.patch(f"{ROOMS}/{room['id']}/lineup/{item}", json={"live_price": 7900, "live_quota": 3},
                               headers=admin)  # fmt: skip
    assert priced.status_code == 200 and priced.get_json()["currency"] == "CNY"
    lineup = live.view(room["id"]).get_json()["lineup"]
    assert (lineup[0]["live_price"], lineup[0]["remaining"], lineup[0]["price"]) == (7900, 3, 9900)

    not_host = live.client.post(ROOMS, json={"title": "t", "host_user_id": shop.user_id(shop.shopper()),
                                             "scheduled_start": clock.now().isoformat(),
                                             "scheduled_end": (clock.now() + timedelta(hours=1)).isoformat()},
                                headers=admin)  # fmt: skip
    assert (not_host.status_code, not_host.get_json()["code"]) == (422, "live.host_invalid")

    assert live.client.post(f"{ROOMS}/{room['id']}/cancel", headers=admin).get_json()["status"] == "cancelled"
    assert live.view(room["id"]).status_code == 404
    assert live.act(show["host"], room["id"], "start").status_code == 404


def test_a_host_lists_their_rooms_and_the_replay_waits_for_the_end(live, show):
    mine = live.client.get(ROOMS, headers=show["host"]).get_json()
    assert [r["id"] for r in mine] == [show["room"]["id"]]
    other, _ = live.host()
    assert live.client.get(ROOMS, headers=other).get_json() == []
    early = live.client.get(f"/api/v1/live/rooms/{show['room']['id']}/replay")
    assert (early.status_code, early.get_json()["code"]) == (409, "live.room_not_ended")


def test_a_render_from_before_a_pin_never_replaces_the_pins_view_in_the_cache(app, live, show):
    from mall.live.cache import TTL_MS, RoomCache
    from mall.live.models import LiveRoom
    from workers.connection import get_redis

    room, host, a = show["room"], show["host"], show["products"][0]
    live.act(host, room["id"], "start")
    with app.app_context():
        stale = db.session.get(LiveRoom, room["id"]).version  # a reader read the room here...
    pinned = live.act(host, room["id"], "pin", product_id=a)  # ...a pin committed and refreshed the cache...
    assert pinned.status_code == 200
    cache = RoomCache(get_redis(app.extensions["mall.settings"]))
    fresh = live.view(room["id"])
    cache._store(keys=[cache.key(room["id"])], args=[stale, f'{stale} "old"\n{{}}'.encode(), TTL_MS])  # ...it stores
    again = live.view(room["id"])
    assert again.headers["ETag"] == fresh.headers["ETag"] and again.get_json()["pinned"]["item"]["product_id"] == a


def test_an_item_once_pinned_stays_in_the_lineup_and_an_ended_room_no_longer_changes(live, show):
    room, admin, host, (a, b, _) = show["room"], show["admin"], show["host"], show["products"]
    pinned, spare = room["lineup"][0]["id"], room["lineup"][1]["id"]
    live.act(host, room["id"], "start")
    live.act(host, room["id"], "pin", product_id=a)

    kept = live.client.delete(f"{ROOMS}/{room['id']}/lineup/{pinned}", headers=admin)
    assert (kept.status_code, kept.get_json()["code"]) == (409, "live.item_was_pinned")
    assert live.client.delete(f"{ROOMS}/{room['id']}/lineup/{spare}", headers=admin).status_code == 204
    assert b not in [i["product_id"] for i in live.view(room["id"]).get_json()["lineup"]]

    live.act(host, room["id"], "end")
    late = live.client.patch(f"{ROOMS}/{room['id']}", json={"title": "Encore"}, headers=admin)
    assert (late.status_code, late.get_json()["code"]) == (409, "live.room_closed")
    assert live.act(host, room["id"], "pin", product_id=a).get_json()["code"] == "live.room_not_live"


def test_each_committed_change_is_pushed_to_the_lineup_sync_adapter(app, live, show):
    pushed = []

    class Recorder:
        def push(self, snapshot):
            pushed.append(snapshot)

    room, host, b = show["room"], show["host"], show["products"][1]
    app.extensions["mall.live_sync"] = Recorder()
    try:
        live.act(host, room["id"], "start")
        live.act(host, room["id"], "pin", product_id=b)
        live.act(host, room["id"], "pin", product_id="nope")  # refused (422): nothing committed, nothing pushed
    finally:
        app.extensions.pop("mall.live_sync")
    assert [(s.status, s.pinned_product_id) for s in pushed] == [("live", None), ("live", b)]
    assert [item[0] for item in pushed[-1].items] == show["products"]
