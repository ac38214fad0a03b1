"""WeChat subscribe messages (订阅消息): the real `wechat` channel.

One POST to `/cgi-bin/message/subscribe/send` per message, authenticated by the app's access token.
WeChat keeps one valid access token per app and invalidates the old one whenever a new one is
fetched, so every worker process shares one token through Redis (`RedisTokenCache`) and only the
holder of a short per-app lock fetches a new one; the others wait briefly and read the winner's.

WeChat answers HTTP 200 with `errcode`/`errmsg`. The channel never raises: every outcome is a
`SendResult` — "sent", "rejected" (permanent, the outbox skips the message with the reason) or
"retry" (transient, the outbox tries again later).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Protocol

import redis
import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.identity.models import WeChatAccount
from mall.notifications.channels import Outgoing, SendResult
from mall.notifications.templates import Template

log = logging.getLogger("mall.notifications.wechat")

MINIPROGRAM_STATES = ("formal", "trial", "developer")
# The access token is unknown, not the latest (another fetch replaced it) or expired: refresh, send once more.
TOKEN_INVALID = {40001: "invalid credential", 40014: "invalid access_token", 42001: "access_token expired"}
# Permanent for this message: skip it with the reason.
REJECTIONS = {
    43101: "no_consent",  # the user has no (remaining) subscription to this template
    40003: "invalid_openid",
    47003: "bad_template_data",
    40037: "bad_template_id",
    41030: "bad_page",
}


class WeChatUnavailable(Exception):
    """A transient failure: WeChat unreachable or busy, or no access token to be had right now."""


class TokenCache(Protocol):
    """Where the access tokens live, shared by every process (see `RedisTokenCache`)."""

    def get(self, app_id: str) -> str | None: ...

    def set(self, app_id: str, token: str, ttl: int) -> None: ...

    def delete(self, app_id: str, token: str | None = None) -> None: ...

    def lock(self, app_id: str, ttl: float) -> AbstractContextManager[bool]:
        """Try once to take the app's refresh lock; the context yields whether the caller holds it."""
        ...


_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTokenCache:
    """Access tokens in Redis, one key per app id with a TTL, and a per-app refresh lock (SET NX PX)."""

    def __init__(self, client: redis.Redis, prefix: str = "mall:wechat:access_token:"):
        self.redis = client
        self.prefix = prefix
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)

    def _key(self, app_id: str) -> str:
        return f"{self.prefix}{app_id}"

    def get(self, app_id: str) -> str | None:
        value = self.redis.get(self._key(app_id))
        return value.decode() if isinstance(value, bytes) else value

    def set(self, app_id: str, token: str, ttl: int) -> None:
        self.redis.set(self._key(app_id), token, ex=max(1, int(ttl)))

    def delete(self, app_id: str, token: str | None = None) -> None:
        """Drop the cached token; with `token`, only if it is still that one (not a newer one another
        process already fetched)."""
        if token is None:
            self.redis.delete(self._key(app_id))
        else:
            self._delete_if_equal(keys=[self._key(app_id)], args=[token])

    @contextmanager
    def lock(self, app_id: str, ttl: float) -> Iterator[bool]:
        """Try once to take the refresh lock of `app_id`; yields whether this caller holds it.
        The lock expires after `ttl` seconds, so a process that dies holding it blocks no one for long."""
        lock = self.redis.lock(f"{self._key(app_id)}:lock", timeout=ttl, blocking=False)
        acquired = lock.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                with suppress(redis.exceptions.LockError):  # expired meanwhile: nothing of ours to release
                    lock.release()


class AccessTokens:
    """One access token per app, shared by all processes through the cache."""

    def __init__(
        self, cache: TokenCache, http: requests.Session, *, base_url: str, apps: Mapping[str, str],
        timeout: float = 5.0, margin: int = 300, lock_ttl: float | None = None, wait: float | None = None,
        poll: float = 0.05,
    ):  # fmt: skip
        self.cache = cache
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.apps = apps
        self.timeout = timeout
        self.margin = margin
        self.lock_ttl = lock_ttl if lock_ttl is not None else timeout + 5  # outlives one fetch
        self.wait = wait if wait is not None else timeout + 1  # how long a loser waits for the winner
        self.poll = poll

    def get(self, app_id: str) -> str:
        return self.cache.get(app_id) or self._refresh(app_id)

    def invalidate(self, app_id: str, token: str) -> None:
        """WeChat refused `token`: drop it, unless another process already replaced it."""
        self.cache.delete(app_id, token)

    def _refresh(self, app_id: str) -> str:
        deadline = time.monotonic() + self.wait
        while True:
            with self.cache.lock(app_id, self.lock_ttl) as holder:
                token = self.cache.get(app_id)  # the previous holder may have just stored one
                if token:
                    return token
                if holder:
                    token, expires_in = self._fetch(app_id)
                    self.cache.set(app_id, token, self._ttl(expires_in))
                    return token
            if time.monotonic() >= deadline:
                raise WeChatUnavailable("access token: another process is refreshing it; try again")
            time.sleep(self.poll)

    def _ttl(self, expires_in: int) -> int:
        return expires_in - self.margin if expires_in > self.margin * 2 else max(1, expires_in // 2)

    def _fetch(self, app_id: str) -> tuple[str, int]:
        secret = self.apps[app_id]
        params = {"grant_type": "client_credential", "appid": app_id, "secret": secret}
        body = _get_json(self.http, f"{self.base_url}/cgi-bin/token", params=params, timeout=self.timeout,
                         secrets=(secret,), what="access token")  # fmt: skip
        errcode = _errcode(body)
        if errcode or not body.get("access_token"):
            # 40013 invalid appid, 40125 invalid secret, 40164 IP not whitelisted: our configuration.
            log.error("access token for %s: errcode=%s errmsg=%s", app_id, errcode, body.get("errmsg"))
            raise WeChatUnavailable(f"access token: errcode {errcode}: {body.get('errmsg', '')}")
        try:
            expires_in = int(body.get("expires_in") or 7200)
        except (TypeError, ValueError):
            expires_in = 7200
        return body["access_token"], expires_in


class WeChatSubscribeChannel:
    """Sends a message as a WeChat subscribe message to the recipient's mini-program openid."""

    name = "wechat"

    def __init__(
        self, *, cache: TokenCache, base_url: str, apps: Mapping[str, str], template_ids: Mapping[str, str],
        default_app: str = "", miniprogram_state: str = "formal", timeout: float = 5.0,
        http: requests.Session | None = None, token_margin: int = 300,
    ):  # fmt: skip
        if miniprogram_state not in MINIPROGRAM_STATES:
            raise ValueError(f"miniprogram_state must be one of {MINIPROGRAM_STATES}, not {miniprogram_state!r}")
        self.base_url = base_url.rstrip("/")
        self.apps = dict(apps)
        self.template_ids = dict(template_ids)
        self.default_app = default_app
        self.miniprogram_state = miniprogram_state
        self.timeout = timeout
        self.http = http or requests.Session()
        self.tokens = AccessTokens(cache, self.http, base_url=self.base_url, apps=self.apps, timeout=timeout,
                                   margin=token_margin)  # fmt: skip

    def prepare(self, session: Session, outgoing: Outgoing, template: Template) -> Outgoing | SendResult:
        """The recipient, read while the claim's transaction is open: the app and openid to send to."""
        if not self.template_ids.get(outgoing.template_key):
            return SendResult("rejected", "no_template_id")
        accounts = self._accounts(session, outgoing.user_id)
        if not accounts:
            return SendResult("rejected", "no_openid")
        usable = [a for a in accounts if a.app_id in self.apps]
        if not usable:
            log.error("user %s has WeChat accounts only for unconfigured apps", outgoing.user_id)
            return SendResult("rejected", "app_not_configured")
        return outgoing.routed((usable[0].app_id, usable[0].openid))

    def send(self, outgoing: Outgoing, template: Template) -> SendResult:
        app_id, openid = outgoing.route
        payload = outgoing.payload or {}
        body = {
            "touser": openid,
            "template_id": self.template_ids[outgoing.template_key],
            "page": template.page.format_map(_Blank(payload)),
            "data": build_data(payload),
            "miniprogram_state": self.miniprogram_state,
        }
        try:
            return self._send(app_id, body)
        except WeChatUnavailable as exc:
            log.warning("message %s: %s", outgoing.id, exc)
            return SendResult("retry", str(exc))
        except redis.RedisError as exc:  # without the shared cache a fetch would invalidate others' tokens
            log.warning("message %s: token cache unavailable: %s", outgoing.id, exc)
            return SendResult("retry", f"token cache unavailable: {type(exc).__name__}")

    def _accounts(self, session: Session, user_id: int) -> list[WeChatAccount]:
        """The user's accounts, best first: the default app's, then the most recently used."""
        accounts = list(session.scalars(sa.select(WeChatAccount).where(WeChatAccount.user_id == user_id)))
        accounts.sort(key=lambda a: (a.last_login_at, a.id), reverse=True)
        accounts.sort(key=lambda a: a.app_id != self.default_app)  # stable: default app first
        return accounts

    def _send(self, app_id: str, body: dict) -> SendResult:
        token = self.tokens.get(app_id)
        reply = self._post(token, body)
        errcode = _errcode(reply)
        if errcode in TOKEN_INVALID:
            log.info("access token of %s refused (errcode %s); refreshing once", app_id, errcode)
            self.tokens.invalidate(app_id, token)
            token = self.tokens.get(app_id)
            reply = self._post(token, body)
            errcode = _errcode(reply)
            if errcode in TOKEN_INVALID:
                return SendResult("retry", f"access token refused after refresh: errcode {errcode}")
        return _result(errcode, reply.get("errmsg", ""))

    def _post(self, token: str, body: dict) -> dict:
        data = json.dumps(body, ensure_ascii=False).encode()  # UTF-8 as is, not \\u escapes
        try:
            resp = self.http.post(
                f"{self.base_url}/cgi-bin/message/subscribe/send", params={"access_token": token}, data=data,
                headers={"Content-Type": "application/json; charset=utf-8"}, timeout=self.timeout,
            )  # fmt: skip
        except requests.RequestException as exc:
            raise WeChatUnavailable(f"subscribe/send unreachable: {_redact(exc, token)}") from None
        return _json(resp, "subscribe/send")


def build_data(payload: Mapping) -> dict[str, dict[str, str]]:
    """WeChat's `data`: {"thing1": {"value": "..."}}. `payload["wechat_data"]` gives the exact keys (values
    plain or already {"value": ...}); otherwise every scalar payload item, stringified."""
    exact = payload.get("wechat_data")
    if isinstance(exact, Mapping):
        return {str(k): {"value": _text(v.get("value") if isinstance(v, Mapping) else v)} for k, v in exact.items()}
    return {
        str(k): {"value": _text(v)}
        for k, v in payload.items()
        if k != "wechat_data" and v is not None and isinstance(v, str | int | float)
    }


def _result(errcode: int, errmsg: str) -> SendResult:
    if errcode == 0:
        return SendResult("sent")
    if errcode in REJECTIONS:
        log.warning("subscribe/send refused: errcode=%s errmsg=%s", errcode, errmsg)
        return SendResult("rejected", REJECTIONS[errcode])
    if errcode not in (-1, 45009):  # system busy and rate limit are expected; anything else is news
        log.error("subscribe/send: unexpected errcode=%s errmsg=%s", errcode, errmsg)
    return SendResult("retry", f"errcode {errcode}: {errmsg}")


def _get_json(http: requests.Session, url: str, *, params: dict, timeout: float, secrets: tuple, what: str) -> dict:
    try:
        resp = http.get(url, params=params, timeout=timeout)
    except requests.RequestException as exc:
        raise WeChatUnavailable(f"{what} unreachable: {_redact(exc, *secrets)}") from None
    return _json(resp, what)


def _json(resp: requests.Response, what: str) -> dict:
    if resp.status_code != 200:
        raise WeChatUnavailable(f"{what}: HTTP {resp.status_code}")
    try:
        body = json.loads(resp.text)
    except ValueError:
        raise WeChatUnavailable(f"{what}: reply is not JSON") from None
    if not isinstance(body, dict):
        raise WeChatUnavailable(f"{what}: reply is not a JSON object")
    return body


def _errcode(body: dict) -> int:
    try:
        return int(body.get("errcode") or 0)
    except (TypeError, ValueError):
        return -1


def _redact(exc: Exception, *secrets: str) -> str:
    """requests puts the URL, query string included, in its messages: keep tokens and secrets out of logs
    and `last_error`."""
    text = f"{type(exc).__name__}: {exc}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _text(value) -> str:
    return "" if value is None else str(value)


class _Blank(dict):
    def __missing__(self, key):
        return ""
