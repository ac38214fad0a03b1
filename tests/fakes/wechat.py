"""A local stand-in for api.weixin.qq.com that speaks the real code2session protocol.

It answers HTTP 200 with JSON (content type text/plain, as WeChat does), with
`errcode`/`errmsg` on failure. Codes are registered per test; each works once.

It also issues access tokens (`GET /cgi-bin/token`) and takes subscribe messages
(`POST /cgi-bin/message/subscribe/send`): each token fetch invalidates the app's previous
token (stricter than WeChat's five-minute overlap, so a process that fetches its own
token breaks everyone else's), and a test can make the next send fail with a chosen
errcode or expire the current token.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# Codes that make the fake answer with WeChat's own error codes.
ERROR_CODES = {
    "rate-limited": (45011, "api minute-quota reach limit  mustslower  retry next minute"),
    "high-risk": (40226, "invalid js_code, high risk user"),
    "system-busy": (-1, "system error"),
}

# What subscribe/send answers for the errcodes a test may inject (WeChat's own messages).
SEND_ERRORS = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40014: "invalid access_token",
    40037: "invalid template_id",
    41030: "invalid page",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    47003: "argument invalid! data.thing1.value invalid",
}
MINIPROGRAM_STATES = ("formal", "trial", "developer")


class FakeWeChat:
    def __init__(self, apps: dict[str, str]):
        self.apps = apps
        self.codes: dict[str, dict] = {}
        self.used: set[str] = set()
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._generation = 0  # moved by reset(): a slow request that began before it is not recorded after it
        # Access tokens and subscribe messages (kept apart from `requests`, which is code2session's).
        self.token_requests: list[dict] = []  # every /cgi-bin/token query, in order
        self.current_tokens: dict[str, str] = {}  # app id -> its one valid token
        self.expired_tokens: set[str] = set()
        self.send_attempts: list[dict] = []  # every subscribe/send: {"access_token", "body", "errcode"}
        self.delivered: list[dict] = []  # accepted subscribe messages: the body, plus "app_id"
        self.delivered_at: list[float] = []  # when each arrived (time.perf_counter(), for bench/paid_message.py)
        self.send_failures: list[tuple[int, str]] = []  # (errcode, errmsg) the next sends answer with, in order
        self.token_delay = 0.0  # seconds /cgi-bin/token takes to answer (to widen refresh races)
        self.code_delay = 0.0  # seconds /sns/jscode2session takes to answer (a slow WeChat)
        self.http_failures: dict[str, list[int]] = {}  # path -> HTTP statuses its next requests get (a gateway's page)
        self._serial = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeWeChat:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self.codes.clear()
            self.used.clear()
            self.requests.clear()
            self.token_requests.clear()
            self.current_tokens.clear()
            self.expired_tokens.clear()
            self.send_attempts.clear()
            self.delivered.clear()
            self.delivered_at.clear()
            self.send_failures.clear()
            self.token_delay = 0.0
            self.code_delay = 0.0
            self.http_failures.clear()

    def fail_next_http(self, path: str, status: int = 502, times: int = 1) -> None:
        """The next `times` requests to `path` get `status` with an HTML page, as a proxy in front of WeChat
        answers when WeChat is down: nothing is done."""
        with self._lock:
            self.http_failures.setdefault(path, []).extend([status] * times)

    def _http_failure(self, path: str) -> int | None:
        with self._lock:
            failures = self.http_failures.get(path)
            return failures.pop(0) if failures else None

    def issue_code(self, code: str, *, openid: str, unionid: str | None = None, session_key: str = "sk-secret"):
        """What wx.login() would hand the mini-program for this user."""
        self.codes[code] = {"openid": openid, "unionid": unionid, "session_key": session_key}

    def code2session(self, query: dict[str, str]) -> dict:
        self.requests.append(query)
        appid, secret, code = query.get("appid"), query.get("secret"), query.get("js_code")
        if query.get("grant_type") != "authorization_code":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if appid not in self.apps:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if self.apps[appid] != secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        if code in ERROR_CODES:
            errcode, errmsg = ERROR_CODES[code]
            return {"errcode": errcode, "errmsg": errmsg}
        with self._lock:
            if code in self.used:
                return {"errcode": 40163, "errmsg": "code been used"}
            if code not in self.codes:
                return {"errcode": 40029, "errmsg": "invalid code"}
            self.used.add(code)
        user = self.codes[code]
        body = {"openid": user["openid"], "session_key": user["session_key"]}
        if user["unionid"]:
            body["unionid"] = user["unionid"]
        return body

    # -- access tokens and subscribe messages ------------------------------------------------

    def token_calls(self, app_id: str | None = None) -> int:
        """How many access tokens were issued (for one app, or all)."""
        return sum(1 for q in self.token_requests if app_id is None or q.get("appid") == app_id)

    def fail_next_send(self, errcode: int, errmsg: str | None = None) -> None:
        """The next subscribe/send with a valid token answers `errcode` (queued: call again for the one after)."""
        with self._lock:
            self.send_failures.append((errcode, errmsg or SEND_ERRORS.get(errcode, "injected error")))

    def expire_token(self, app_id: str) -> None:
        """The app's current token expires: sends with it answer 42001 until a new one is fetched."""
        with self._lock:
            self.expired_tokens.add(self.current_tokens[app_id])

    def token(self, query: dict[str, str]) -> dict:
        generation = self._generation
        time.sleep(self.token_delay)
        with self._lock:
            if generation != self._generation:  # a slow request of a test already over: its client gave up
                return {"errcode": -1, "errmsg": "system busy"}
            self.token_requests.append(query)
            appid, secret = query.get("appid"), query.get("secret")
            if query.get("grant_type") != "client_credential":
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            if appid not in self.apps:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if self.apps[appid] != secret:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            token = f"ACCESS-TOKEN-{appid}-{next(self._serial)}"
            self.current_tokens[appid] = token  # the previous one stops working
            return {"access_token": token, "expires_in": 7200}

    def subscribe_send(self, access_token: str | None, raw: bytes) -> dict:
        with self._lock:
            attempt = {"access_token": access_token, "body": None, "errcode": 0}
            self.send_attempts.append(attempt)
            attempt["errcode"], errmsg = self._judge_send(access_token, raw, attempt)
            return {"errcode": attempt["errcode"], "errmsg": errmsg}

    def _judge_send(self, access_token: str | None, raw: bytes, attempt: dict) -> tuple[int, str]:
        app_id = next((app for app, t in self.current_tokens.items() if t == access_token), None)
        if access_token in self.expired_tokens:
            return 42001, SEND_ERRORS[42001]
        if app_id is None:
            return 40001, SEND_ERRORS[40001]
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 47001, "data format error"
        attempt["body"] = body
        if not isinstance(body, dict) or not body.get("touser"):
            return 40003, SEND_ERRORS[40003]
        if not body.get("template_id"):
            return 40037, SEND_ERRORS[40037]
        data = body.get("data")
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and set(v) == {"value"} and isinstance(v["value"], str) for v in data.values()
        ):
            return 47003, SEND_ERRORS[47003]
        if body.get("miniprogram_state", "formal") not in MINIPROGRAM_STATES:
            return 47001, "data format error"
        if self.send_failures:
            errcode, errmsg = self.send_failures.pop(0)
            if errcode in (40001, 40014, 42001):  # the token really stops working
                self.expired_tokens.add(access_token)
            return errcode, errmsg
        self.delivered.append({**body, "app_id": app_id})
        self.delivered_at.append(time.perf_counter())
        return 0, "ok"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                if status := fake._http_failure(url.path):
                    self.send_error(status)
                    return
                if url.path == "/cgi-bin/token":
                    self._json(fake.token({k: v[0] for k, v in parse_qs(url.query).items()}))
                    return
                if url.path != "/sns/jscode2session":
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                generation = fake._generation
                time.sleep(fake.code_delay)
                if generation != fake._generation:  # its test is over (its client gave up): leave no trace
                    return
                payload = json.dumps(fake.code2session(query)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):
                url = urlparse(self.path)
                if status := fake._http_failure(url.path):
                    self.send_error(status)
                    return
                if url.path != "/cgi-bin/message/subscribe/send":
                    self.send_error(404)
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = parse_qs(url.query).get("access_token", [None])[0]
                self._json(fake.subscribe_send(token, raw))

            def _json(self, body: dict):
                payload = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; encoding=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler
