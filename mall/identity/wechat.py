"""WeChat mini-program login: exchange a wx.login() code for openid/unionid (code2session).

WeChat answers HTTP 200 even on failure, with `errcode`/`errmsg` in a JSON body; each
errcode maps to a domain error the client can act on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import requests

from mall.errors import DomainError, Forbidden, Invalid, RateLimited, Unauthorized, Unavailable

log = logging.getLogger(__name__)

_ERRCODES: dict[int, tuple[type[DomainError], str, str]] = {
    40029: (Unauthorized, "auth.wechat_code_invalid", "The login code is invalid; call wx.login() again."),
    40163: (Unauthorized, "auth.wechat_code_used", "The login code was already used; call wx.login() again."),
    45011: (RateLimited, "auth.wechat_rate_limited", "Too many logins for this user; retry in a minute."),
    40226: (Forbidden, "auth.wechat_user_blocked", "WeChat blocked this high-risk user from logging in."),
    -1: (Unavailable, "auth.wechat_busy", "WeChat is busy; retry shortly."),
}


@dataclass(frozen=True, slots=True)
class WeChatSession:
    openid: str
    session_key: str
    unionid: str | None


class WeChatClient:
    def __init__(self, base_url: str, apps: dict[str, str], timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.apps = apps
        self.timeout = timeout
        self.http = requests.Session()

    def code2session(self, app_id: str, code: str) -> WeChatSession:
        if app_id not in self.apps:
            raise Invalid("auth.unknown_app", f"Mini-program app id {app_id!r} is not configured.")
        params = {"appid": app_id, "secret": self.apps[app_id], "js_code": code, "grant_type": "authorization_code"}
        try:
            resp = self.http.get(f"{self.base_url}/sns/jscode2session", params=params, timeout=self.timeout)
            body = json.loads(resp.text)
        except (requests.RequestException, ValueError) as exc:
            log.warning("code2session unreachable: %s", exc)
            raise Unavailable("auth.wechat_unreachable", "WeChat could not be reached; retry shortly.") from exc
        errcode = int(body.get("errcode") or 0)
        if errcode:
            raise self._error(errcode, body.get("errmsg", ""))
        if not body.get("openid") or not body.get("session_key"):
            raise Unavailable("auth.wechat_bad_reply", "WeChat answered without an openid.")
        return WeChatSession(body["openid"], body["session_key"], body.get("unionid") or None)

    @staticmethod
    def _error(errcode: int, errmsg: str) -> DomainError:
        if errcode in _ERRCODES:
            cls, code, detail = _ERRCODES[errcode]
            return cls(code, detail, wechat_errcode=errcode)
        # 40013 invalid appid, 40125 invalid secret, and anything new: our side is misconfigured.
        log.error("code2session errcode=%s errmsg=%s", errcode, errmsg)
        return Unavailable("auth.wechat_error", "WeChat login is unavailable.", wechat_errcode=errcode)
