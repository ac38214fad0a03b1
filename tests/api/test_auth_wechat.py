"""Shoppers log in from the mini-program: POST /api/v1/auth/wechat against the fake code2session."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.events import DomainEvent
from mall.identity.models import User, WeChatAccount

LOGIN = "/api/v1/auth/wechat"


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:mall:problem:{code}"
    return body


@pytest.fixture
def make_app(app):
    """Another app on the same database and Redis, with some settings changed."""
    from api import create_app

    made = []

    def build(**changes):
        other = create_app(dataclasses.replace(app.extensions["mall.settings"], **changes))
        made.append(other)
        return other

    yield build
    for other in made:
        with other.app_context():
            db.engine.dispose()


def test_login_returns_the_platform_token_and_never_the_session_key(client, app, fake_wechat):
    fake_wechat.issue_code("c1", openid="openid-amy", session_key="SESSION-KEY-amy-7f3a")

    resp = client.post(LOGIN, json={"code": "c1"})

    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert (body["expires_in"], body["refresh_expires_in"]) == (900, 30 * 24 * 3600)  # ADR 0032
    assert body["refresh_token"] and body["refresh_token"] not in body["token"]
    assert body["user"]["role"] == "shopper"
    assert body["user"]["brand_id"] is None
    assert "SESSION-KEY-amy-7f3a" not in resp.get_data(as_text=True)
    assert "session_key" not in resp.get_data(as_text=True)
    # The token is ours, and it works.
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json()["id"] == body["user"]["id"]
    assert "SESSION-KEY-amy-7f3a" not in me.get_data(as_text=True)
    # The default app was used, with its secret, and the session key is kept server-side.
    assert fake_wechat.requests == [
        {"appid": "wx-brand-a", "secret": "secret-a", "js_code": "c1", "grant_type": "authorization_code"}
    ]
    with app.app_context():
        account = db.session.scalars(sa.select(WeChatAccount)).one()
        assert (account.app_id, account.openid, account.user_id) == ("wx-brand-a", "openid-amy", body["user"]["id"])
        assert account.session_key == "SESSION-KEY-amy-7f3a"
        assert db.session.scalar(sa.select(DomainEvent.type).where(DomainEvent.aggregate_id == account.user_id)) == (
            "shopper.signed_up"
        )


def test_the_same_openid_is_the_same_shopper_and_the_session_key_is_refreshed(client, app, fake_wechat):
    fake_wechat.issue_code("c1", openid="openid-amy", session_key="sk-old")
    fake_wechat.issue_code("c2", openid="openid-amy", session_key="sk-new")

    first = client.post(LOGIN, json={"code": "c1"})
    second = client.post(LOGIN, json={"code": "c2", "app_id": "wx-brand-a"})

    assert first.status_code == second.status_code == 200
    assert first.get_json()["user"]["id"] == second.get_json()["user"]["id"]
    assert count(app, User) == 1
    assert count(app, WeChatAccount) == 1
    assert count(app, WeChatAccount, WeChatAccount.session_key == "sk-new") == 1


def test_unionid_links_one_shopper_across_brand_mini_programs(client, app, fake_wechat):
    fake_wechat.issue_code("a1", openid="openid-in-a", unionid="union-amy")
    fake_wechat.issue_code("b1", openid="openid-in-b", unionid="union-amy")

    in_a = client.post(LOGIN, json={"code": "a1", "app_id": "wx-brand-a"})
    in_b = client.post(LOGIN, json={"code": "b1", "app_id": "wx-brand-b"})

    assert in_a.status_code == in_b.status_code == 200
    assert in_a.get_json()["user"]["id"] == in_b.get_json()["user"]["id"]
    assert [r["appid"] for r in fake_wechat.requests] == ["wx-brand-a", "wx-brand-b"]
    assert [r["secret"] for r in fake_wechat.requests] == ["secret-a", "secret-b"]
    assert count(app, User) == 1
    assert count(app, WeChatAccount, WeChatAccount.unionid == "union-amy") == 2


def test_different_openids_without_unionid_are_different_shoppers(client, app, fake_wechat):
    fake_wechat.issue_code("a1", openid="openid-1")
    fake_wechat.issue_code("a2", openid="openid-2")
    # The same openid string under another app is another person too (openids are per app).
    fake_wechat.issue_code("b1", openid="openid-1")

    ids = [
        client.post(LOGIN, json={"code": code, "app_id": app_id}).get_json()["user"]["id"]
        for code, app_id in (("a1", "wx-brand-a"), ("a2", "wx-brand-a"), ("b1", "wx-brand-b"))
    ]

    assert len(set(ids)) == 3
    assert count(app, User) == 3
    assert count(app, WeChatAccount) == 3


def test_different_unionids_are_different_shoppers(client, app, fake_wechat):
    fake_wechat.issue_code("a1", openid="openid-1", unionid="union-1")
    fake_wechat.issue_code("b1", openid="openid-2", unionid="union-2")

    first = client.post(LOGIN, json={"code": "a1", "app_id": "wx-brand-a"}).get_json()
    second = client.post(LOGIN, json={"code": "b1", "app_id": "wx-brand-b"}).get_json()

    assert first["user"]["id"] != second["user"]["id"]
    assert count(app, User) == 2


@pytest.mark.parametrize(
    ("code", "status", "problem_code", "errcode"),
    [
        ("never-issued", 401, "auth.wechat_code_invalid", 40029),
        ("rate-limited", 429, "auth.wechat_rate_limited", 45011),
        ("high-risk", 403, "auth.wechat_user_blocked", 40226),
        ("system-busy", 503, "auth.wechat_busy", -1),
    ],
)
def test_wechat_error_codes_become_problems_and_write_nothing(client, app, code, status, problem_code, errcode):
    resp = client.post(LOGIN, json={"code": code})

    body = assert_problem(resp, status, problem_code)
    assert body["wechat_errcode"] == errcode
    if status in (429, 503):
        assert int(resp.headers["Retry-After"]) > 0
    else:
        assert "Retry-After" not in resp.headers
    assert count(app, User) == 0
    assert count(app, WeChatAccount) == 0


def test_a_reused_code_is_rejected_and_adds_nobody(client, app, fake_wechat):
    fake_wechat.issue_code("c1", openid="openid-amy")
    assert client.post(LOGIN, json={"code": "c1"}).status_code == 200

    resp = client.post(LOGIN, json={"code": "c1"})

    body = assert_problem(resp, 401, "auth.wechat_code_used")
    assert body["wechat_errcode"] == 40163
    assert count(app, User) == 1
    assert count(app, WeChatAccount) == 1


def test_an_unknown_app_id_is_422_and_wechat_is_not_called(client, app, fake_wechat):
    fake_wechat.issue_code("c1", openid="openid-amy")

    resp = client.post(LOGIN, json={"code": "c1", "app_id": "wx-not-ours"})

    assert_problem(resp, 422, "auth.unknown_app")
    assert fake_wechat.requests == []
    assert count(app, User) == 0


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"code"}),
        ({"code": ""}, {"code"}),
        ({"code": 123}, {"code"}),
        ({"code": "c1", "surprise": 1}, {"surprise"}),
        ({"code": "c1", "app_id": ""}, {"app_id"}),
    ],
    ids=["missing-code", "empty-code", "numeric-code", "unknown-field", "empty-app-id"],
)
def test_a_malformed_login_request_is_422_with_field_errors(client, app, fake_wechat, body, fields):
    fake_wechat.issue_code("c1", openid="openid-amy")

    resp = client.post(LOGIN, json=body)

    problem = assert_problem(resp, 422, "request.invalid")
    assert {e["field"] for e in problem["errors"]} == fields
    assert fake_wechat.requests == []
    assert count(app, User) == 0


def test_wechat_unreachable_is_503_and_writes_nothing(app, make_app):
    unreachable = make_app(wechat_api_base="http://127.0.0.1:1")

    resp = unreachable.test_client().post(LOGIN, json={"code": "c1"})

    assert_problem(resp, 503, "auth.wechat_unreachable")
    assert int(resp.headers["Retry-After"]) > 0
    assert count(app, User) == 0


def test_a_wrong_app_secret_is_our_misconfiguration_503(app, make_app, fake_wechat):
    misconfigured = make_app(wechat_apps={"wx-brand-a": "not-the-secret"})
    fake_wechat.issue_code("c1", openid="openid-amy")

    resp = misconfigured.test_client().post(LOGIN, json={"code": "c1"})

    body = assert_problem(resp, 503, "auth.wechat_error")
    assert body["wechat_errcode"] == 40125
    assert "not-the-secret" not in resp.get_data(as_text=True)
    assert len(fake_wechat.requests) == 1
    assert count(app, User) == 0


def test_a_disabled_shopper_cannot_log_in(client, app, fake_wechat):
    fake_wechat.issue_code("c1", openid="openid-amy", session_key="sk-1")
    fake_wechat.issue_code("c2", openid="openid-amy", session_key="sk-2")
    user_id = client.post(LOGIN, json={"code": "c1"}).get_json()["user"]["id"]
    with app.app_context():
        db.session.execute(sa.update(User).where(User.id == user_id).values(status="disabled"))
        db.session.commit()

    resp = client.post(LOGIN, json={"code": "c2"})

    assert_problem(resp, 403, "auth.account_disabled")
    assert count(app, WeChatAccount, WeChatAccount.session_key == "sk-1") == 1  # the failed login wrote nothing


def _at_once(app, requests: list) -> list:
    """Send the requests from as many threads at the same moment; return the responses in order."""
    import threading

    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def send(i, request):
        client = app.test_client()
        barrier.wait()
        responses[i] = request(client)

    threads = [threading.Thread(target=send, args=(i, r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return responses


def test_concurrent_first_logins_of_one_shopper_make_one_shopper(client, app, fake_wechat):
    """wx.login() at launch can fire twice: both codes must end up at the same single shopper."""
    codes = [f"launch-{i}" for i in range(6)]
    for code in codes:
        fake_wechat.issue_code(code, openid="openid-amy")

    responses = _at_once(app, [lambda c, code=code: c.post(LOGIN, json={"code": code}) for code in codes])

    assert [r.status_code for r in responses] == [200] * len(codes), [r.get_json() for r in responses]
    assert len({r.get_json()["user"]["id"] for r in responses}) == 1
    assert count(app, User) == 1
    assert count(app, WeChatAccount) == 1
