"""Redis restarts in the middle of a flash sale and of a live show: everything Redis held is gone (keys,
loaded Lua scripts, every open connection). The sale goes on from the database's truth (no unit sold twice, no
order lost, the per-shopper limit kept) and the live room's viewers see the pinned product again.

The restart tests are `serial`: a restart flushes the server's script cache, which every xdist worker sharing a
real Redis uses. While Redis is down a request is a 503 problem, not a 500."""

from __future__ import annotations

import pytest
import redis
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.orders.models import Order
from mall.promotions.flash_sale import services
from mall.promotions.flash_sale.models import FlashOrder
from tests.api import test_flash_sales as flash_tests
from tests.api.test_flash_sales import START, buy, buyer
from tests.live_helpers import Live
from workers.connection import get_redis
from workers.flash import gate

shop, sale = flash_tests.shop, flash_tests.sale  # the flash sales' fixtures: a shop, a sale from START (quota 3)


def restart_redis(client) -> None:
    """What a restart of the server does to this test's Redis db: empty, no script loaded, connections cut."""
    db_number = client.connection_pool.connection_kwargs.get("db", 0)
    client.flushdb()
    client.script_flush()
    mine = [c["id"] for c in client.client_list() if int(c["db"]) == db_number]
    for client_id in mine:  # this one last: its own connection is cut too
        client.execute_command("CLIENT", "KILL", "ID", client_id)


@pytest.mark.serial
def test_a_redis_restart_mid_sale_neither_oversells_nor_loses_an_order_nor_forgets_a_buyer(app, shop, sale, settings):
    """Guards the flash-sale gate's rebuild from the database when its counters are missing
    (services.rebuild, called from the admission) and the scripts' reload after Redis forgot them."""
    clock.freeze(START)
    client, buyers = shop.client, [buyer(shop) for _ in range(2)]
    for headers, address in buyers:
        assert buy(shop, client, sale, headers, address).status_code == 201

    restart_redis(get_redis(settings))

    assert buy(shop, client, sale, *buyers[0]).get_json()["code"] == "flash_sale.limit_reached"  # still a buyer
    assert buy(shop, client, sale, *buyer(shop)).status_code == 201  # the one unit left
    assert buy(shop, client, sale, *buyer(shop)).get_json()["code"] == "flash_sale.sold_out"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(FlashOrder)) == 3
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 3
        truth = services.truth(db.session, sale["item"])
    assert truth[0] == 0 and gate().counters(sale["item"]) == truth
    assert shop.stock(sale["sku"]) == 47


@pytest.fixture
def show(shop):
    live = Live(shop)
    brand = shop.brand()
    products = [live.product(brand, price=9900 + n) for n in range(2)]
    host, host_id = live.host()
    room = live.room(shop.merchant(brand), host_id, products)
    return {"live": live, "room": room["id"], "host": host, "products": products}


@pytest.mark.serial
def test_a_redis_restart_mid_show_loses_neither_the_pin_nor_the_viewers_view(app, show, settings):
    """Guards the live room's state living in the database with Redis only as a cache: the viewer read
    renders the room again on a miss (mall.live.cache.RoomCache.get/fill), a pin after the restart reaches
    viewers and records the room's version for the stream again (mall.live.announce)."""
    from mall.live import announce

    live, room, host, (a, b) = show["live"], show["room"], show["host"], show["products"]
    assert live.act(host, room, "start").status_code == 200
    assert live.act(host, room, "pin", product_id=a).status_code == 200
    before = live.view(room)
    assert before.get_json()["pinned"]["item"]["product_id"] == a

    restart_redis(get_redis(settings))

    after = live.view(room, etag=before.headers["ETag"])
    assert after.status_code == 304  # the same view, rendered again from the database: viewers notice nothing
    assert live.view(room).get_json()["pinned"]["item"]["product_id"] == a
    assert live.act(host, room, "pin", product_id=b).status_code == 200
    now = live.view(room).get_json()
    assert now["pinned"]["item"]["product_id"] == b and now["status"] == "live"
    with app.app_context():
        from mall.live.models import LiveRoom

        version = db.session.get(LiveRoom, room).version
    assert announce.last_version(get_redis(settings), room) == version


@pytest.mark.parametrize("failure", [redis.ConnectionError("Connection refused"), redis.TimeoutError("Timeout")])
def test_a_purchase_while_redis_is_down_is_a_503_that_took_nothing(app, shop, sale, monkeypatch, failure):
    """Guards api/errors.py's Redis-unavailable handler (RedisError -> 503 + Retry-After, the session rolled
    back) and the flash fast path handing a Redis failure to Flask (api/flash_sales/fast_path.py): during the
    restart itself the flash gate cannot be asked, so nothing is sold, and the client retries."""
    from mall.promotions.flash_sale.admission import Gate

    clock.freeze(START)
    headers, address = buyer(shop)

    def down(self, **kwargs):
        raise failure

    monkeypatch.setattr(Gate, "admit", down)
    resp = buy(shop, shop.client, sale, headers, address)
    monkeypatch.undo()

    assert resp.status_code == 503, resp.get_json()
    assert resp.mimetype == "application/problem+json" and int(resp.headers["Retry-After"]) > 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
    assert buy(shop, shop.client, sale, headers, address).status_code == 201  # Redis back: the same shopper buys


@pytest.mark.serial
def test_a_viewer_reconnecting_after_a_redis_restart_is_told_to_reread_the_room(app, show, settings):
    """Guards the stream's reading of the room's version from the viewer cache when Redis lost the announced
    one (api/live/stream.py StreamServer._version): a viewer away during a pin and a restart must resync, not
    be greeted as up to date."""
    from tests.api.test_live_stream import Running, Stream, events_path

    live, room, host, (a, b) = show["live"], show["room"], show["host"], show["products"]
    live.act(host, room, "start")
    live.act(host, room, "pin", product_id=a)
    server = Running(settings.redis_url, heartbeat_s=0.2)
    try:
        first = Stream(server.port, events_path(room))
        seen = int(first.next_event()["id"])
        first.close()
        live.act(host, room, "pin", product_id=b)  # while the viewer was away...
        restart_redis(get_redis(settings))  # ...and Redis forgot the room's version
        assert live.view(room).get_json()["pinned"]["item"]["product_id"] == b  # another viewer's poll

        again = Stream(server.port, events_path(room), {"Last-Event-ID": str(seen)})
        resync = again.next_event()
        again.close()
    finally:
        server.close()
    assert resync["event"] == "resync" and int(resync["id"]) > seen
