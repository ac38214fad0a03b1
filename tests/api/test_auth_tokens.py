"""Dev and password logins, staff accounts, token expiry and revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.identity.models import User
from tests.conftest import TEST_SECRET

DEV = "/api/v1/auth/dev"
PASSWORD = "/api/v1/auth/password"
STAFF = "/api/v1/admin/staff"
ME = "/api/v1/me"
STAFF_PASSWORD = "correct-horse-battery"


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def brands(client, login) -> list[int]:
    admin = login("platform_admin", name="root")
    ids = []
    for slug in ("alpha", "beta"):
        resp = client.post("/api/v1/admin/brands", json={"slug": slug, "name": slug.title()}, headers=admin)
        assert resp.status_code == 201, resp.get_json()
        ids.append(resp.get_json()["id"])
    return ids


# ---- dev login ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "needs_brand"),
    [("shopper", False), ("host", False), ("guide", True), ("brand_admin", True), ("platform_admin", False)],
)
def test_dev_login_issues_a_working_token_for_every_role(client, brands, role, needs_brand):
    body = {"role": role, "name": f"dev-{role}"} | ({"brand_id": brands[0]} if needs_brand else {})

    resp = client.post(DEV, json=body)

    assert resp.status_code == 200, resp.get_json()
    me = client.get(ME, headers=bearer(resp.get_json()["token"]))
    assert me.status_code == 200
    assert me.get_json()["role"] == role
    assert me.get_json()["brand_id"] == (brands[0] if needs_brand else None)


def test_dev_login_by_the_same_name_and_role_is_the_same_user(client, app):
    first = client.post(DEV, json={"role": "shopper", "name": "amy"}).get_json()
    second = client.post(DEV, json={"role": "shopper", "name": "amy"}).get_json()

    assert first["user"]["id"] == second["user"]["id"]
    assert count(app, User) == 1


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"role": "guide", "name": "g"}, "auth.brand_required", "brand_id"),
        ({"role": "brand_admin", "name": "b"}, "auth.brand_required", "brand_id"),
        ({"role": "shopper", "name": "s", "brand_id": "BRAND"}, "auth.brand_not_allowed", "brand_id"),
        ({"role": "platform_admin", "name": "p", "brand_id": "BRAND"}, "auth.brand_not_allowed", "brand_id"),
        ({"role": "guide", "name": "g", "brand_id": 999_999}, "auth.brand_unknown", "brand_id"),
        ({"role": "emperor", "name": "e"}, "request.invalid", "role"),
        ({"role": "shopper"}, "request.invalid", "name"),
        ({"role": "shopper", "name": "s", "admin": True}, "request.invalid", "admin"),
    ],
)
def test_dev_login_rejects_bad_requests_and_creates_no_user(client, app, brands, body, code, field):
    users_before = count(app, User)
    if body.get("brand_id") == "BRAND":
        body = body | {"brand_id": brands[0]}

    resp = client.post(DEV, json=body)

    problem = assert_problem(resp, 422, code)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert count(app, User) == users_before


@pytest.fixture
def production_app(settings):
    from api import create_app
    from mall.config import Settings

    prod = Settings.from_env(
        {}, env="production", secret_key="p" * 40, database_url=settings.database_url, redis_url=settings.redis_url
    )
    app = create_app(prod)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    "body",
    [{"role": "platform_admin", "name": "intruder"}, {}, {"role": "nope", "name": ""}],
    ids=["valid", "empty", "invalid"],
)
def test_dev_login_does_not_exist_in_production(app, production_app, body):
    resp = production_app.test_client().post(DEV, json=body)

    assert_problem(resp, 404, "route.not_found")
    assert count(app, User) == 0


# ---- password login and staff accounts -----------------------------------------------------------


def create_staff(client, headers, **body):
    body = {"name": "staff", "password": STAFF_PASSWORD} | body
    return client.post(STAFF, json=body, headers=headers)


def test_staff_log_in_with_their_password(client, app, login, brands):
    created = create_staff(
        client, login("platform_admin"), role="brand_admin", email="Ops@Example.com", brand_id=brands[0]
    )
    assert created.status_code == 201, created.get_json()
    assert STAFF_PASSWORD not in created.get_data(as_text=True)
    assert "password" not in created.get_json()

    resp = client.post(PASSWORD, json={"email": "ops@example.COM ", "password": STAFF_PASSWORD})

    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["user"]["id"] == created.get_json()["id"]
    me = client.get(ME, headers=bearer(resp.get_json()["token"])).get_json()
    assert (me["role"], me["brand_id"]) == ("brand_admin", brands[0])
    with app.app_context():
        user = db.session.get(User, me["id"])
        assert user.email == "ops@example.com"
        assert user.password_hash and STAFF_PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ops@example.com", "password": "wrong-password"},
        {"email": "nobody@example.com", "password": STAFF_PASSWORD},
    ],
    ids=["wrong-password", "unknown-email"],
)
def test_a_bad_password_login_is_401_and_says_the_same_either_way(client, login, body):
    assert create_staff(client, login("platform_admin"), role="host", email="ops@example.com").status_code == 201

    resp = client.post(PASSWORD, json=body)

    problem = assert_problem(resp, 401, "auth.bad_credentials")
    assert problem["detail"] == "Email or password is wrong."
    assert "token" not in problem


def test_a_shopper_has_no_password_to_log_in_with(client, fake_wechat):
    fake_wechat.issue_code("c1", openid="openid-amy")
    assert client.post("/api/v1/auth/wechat", json={"code": "c1"}).status_code == 200

    resp = client.post(PASSWORD, json={"email": "amy@example.com", "password": "anything-at-all"})

    assert_problem(resp, 401, "auth.bad_credentials")


@pytest.mark.parametrize("who", ["unknown-email", "wrong-password", "disabled", "no-password"])
def test_every_failed_password_login_verifies_one_hash(client, app, login, monkeypatch, who):
    """The same work whoever asks, so timing does not tell which emails have an account."""
    from mall.identity import services

    created = create_staff(client, login("platform_admin"), role="host", email="host@example.com").get_json()
    changes = {"disabled": {"status": "disabled"}, "no-password": {"password_hash": None}}.get(who)
    if changes:
        with app.app_context():
            db.session.execute(sa.update(User).where(User.id == created["id"]).values(**changes))
            db.session.commit()
    calls = []
    real = services.check_password_hash
    monkeypatch.setattr(services, "check_password_hash", lambda *a: calls.append(a) or real(*a))
    email = "nobody@example.com" if who == "unknown-email" else "host@example.com"

    resp = client.post(PASSWORD, json={"email": email, "password": "wrong-password"})

    assert_problem(resp, 401, "auth.bad_credentials")
    assert len(calls) == 1


def test_a_disabled_staff_member_cannot_log_in(client, app, login):
    created = create_staff(client, login("platform_admin"), role="host", email="host@example.com").get_json()
    with app.app_context():
        db.session.execute(sa.update(User).where(User.id == created["id"]).values(status="disabled"))
        db.session.commit()

    resp = client.post(PASSWORD, json={"email": "host@example.com", "password": STAFF_PASSWORD})

    assert_problem(resp, 403, "auth.account_disabled")


@pytest.mark.parametrize(
    ("role", "brand"),
    [("host", None), ("host", 0), ("guide", 0), ("brand_admin", 1), ("platform_admin", None)],
)
def test_a_platform_admin_creates_any_staff(client, app, login, brands, role, brand):
    brand_id = None if brand is None else brands[brand]

    resp = create_staff(client, login("platform_admin"), role=role, email=f"{role}@example.com", brand_id=brand_id)

    assert resp.status_code == 201, resp.get_json()
    assert (resp.get_json()["role"], resp.get_json()["brand_id"]) == (role, brand_id)
    assert count(app, User, User.email == f"{role}@example.com", User.role == role) == 1


@pytest.mark.parametrize("role", ["host", "guide"])
def test_a_brand_admin_creates_hosts_and_guides_of_their_own_brand(client, app, login, brands, role):
    admin = login("brand_admin", brand_id=brands[0])

    resp = create_staff(client, admin, role=role, email=f"{role}@example.com", brand_id=brands[0])

    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["brand_id"] == brands[0]
    login_resp = client.post(PASSWORD, json={"email": f"{role}@example.com", "password": STAFF_PASSWORD})
    assert login_resp.status_code == 200


@pytest.mark.parametrize(
    ("role", "brand"),
    [
        ("brand_admin", 0),
        ("platform_admin", None),
        ("host", 1),
        ("guide", 1),
        ("host", None),
    ],
    ids=["brand-admin", "platform-admin", "host-of-other-brand", "guide-of-other-brand", "host-of-no-brand"],
)
def test_a_brand_admin_cannot_create_other_staff(client, app, login, brands, role, brand):
    admin = login("brand_admin", brand_id=brands[0])
    brand_id = None if brand is None else brands[brand]
    users_before = count(app, User)

    resp = create_staff(client, admin, role=role, email="new@example.com", brand_id=brand_id)

    assert_problem(resp, 403, "staff.forbidden")
    assert count(app, User) == users_before


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"role": "shopper", "email": "s@example.com"}, 422, "request.invalid", "role"),
        ({"role": "host", "email": "not-an-email"}, 422, "request.invalid", "email"),
        ({"role": "host", "email": "h@example.com", "password": "short"}, 422, "request.invalid", "password"),
        ({"role": "host", "email": "h@example.com", "name": "  "}, 422, "request.invalid", "name"),
        ({"role": "guide", "email": "g@example.com"}, 422, "auth.brand_required", "brand_id"),
        ({"role": "platform_admin", "email": "p@x.io", "brand_id": 1}, 422, "auth.brand_not_allowed", "brand_id"),
        ({"role": "host", "email": "TAKEN@example.com"}, 422, "staff.email_taken", "email"),
    ],
    ids=[
        "shopper",
        "bad-email",
        "short-password",
        "blank-name",
        "guide-without-brand",
        "admin-with-brand",
        "email-taken",
    ],
)
def test_invalid_staff_requests_are_422_and_create_nobody(client, app, login, brands, body, status, code, field):
    admin = login("platform_admin")
    assert create_staff(client, admin, role="host", email="taken@example.com").status_code == 201
    if "brand_id" in body:
        body = body | {"brand_id": brands[0]}
    users_before = count(app, User)

    resp = create_staff(client, admin, **body)

    problem = assert_problem(resp, status, code)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert count(app, User) == users_before


# ---- tokens ---------------------------------------------------------------------------------------


def test_a_token_expires_after_its_ttl(client, login):
    headers = login("shopper")
    clock.advance(timedelta(days=7) - timedelta(minutes=1))
    assert client.get(ME, headers=headers).status_code == 200

    clock.advance(timedelta(minutes=2))

    assert_problem(client.get(ME, headers=headers), 401, "auth.token_expired")


def test_a_token_issued_after_the_clock_moved_forward_works(client, login):
    clock.advance(timedelta(days=30))

    headers = login("shopper")

    assert client.get(ME, headers=headers).status_code == 200


def test_a_token_issued_on_a_frozen_past_clock_expires_on_that_clock(client, login):
    clock.freeze(datetime(2025, 1, 1, tzinfo=UTC))
    headers = login("shopper")
    assert client.get(ME, headers=headers).status_code == 200

    clock.advance(timedelta(days=8))

    assert_problem(client.get(ME, headers=headers), 401, "auth.token_expired")


def test_logout_all_revokes_every_earlier_token(client, login):
    admin = login("platform_admin")
    assert create_staff(client, admin, role="host", email="host@example.com").status_code == 201
    credentials = {"email": "host@example.com", "password": STAFF_PASSWORD}
    phone = bearer(client.post(PASSWORD, json=credentials).get_json()["token"])
    clock.advance(timedelta(seconds=5))
    laptop = bearer(client.post(PASSWORD, json=credentials).get_json()["token"])
    assert client.get(ME, headers=phone).status_code == 200

    resp = client.post("/api/v1/auth/logout-all", headers=laptop)

    assert resp.status_code == 204
    assert_problem(client.get(ME, headers=phone), 401, "auth.token_revoked")
    assert_problem(client.get(ME, headers=laptop), 401, "auth.token_revoked")
    fresh = bearer(client.post(PASSWORD, json=credentials).get_json()["token"])
    assert client.get(ME, headers=fresh).status_code == 200
    assert client.get(ME, headers=admin).status_code == 200  # other people's tokens are untouched


def test_logout_all_works_for_shoppers_logged_in_with_wechat(client, fake_wechat):
    fake_wechat.issue_code("c1", openid="openid-amy")
    fake_wechat.issue_code("c2", openid="openid-amy")
    old = bearer(client.post("/api/v1/auth/wechat", json={"code": "c1"}).get_json()["token"])

    assert client.post("/api/v1/auth/logout-all", headers=old).status_code == 204

    assert_problem(client.get(ME, headers=old), 401, "auth.token_revoked")
    new = bearer(client.post("/api/v1/auth/wechat", json={"code": "c2"}).get_json()["token"])
    assert client.get(ME, headers=new).status_code == 200


def _forge(secret: str = TEST_SECRET, algorithm: str = "HS256", **claims) -> dict:
    now = int(clock.now().timestamp())
    payload = {"sub": "1", "role": "platform_admin", "brand_id": None, "ver": 1, "iat": now, "exp": now + 3600,
               "jti": "forged-token-id"}  # fmt: skip
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not ...}
    return bearer(jwt.encode(payload, secret, algorithm=algorithm))


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "auth.token_missing"),
        ({"Authorization": ""}, "auth.token_missing"),
        ({"Authorization": "Bearer"}, "auth.token_missing"),
        ({"Authorization": "Bearer    "}, "auth.token_missing"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "auth.token_missing"),
        ({"Authorization": "Bearer not-a-jwt"}, "auth.token_invalid"),
        ({"Authorization": "Bearer a.b.c"}, "auth.token_invalid"),
        ("other-secret", "auth.token_invalid"),
        ("alg-none", "auth.token_invalid"),
        ("no-exp", "auth.token_invalid"),
        ("no-role", "auth.token_invalid"),
        ("exp-not-a-time", "auth.token_invalid"),
        ("sub-not-a-user-id", "auth.token_invalid"),
    ],
)
def test_missing_and_bad_tokens_are_401(client, login, headers, code):
    login("platform_admin")  # user 1 exists, so only the token itself is wrong
    forged = {
        "other-secret": lambda: _forge(secret="x" * 40),
        "alg-none": lambda: _forge(secret=None, algorithm="none"),
        "no-exp": lambda: _forge(exp=...),
        "no-role": lambda: _forge(role=...),
        "exp-not-a-time": lambda: _forge(exp="tomorrow"),
        "sub-not-a-user-id": lambda: _forge(sub="admin"),
    }
    if isinstance(headers, str):
        headers = forged[headers]()

    resp = client.get(ME, headers=headers)

    assert_problem(resp, 401, code)


def test_a_token_no_longer_matching_its_user_is_revoked(client, app, login, brands):
    moved = login("brand_admin", name="moved", brand_id=brands[0])
    promoted = login("shopper", name="promoted")
    gone = login("shopper", name="gone")
    kept = login("shopper", name="kept")
    with app.app_context():
        db.session.execute(sa.update(User).where(User.display_name == "moved").values(brand_id=brands[1]))
        db.session.execute(sa.update(User).where(User.display_name == "promoted").values(role="host"))
        db.session.execute(sa.delete(User).where(User.display_name == "gone"))
        db.session.commit()

    for headers in (moved, promoted, gone):
        assert_problem(client.get(ME, headers=headers), 401, "auth.token_revoked")
    assert client.get(ME, headers=kept).status_code == 200
