"""The viewer's poll answered in front of Flask, from the one cache read.

Every viewer polls `GET {prefix}/live/rooms/<id>` every few seconds, and nearly every poll is a 304. The view
itself costs one Redis GET, but Flask's per-request work (request context, routing, flask-smorest's wrappers)
cost more than that: a 304 ran at a fraction of /livez. `FastViews` wraps the app's WSGI callable and answers
exactly those polls itself: a GET of the room's path with no query string whose room is in the viewer cache
(`mall.live.cache.RoomCache`). It sends what the view would (same status, body and headers; a test compares
the two): 304 when If-None-Match matches the cached ETag, else the cached body. A miss, an unreachable Redis,
any query string or another path goes to Flask untouched, which renders and stores the room as before.
No before/after-request hook of the app runs for an answered poll (today the only hook looks at input, which a
bodyless, queryless GET has none of); add one that must see every request here too. `LIVE_FAST_VIEWS = False`
in the app config turns it off."""

from __future__ import annotations

import re

from werkzeug.http import parse_etags

from api.edge import NO_STORE, NOSNIFF
from api.observability import FAST

PATH = re.compile(r"/live/rooms/([1-9][0-9]{0,8})")
COUNTED = FAST.labels("live_room_view")  # bound once: an answer costs one increment
RENDER = "mall.live.render"  # set in the WSGI environ when the cache told this request to render
# As api/edge.py sends the view's answer: its no-cache, or no-store when the request carried credentials.
PUBLIC, PRIVATE = (("Cache-Control", "no-cache"), NOSNIFF), (NO_STORE, NOSNIFF)


class FastViews:
    def __init__(self, app, wsgi_app, *, prefix: str, cache):
        self.app, self.wsgi_app, self.prefix, self.cache = app, wsgi_app, prefix, cache

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and not environ.get("QUERY_STRING"):
            path = environ.get("PATH_INFO", "")
            match = PATH.fullmatch(path, len(self.prefix)) if path.startswith(self.prefix) else None
            if match is not None and self.app.config.get("LIVE_FAST_VIEWS", True):
                held = self.cache().get(int(match[1]))
                if held is not None:
                    COUNTED.inc()
                    return _answer(environ, start_response, *held)
                environ[RENDER] = True  # the view renders: a miss, or this request won the stale render
        return self.wsgi_app(environ, start_response)


def _answer(environ, start_response, etag: str, body: bytes):
    headers = [("ETag", etag), *(PRIVATE if "HTTP_AUTHORIZATION" in environ else PUBLIC)]
    if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains_weak(etag.strip('"')):
        start_response("304 NOT MODIFIED", headers)
        return []
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers])
    return [body]
