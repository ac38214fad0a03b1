"""A local stand-in for api.weixin.qq.com that speaks the real code2session protocol.

It answers HTTP 200 with JSON (content type text/plain, as WeChat does), with
`errcode`/`errmsg` on failure. Codes are registered per test; each works once.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# Codes that make the fake answer with WeChat's own error codes.
ERROR_CODES = {
    "rate-limited": (45011, "api minute-quota reach limit  mustslower  retry next minute"),
    "high-risk": (40226, "invalid js_code, high risk user"),
    "system-busy": (-1, "system error"),
}


class FakeWeChat:
    def __init__(self, apps: dict[str, str]):
        self.apps = apps
        self.codes: dict[str, dict] = {}
        self.used: set[str] = set()
        self.requests: list[dict] = []
        self._lock = threading.Lock()
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
            self.codes.clear()
            self.used.clear()
            self.requests.clear()

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

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                if url.path != "/sns/jscode2session":
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                payload = json.dumps(fake.code2session(query)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler
