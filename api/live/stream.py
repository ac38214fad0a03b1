"""The room event stream: `GET /api/v1/live/rooms/{id}/events` as Server-Sent Events, in its own process.

An open stream holds a connection for the whole show, so it must not hold one of the API's gthread threads
(3 x 3 of them serve every other request). This process is one asyncio event loop: each stream costs a socket
and a few kilobytes, not a thread. It needs nothing but the standard library and redis-py's asyncio client.

- One Redis connection per process, pattern-subscribed to `live:room:*` (what `mall.live.announce` publishes
  after each commit). A message is encoded once and written to every open stream of its room.
- Each event is `id: <room version>`, `event: <kind>` (pin, unpin, price, status, lucky_bag), `data: <JSON>`.
  On connect the stream first sends `event: hello` with the room's last announced version; a client that
  reconnects with `Last-Event-ID` (or `?last_event_id=`) older than that gets `event: resync` instead: it
  missed something and re-reads the room (`GET /api/v1/live/rooms/{id}`).
- A comment line (`: keep-alive`) every HEARTBEAT_S keeps proxies from closing an idle stream, and tells a
  client its stream is alive.
- A client that does not read (its socket's send buffer above MAX_BUFFER) is closed: it reconnects with its
  Last-Event-ID and resyncs, rather than the process buffering for it without bound.
- When the Redis subscription breaks, the process resubscribes and sends every stream `event: resync` (it may
  have missed messages meanwhile).

The stream does not look the room up in the database: a stream of an unknown room only gets heartbeats (a
viewer reads the room first, which 404s). `GET /livez` answers 200 for the process's health check.

Run: `python -m api.live.stream --port 8001` (REDIS_URL from the environment). `make run` starts it on
STREAM_PORT (default 8001); in production run one per core with `--reuse-port` behind the proxy that routes
`/api/v1/live/rooms/*/events` here (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mall.live.announce import version_key
from mall.live.cache import RoomCache

log = logging.getLogger("mall.live.stream")

PATTERN = "live:room:*"
CHANNEL = re.compile(rb"^live:room:(\d+)$")
PATH = re.compile(r"^/api/v1/live/rooms/(\d+)/events$")
VIEW_VERSION = re.compile(rb"^(\d+) ")  # the viewer cache holds `<version> <etag>\n<body>` (mall.live.cache)
HEARTBEAT_S = 15.0
RETRY_MS = 3000  # how long an EventSource waits before reconnecting
MAX_BUFFER = 256 * 1024  # bytes queued for one client before it is dropped as not reading
HEADER_TIMEOUT_S = 10.0

HEADERS = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache, no-transform\r\n"
    b"X-Accel-Buffering: no\r\n"  # nginx: pass each event on at once
    b"Access-Control-Allow-Origin: *\r\n"
    b"X-Content-Type-Options: nosniff\r\n"  # as every answer of the API (ADR 0036)
    b"Connection: close\r\n\r\n"
)


def event(kind: str, data: bytes, version: int | None = None) -> bytes:
    head = b"" if version is None else b"id: %d\n" % version
    return head + b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _plain(status: str, body: bytes, content_type: bytes = b"application/problem+json") -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + content_type + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
            + body)  # fmt: skip


class StreamServer:
    def __init__(self, redis_url: str, *, heartbeat_s: float = HEARTBEAT_S):
        self.redis_url, self.heartbeat_s = redis_url, heartbeat_s
        self.rooms: dict[int, set[asyncio.StreamWriter]] = {}
        self.subscribed = asyncio.Event()
        self._redis: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task] = []
        self._server: asyncio.Server | None = None

    @property
    def streams(self) -> int:
        return sum(len(w) for w in self.rooms.values())

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        # Health checks: a subscription whose connection died silently is found by the PING sent at least every
        # 30 s (get_message wakes every heartbeat) instead of waiting forever for its next message.
        self._redis = aioredis.from_url(self.redis_url, health_check_interval=30)
        self._server = await asyncio.start_server(self._serve, host, port, reuse_port=reuse_port or None,
                                                  backlog=2048, limit=16 * 1024)  # fmt: skip
        self._tasks = [asyncio.create_task(self._relay()), asyncio.create_task(self._heartbeat())]
        await asyncio.wait_for(self.subscribed.wait(), timeout=10)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for writers in list(self.rooms.values()):
            for writer in list(writers):
                writer.close()
        self.rooms.clear()
        if self._redis is not None:
            await self._redis.aclose()

    # Redis -> streams ----------------------------------------------------------------------------------------

    async def _relay(self) -> None:
        broken = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(PATTERN)
                self.subscribed.set()
                if broken:  # messages may have been published while we were not listening
                    await self._resync_all()
                    broken = False
                while True:
                    message = await pubsub.get_message(timeout=self.heartbeat_s)
                    if message is not None and message["type"] == "pmessage":
                        self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except (RedisError, OSError):
                log.warning("stream: Redis subscription lost; resubscribing", exc_info=True)
                broken = True
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(1)

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        match = CHANNEL.match(channel)
        writers = self.rooms.get(int(match[1])) if match else None
        if not writers:
            return
        try:
            message = json.loads(data)
            frame = event(message["kind"], data, int(message["version"]))
        except (ValueError, KeyError, TypeError):
            log.warning("stream: malformed message on %r", channel)
            return
        self._write_all(writers, frame)

    def _write_all(self, writers: set[asyncio.StreamWriter], frame: bytes) -> None:
        for writer in list(writers):
            if writer.transport.is_closing() or writer.transport.get_write_buffer_size() > MAX_BUFFER:
                writer.close()  # not reading: it reconnects with Last-Event-ID and resyncs
                writers.discard(writer)
                continue
            writer.write(frame)

    async def _resync_all(self) -> None:
        for room_id, writers in list(self.rooms.items()):
            version = await self._version(room_id)
            self._write_all(writers, event("resync", b'{"room_id":%d}' % room_id, version))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            for writers in list(self.rooms.values()):
                self._write_all(writers, b": keep-alive\n\n")

    async def _version(self, room_id: int) -> int | None:
        """The room's last announced version, or the version of its view in the viewer cache if newer: after a
        Redis restart only the view (rendered again from the database by the first poll) knows it."""
        try:
            announced, view = await self._redis.mget(version_key(room_id), RoomCache.key(room_id))
        except RedisError:
            return None
        rendered = VIEW_VERSION.match(view or b"")
        found = [int(v) for v in (announced, rendered and rendered[1]) if v]
        return max(found) if found else None

    # Clients ------------------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEADER_TIMEOUT_S)
            method, target, headers = _parse(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            writer.close()
            return
        except ConnectionError:
            return
        url = urlsplit(target)
        match = PATH.match(url.path)
        if method != "GET" or (match is None and url.path != "/livez"):
            await _finish(writer, _plain("404 Not Found", b'{"type":"about:blank","title":"Not Found",'
                                                          b'"status":404,"code":"stream.not_found"}'))  # fmt: skip
            return
        if match is None:
            await _finish(writer, _plain("200 OK", b"ok\n", b"text/plain"))
            return
        room_id = int(match[1])
        last_seen = headers.get("last-event-id") or parse_qs(url.query).get("last_event_id", [""])[0]
        await self._stream(room_id, _int(last_seen), reader, writer)

    async def _stream(self, room_id: int, last_seen: int | None, reader, writer) -> None:
        writer.write(HEADERS + b"retry: %d\n\n" % RETRY_MS)
        writers = self.rooms.setdefault(room_id, set())
        writers.add(writer)  # from here on it gets every message; the version below is read after joining
        try:
            version = await self._version(room_id)
            data = b'{"room_id":%d,"version":%s}' % (room_id, b"null" if version is None else str(version).encode())
            missed = last_seen is not None and version is not None and version > last_seen
            writer.write(event("resync" if missed else "hello", data, version))
            while await reader.read(1024):  # a stream's client sends nothing more; EOF when it goes away
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            writers.discard(writer)
            if not writers and self.rooms.get(room_id) is writers:
                del self.rooms[room_id]
            writer.close()


def _parse(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


async def _finish(writer: asyncio.StreamWriter, response: bytes) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(response)
        await writer.drain()
    writer.close()


async def serve(host: str, port: int, redis_url: str, *, reuse_port: bool = False) -> None:
    server = StreamServer(redis_url)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    bound = await server.start(host, port, reuse_port=reuse_port)
    log.warning("stream: serving room events on %s:%d (pid %d)", host, bound, os.getpid())
    await stopping.wait()
    await server.stop()


def _open_files_limit() -> None:
    """A stream is an open socket: raise the soft limit on open files to the hard one (often 1,024 -> more)."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.live.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("STREAM_PORT", "8001")))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--reuse-port", action="store_true", help="several processes share the port (SO_REUSEPORT)")
    args = parser.parse_args(argv)
    if not args.redis_url:
        parser.error("REDIS_URL (or --redis-url) is required")
    _open_files_limit()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port, args.redis_url, reuse_port=args.reuse_port))


if __name__ == "__main__":
    main()
