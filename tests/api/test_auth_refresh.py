"""Short-lived access tokens with refresh, revocation of one token or of all, disabled accounts, and the tokens
that must be refused (ADR 0032)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.identity.models import RefreshToken, User
from tests.api.test_auth_tokens import ME, PASSWORD, STAFF_PASSWORD, _forge, assert_problem, bearer, create_staff
from tests.conftest import TEST_SECRET

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
DAY = timedelta(days=1)


@pytest.fixture
def host(client, login) -> dict:
    """A host with a password; `host["login"]()` logs in (a new family each time)."""
    created = create_staff(client, login("platform_admin", name="root"), role="host", email="host@example.com")
    assert created.status_code == 201, created.get_json()
    credentials = {"email": "host@example.com", "password": STAFF_PASSWORD}

    def log_in() -> dict:
        resp = client.post(PASSWORD, json=credentials)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    return {"id": created.get_json()["id"], "login": log_in, "credentials": credentials}


def refresh(client, token: str):
    return client.post(REFRESH, json={"refresh_token": token})


def works(client, answer: dict) -> bool:
    return client.get(ME, headers=bearer(answer["token"])).status_code == 200


# ---- access tokens and refresh -----------------------------------------------------------------------


def test_a_login_answers_a_short_lived_access_token_and_a_refresh_token(client, app, host):
    answer = host["login"]()

    assert (answer["token_type"], answer["expires_in"], answer["refresh_expires_in"]) == ("Bearer", 900, 30 * 86400)
    assert works(client, answer)
    with app.app_context():  # only its hash is kept
        stored = db.session.scalars(sa.select(RefreshToken.token_hash).filter_by(user_id=host["id"])).all()
    assert len(stored) == 1 and answer["refresh_token"] not in stored[0]
    clock.advance(timedelta(minutes=15))
    assert_problem(client.get(ME, headers=bearer(answer["token"])), 401, "auth.token_expired")

    renewed = refresh(client, answer["refresh_token"])

    assert renewed.status_code == 200, renewed.get_json()
    body = renewed.get_json()
    assert body["expires_in"] == 900 and body["user"]["id"] == host["id"]
    assert body["refresh_token"] != answer["refresh_token"] and works(client, body)


def test_a_used_refresh_token_shown_again_revokes_its_whole_login(client, host):
    stolen = host["login"]()
    other_device = host["login"]()
    first = refresh(client, stolen["refresh_token"]).get_json()
    second = refresh(client, first["refresh_token"]).get_json()
    assert works(client, second)

    replay = refresh(client, stolen["refresh_token"])

    assert_problem(replay, 401, "auth.refresh_reused")
    assert_problem(refresh(client, second["refresh_token"]), 401, "auth.refresh_invalid")  # the newest too
    assert_problem(client.get(ME, headers=bearer(second["token"])), 401, "auth.token_revoked")  # at once
    assert_problem(client.get(ME, headers=bearer(first["token"])), 401, "auth.token_revoked")
    assert works(client, other_device)  # another login of the same user is untouched
    assert refresh(client, other_device["refresh_token"]).status_code == 200


def test_an_unused_refresh_token_expires_and_a_login_ends_at_its_absolute_limit(client, host):
    clock.freeze(clock.now())
    idle = host["login"]()
    kept = host["login"]()
    clock.advance(30 * DAY)
    assert_problem(refresh(client, idle["refresh_token"]), 401, "auth.refresh_expired")
    clock.advance(-30 * DAY)

    for _ in range(3):  # used every 29 days: it slides, up to 90 days after the login
        clock.advance(29 * DAY)
        kept = refresh(client, kept["refresh_token"]).get_json()
        assert "refresh_token" in kept, kept
    assert kept["refresh_expires_in"] == 3 * 86400
    clock.advance(3 * DAY)

    assert_problem(refresh(client, kept["refresh_token"]), 401, "auth.refresh_expired")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"refresh_token": "never-issued"}, 401, "auth.refresh_invalid"),
    ({}, 422, "request.invalid"),
    ({"refresh_token": ""}, 422, "request.invalid"),
])  # fmt: skip
def test_an_unknown_or_missing_refresh_token_is_refused(client, body, status, code):
    assert_problem(client.post(REFRESH, json=body), status, code)


def test_the_dev_login_has_a_refresh_token_and_a_longer_access_token(client):
    answer = client.post("/api/v1/auth/dev", json={"role": "shopper", "name": "amy"}).get_json()

    assert answer["expires_in"] == 7 * 86400
    assert refresh(client, answer["refresh_token"]).get_json()["expires_in"] == 900


# ---- revocation ---------------------------------------------------------------------------------------


def test_logout_revokes_that_token_and_its_login_only(client, host):
    phone, laptop = host["login"](), host["login"]()
    assert works(client, phone)  # its user's state is cached now

    assert client.post(LOGOUT, headers=bearer(phone["token"])).status_code == 204

    assert_problem(client.get(ME, headers=bearer(phone["token"])), 401, "auth.token_revoked")
    assert_problem(refresh(client, phone["refresh_token"]), 401, "auth.refresh_invalid")
    assert works(client, laptop)
    assert works(client, refresh(client, laptop["refresh_token"]).get_json())


def test_a_logout_that_cannot_reach_redis_is_503_and_revokes_nothing(client, host, monkeypatch):
    import redis

    from mall.identity.tokens import TokenCache

    answer = host["login"]()

    def down(self, tokens):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(TokenCache, "deny", down)
    assert_problem(client.post(LOGOUT, headers=bearer(answer["token"])), 503, "auth.revocation_unavailable")
    monkeypatch.undo()

    assert works(client, answer)
    assert refresh(client, answer["refresh_token"]).status_code == 200


def test_logout_all_revokes_refresh_tokens_too(client, host):
    phone, laptop = host["login"](), host["login"]()

    assert client.post("/api/v1/auth/logout-all", headers=bearer(laptop["token"])).status_code == 204

    for device in (phone, laptop):
        assert_problem(client.get(ME, headers=bearer(device["token"])), 401, "auth.token_revoked")
        assert_problem(refresh(client, device["refresh_token"]), 401, "auth.refresh_invalid")
    assert works(client, host["login"]())


# ---- disabling an account -------------------------------------------------------------------------------


def disable(client, headers, user_id, action="disable"):
    return client.post(f"/api/v1/admin/users/{user_id}/{action}", headers=headers)


def test_a_disabled_user_is_refused_at_once_everywhere_and_enabling_lets_them_log_in_again(client, login, host):
    answer = host["login"]()
    assert works(client, answer)
    root = login("platform_admin", name="root")

    resp = disable(client, root, host["id"])

    assert resp.status_code == 200 and resp.get_json()["status"] == "disabled"
    assert_problem(client.get(ME, headers=bearer(answer["token"])), 401, "auth.token_revoked")
    assert_problem(refresh(client, answer["refresh_token"]), 401, "auth.refresh_invalid")
    assert_problem(client.post(PASSWORD, json=host["credentials"]), 403, "auth.account_disabled")
    assert disable(client, root, host["id"]).get_json()["status"] == "disabled"  # again: no change

    enabled = disable(client, root, host["id"], "enable")

    assert enabled.status_code == 200 and enabled.get_json()["status"] == "active"
    assert_problem(client.get(ME, headers=bearer(answer["token"])), 401, "auth.token_revoked")  # stays revoked
    assert_problem(refresh(client, answer["refresh_token"]), 401, "auth.refresh_invalid")
    assert works(client, host["login"]())


def test_a_disabled_shopper_cannot_refresh(client, login):
    shopper = client.post("/api/v1/auth/dev", json={"role": "shopper", "name": "amy"}).get_json()

    assert disable(client, login("platform_admin"), shopper["user"]["id"]).status_code == 200

    assert_problem(refresh(client, shopper["refresh_token"]), 401, "auth.refresh_invalid")
    assert_problem(client.get(ME, headers=bearer(shopper["token"])), 401, "auth.token_revoked")


def _user_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(User.id).where(User.display_name == name))


def test_a_brand_admin_disables_only_their_own_brands_hosts_and_guides(client, app, login):
    root = login("platform_admin", name="root")
    brands = [client.post("/api/v1/admin/brands", json={"slug": s, "name": s}, headers=root).get_json()["id"]
              for s in ("alpha", "beta")]  # fmt: skip
    admin = login("brand_admin", name="admin-a", brand_id=brands[0])
    guide = login("guide", name="own-guide", brand_id=brands[0])
    for name, role, brand in [("other-guide", "guide", 1), ("peer", "brand_admin", 0), ("amy", "shopper", None)]:
        login(role, name=name, brand_id=None if brand is None else brands[brand])

    assert disable(client, admin, _user_id(app, "own-guide")).status_code == 200
    assert_problem(client.get(ME, headers=guide), 401, "auth.token_revoked")
    for name in ("other-guide", "peer", "amy", "root"):
        assert_problem(disable(client, admin, _user_id(app, name)), 404, "user.not_found")
    assert_problem(disable(client, admin, _user_id(app, "admin-a")), 404, "user.not_found")
    assert_problem(disable(client, root, _user_id(app, "root")), 409, "user.self_disable")
    assert_problem(disable(client, root, 999_999), 404, "user.not_found")
    with app.app_context():
        statuses = dict(db.session.execute(sa.select(User.display_name, User.status)).all())
    assert [n for n, s in statuses.items() if s != "active"] == ["own-guide"]


# ---- tokens that must be refused ------------------------------------------------------------------------


def _segment(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def _claims(**changes) -> dict:
    now = int(clock.now().timestamp())
    claims = {"sub": "1", "role": "platform_admin", "brand_id": None, "ver": 1, "iat": now, "exp": now + 600,
              "jti": "a-token-id"} | changes  # fmt: skip
    return {k: v for k, v in claims.items() if v is not ...}


@pytest.mark.parametrize(("token", "code"), [
    (lambda: _forge(algorithm="HS512"), "auth.token_invalid"),
    (lambda: _forge(algorithm="HS384"), "auth.token_invalid"),
    (lambda: bearer(f"{_segment({'alg': 'RS256', 'typ': 'JWT'})}.{_segment(_claims())}.c2ln"), "auth.token_invalid"),
    (lambda: bearer(f"{_segment({'alg': 'none'})}.{_segment(_claims())}."), "auth.token_invalid"),
    (lambda: bearer(f"{_segment({'alg': 'None'})}.{_segment(_claims())}."), "auth.token_invalid"),
    (lambda: bearer(jwt.encode(_claims(), TEST_SECRET, algorithm="HS256")[:-2] + "xx"), "auth.token_invalid"),
    (lambda: _forge(jti=...), "auth.token_invalid"),
    (lambda: _forge(ver=...), "auth.token_invalid"),
    (lambda: _forge(sub=...), "auth.token_invalid"),
    (lambda: _forge(jti=7), "auth.token_invalid"),
    (lambda: _forge(exp=int(clock.now().timestamp()) - 1), "auth.token_expired"),
    (lambda: _forge(sub="999999"), "auth.token_revoked"),  # no such user (deleted)
    (lambda: _forge(ver=2), "auth.token_revoked"),  # a version the user never had
], ids=["hs512", "hs384", "rs256-header", "alg-none", "alg-None", "bad-signature", "no-jti", "no-ver", "no-sub",
        "jti-not-text", "expired", "unknown-user", "other-version"])  # fmt: skip
@pytest.mark.filterwarnings("ignore:The HMAC key is")  # PyJWT's, forging HS384/HS512 with the HS256 secret
def test_forged_expired_and_foreign_tokens_are_refused(client, login, token, code):
    login("platform_admin")  # a user 1 exists on SQLite: only the token is wrong
    resp = client.get(ME, headers=token())

    assert_problem(resp, 401, code)
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="mall"')


def test_the_token_of_a_deleted_user_is_refused(client, app):
    answer = client.post("/api/v1/auth/dev", json={"role": "shopper", "name": "gone"}).get_json()
    assert works(client, answer)
    with app.app_context():
        db.session.delete(db.session.get(User, answer["user"]["id"]))  # its refresh tokens go with it
        db.session.commit()

    assert_problem(client.get(ME, headers=bearer(answer["token"])), 401, "auth.token_revoked")
    assert_problem(refresh(client, answer["refresh_token"]), 401, "auth.refresh_invalid")
