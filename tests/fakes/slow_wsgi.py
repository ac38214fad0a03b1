"""A WSGI app that takes a few milliseconds per request: something for gunicorn to serve in tests of its
configuration (gunicorn.conf.py), without the mall's start-up."""

import time


def app(environ, start_response):
    time.sleep(0.005)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
