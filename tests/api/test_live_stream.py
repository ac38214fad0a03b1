"""The room event stream (api/live/stream.py), the real server on a real socket with the test's Redis: a host's
pin, unpin and end reach an open stream as SSE events carrying the room's version; a client reconnecting with an
older Last-Event-ID is told to re-read the room; idle streams get heartbeats."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
from flask import request_started

from api.live.stream import StreamServer
from mall.live import announce
from tests.live_helpers import Live
from tests.shop_helpers import Shop, answer_of

# The stream server pattern-subscribes to `live:room:*`, and Redis pub/sub ignores db numbers: on a shared Redis
# another xdist worker's rooms (same ids, other database) would reach these streams: the tests using the
# stream server are `serial` (tests/conftest.py).


@pytest.fixture
def live(app, client, login) -> Live:
    return Live(Shop(app, client, login))


@pytest.fixture
def show(live):
    shop = live.shop
    brand = shop.brand()
    products = [live.product(brand, price=9900 + n) for n in range(2)]
    admin = shop.merchant(brand)
    host, host_id = live.host()
    return {"room": live.room(admin, host_id, products), "host": host, "products": products}


class Running:
    """A StreamServer on its own event loop in a thread, as its process runs it."""

    def __init__(self, redis_url: str, heartbeat_s: float):
        self.loop = asyncio.new_event_loop()
        self.server = StreamServer(redis_url, heartbeat_s=heartbeat_s)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self.call(self.server.start("127.0.0.1", 0))

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self):
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def stream_server(settings):
    running = Running(settings.redis_url, heartbeat_s=0.2)
    yield running
    running.close()


class Stream:
    def __init__(self, port: int, path: str, headers: dict | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
        self.buffer = b""
        self.head = self._until(b"\r\n\r\n").decode()

    def _until(self, marker: bytes) -> bytes:
        deadline = time.monotonic() + 5
        while marker not in self.buffer:
            assert time.monotonic() < deadline, f"no {marker!r} within 5 s; got {self.buffer!r}"
            chunk = self.sock.recv(65536)
            assert chunk, f"stream closed; got {self.buffer!r}"
            self.buffer += chunk
        block, _, self.buffer = self.buffer.partition(marker)
        return block

    def next(self) -> dict:
        """The next SSE block as {"id", "event", "data", "comment"} (retry lines skipped)."""
        while True:
            fields: dict = {}
            for line in self._until(b"\n\n").decode().split("\n"):
                name, _, value = line.partition(":")
                fields["comment" if name == "" else name] = value.strip()
            if set(fields) != {"retry"}:
                if "data" in fields:
                    fields["data"] = json.loads(fields["data"])
                return fields

    def next_event(self) -> dict:
        while "comment" in (found := self.next()):
            pass
        return found

    def close(self):
        self.sock.close()


def events_path(room_id: int) -> str:
    return f"/api/v1/live/rooms/{room_id}/events"


@pytest.mark.serial
def test_a_pin_unpin_and_end_reach_an_open_stream_with_the_rooms_version(live, show, stream_server):
    room, host, (a, b) = show["room"], show["host"], show["products"]
    assert live.act(host, room["id"], "start").status_code == 200
    stream = Stream(stream_server.port, events_path(room["id"]))
    assert stream.head.startswith("HTTP/1.1 200") and "Content-Type: text/event-stream" in stream.head
    assert "X-Accel-Buffering: no" in stream.head
    hello = stream.next_event()
    assert hello["event"] == "hello" and hello["data"]["room_id"] == room["id"]
    started = int(hello["id"])

    pinned = live.act(host, room["id"], "pin", product_id=a)
    assert pinned.status_code == 200
    got = stream.next_event()
    assert got["event"] == "pin" and int(got["id"]) > started
    assert got["data"]["kind"] == "pin" and got["data"]["room_id"] == room["id"]
    assert got["data"]["payload"]["product_id"] == a
    assert got["data"]["payload"]["segment_id"] == pinned.get_json()["id"]
    assert got["data"]["version"] == int(got["id"])

    live.act(host, room["id"], "pin", product_id=b)
    assert stream.next_event()["data"]["payload"]["product_id"] == b
    assert live.act(host, room["id"], "unpin").status_code == 204
    unpinned = stream.next_event()
    assert unpinned["event"] == "unpin" and unpinned["data"]["payload"]["product_id"] == b
    live.act(host, room["id"], "end")
    ended = stream.next_event()
    assert ended["event"] == "status" and ended["data"]["payload"] == {"status": "ended"}
    assert int(ended["id"]) > int(unpinned["id"])
    stream.close()


@pytest.mark.serial
def test_another_rooms_changes_do_not_reach_the_stream(live, show, stream_server):
    room, host, (a, _) = show["room"], show["host"], show["products"]
    other = Stream(stream_server.port, events_path(room["id"] + 1000))
    assert other.next_event()["event"] == "hello"
    live.act(host, room["id"], "start")
    live.act(host, room["id"], "pin", product_id=a)
    assert other.next() == {"comment": "keep-alive"}  # a heartbeat, and nothing of the other room before it
    other.close()


@pytest.mark.serial
def test_a_client_reconnecting_with_an_older_last_event_id_is_told_to_reread_the_room(live, show, stream_server):
    room, host, (a, _) = show["room"], show["host"], show["products"]
    live.act(host, room["id"], "start")
    first = Stream(stream_server.port, events_path(room["id"]))
    seen = int(first.next_event()["id"])
    first.close()
    live.act(host, room["id"], "pin", product_id=a)  # published while the client was away

    again = Stream(stream_server.port, events_path(room["id"]), {"Last-Event-ID": str(seen)})
    resync = again.next_event()
    assert resync["event"] == "resync" and int(resync["id"]) > seen
    again.close()
    current = Stream(stream_server.port, events_path(room["id"]) + f"?last_event_id={resync['id']}")
    assert current.next_event()["event"] == "hello"
    current.close()


@pytest.mark.serial
def test_an_idle_stream_gets_heartbeats_and_other_paths_are_404(stream_server):
    stream = Stream(stream_server.port, events_path(1))
    assert "\r\nX-Content-Type-Options: nosniff\r\n" in stream.head
    assert stream.next_event()["event"] == "hello"
    assert stream.next() == {"comment": "keep-alive"}
    stream.close()
    with socket.create_connection(("127.0.0.1", stream_server.port), timeout=5) as sock:
        sock.sendall(b"GET /api/v1/live/rooms/1 HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = sock.recv(1024)
        assert answer.startswith(b"HTTP/1.1 404") and b"\r\nX-Content-Type-Options: nosniff\r\n" in answer
    with socket.create_connection(("127.0.0.1", stream_server.port), timeout=5) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")


@pytest.mark.serial
def test_an_announcement_without_a_version_takes_the_viewer_caches(live, show, stream_server):
    room, host = show["room"], show["host"]
    live.act(host, room["id"], "start")
    stream = Stream(stream_server.port, events_path(room["id"]))
    version = int(stream.next_event()["id"])  # the start's
    assert announce.room_changed(room["id"], "price", {"item_id": 1, "live_price": 100}) >= 1
    got = stream.next_event()
    assert got["event"] == "price" and int(got["id"]) == version and got["data"]["payload"]["live_price"] == 100
    with pytest.raises(ValueError):
        announce.room_changed(room["id"], "bogus", {})
    stream.close()


def test_a_cached_poll_is_answered_in_front_of_flask_exactly_as_the_view_answers_it(app, live, show):
    room = show["room"]
    live.act(show["host"], room["id"], "start")
    live.view(room["id"])  # a miss: Flask renders and stores it

    def both(etag=None):
        fast = live.view(room["id"], etag)
        app.config["LIVE_FAST_VIEWS"] = False
        try:
            slow = live.view(room["id"], etag)
        finally:
            app.config.pop("LIVE_FAST_VIEWS")
        return fast, slow

    flask_handled = []
    request_started.connect(flask_handled.append, app, weak=False)
    try:
        for etag in (None, live.view(room["id"]).headers["ETag"], '"stale"'):
            fast, slow = both(etag)
            assert answer_of(fast) == answer_of(slow)
        assert both(live.view(room["id"]).headers["ETag"])[0].status_code == 304
    finally:
        request_started.disconnect(flask_handled.append, app)
    assert len(flask_handled) == 4  # the slow halves only


def test_a_stale_render_is_re_rendered_by_one_poll_while_the_others_are_answered_the_stale_one(app, live, show):
    from api.extensions import db
    from mall.catalog.models import Product
    from mall.live.cache import RoomCache
    from workers.connection import get_redis

    room, product = show["room"], show["products"][0]
    cache = RoomCache(get_redis(app.extensions["mall.settings"]))
    live.act(show["host"], room["id"], "start")

    def retitle(title):  # a change no route announces (as an order's stock change): seen at the next render
        with app.app_context():
            db.session.get(Product, product).title = title
            db.session.commit()

    def titles():
        return [i["title"] for i in live.view(room["id"]).get_json()["lineup"]]

    retitle("Renamed once")
    assert "Renamed once" not in titles()  # still fresh: answered from the cache
    cache.client.delete(cache.fresh_key(room["id"]))  # TTL_MS later
    assert "Renamed once" in titles()  # the first poll to see it stale re-rendered it
    retitle("Renamed twice")
    cache.client.set(cache.fresh_key(room["id"]), b"r", px=5000)  # another poll is re-rendering it right now
    assert "Renamed once" in titles()  # everyone else gets the stale render, no render of their own
    cache.client.delete(cache.fresh_key(room["id"]))
    assert "Renamed twice" in titles()
