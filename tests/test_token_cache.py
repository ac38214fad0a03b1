"""The token cache is invalidated by changes to the columns it caches, and by nothing else: a bulk update of
levels or birthdays over many users must not write a tombstone per user into Redis."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.identity.models import User
from workers.connection import get_redis

ME = "/api/v1/me"


def _cached_users(app, client, login, names):
    headers = {name: login("shopper", name=name) for name in names}
    for h in headers.values():
        assert client.get(ME, headers=h).status_code == 200  # fills auth:user:{id}
    with app.app_context():
        ids = db.session.scalars(sa.select(User.id).where(User.display_name.in_(names))).all()
    return headers, ids


def _auth_keys(app) -> dict:
    redis = get_redis(app.extensions["mall.settings"])
    return {key: redis.get(key) for key in redis.scan_iter("auth:user:*")}


@pytest.mark.parametrize(
    "statement",
    [
        lambda ids: (sa.update(User).values(member_level=User.member_level + 1), None),
        lambda ids: (sa.update(User).where(User.id.in_(ids)).values(birthday=None), None),
        lambda ids: (sa.update(User), [{"id": i, "member_level": 4} for i in ids]),  # ORM bulk by primary key
    ],
    ids=["all-users", "where", "bulk-by-pk"],
)
def test_a_bulk_update_of_other_columns_touches_no_redis_key(app, client, login, statement):
    headers, ids = _cached_users(app, client, login, ["ann", "ben"])
    before = _auth_keys(app)
    with app.app_context():
        stmt, params = statement(ids)
        db.session.execute(stmt, params) if params else db.session.execute(stmt)
        db.session.commit()

    assert _auth_keys(app) == before  # the same keys with the same cached states: no tombstone written
    assert all(client.get(ME, headers=h).status_code == 200 for h in headers.values())


@pytest.mark.parametrize(
    "statement",
    [
        lambda ids: (sa.update(User).where(User.id.in_(ids)).values(status="disabled"), None),
        lambda ids: (sa.update(User).values(token_version=User.token_version + 1, member_level=1), None),
        lambda ids: (sa.update(User), [{"id": i, "role": "host"} for i in ids]),
    ],
    ids=["status", "version-among-others", "bulk-by-pk-role"],
)
def test_a_bulk_update_of_a_cached_column_revokes_at_once(app, client, login, statement):
    headers, ids = _cached_users(app, client, login, ["cat", "dan"])
    with app.app_context():
        stmt, params = statement(ids)
        db.session.execute(stmt, params) if params else db.session.execute(stmt)
        db.session.commit()

    for h in headers.values():
        resp = client.get(ME, headers=h)
        assert resp.status_code == 401 and resp.get_json()["code"] == "auth.token_revoked"


def test_flush_token_cache_makes_a_change_made_outside_the_orm_count_at_once(app, client, login):
    """psql (or a restored backup) disabled a user: the cache does not know until `flask mall flush-token-cache`."""
    from mall.notifications.wechat import RedisTokenCache

    by_name, (user_id,) = _cached_users(app, client, login, ["cleo"])
    headers = by_name["cleo"]
    with app.app_context():
        db.session.execute(sa.text("UPDATE users SET status = 'disabled' WHERE id = :id"), {"id": user_id})
        db.session.commit()
    assert client.get(ME, headers=headers).status_code == 200  # the cached state still lets the token in
    redis = get_redis(app.extensions["mall.settings"])
    wechat, app_id = RedisTokenCache(redis), next(iter(app.extensions["mall.settings"].wechat_apps))
    wechat.set(app_id, "OLD-TOKEN", 600)

    result = app.test_cli_runner().invoke(args=["mall", "flush-token-cache", "--wechat"])

    assert result.exit_code == 0 and "1 users' entries tombstoned" in result.output, result.output
    assert client.get(ME, headers=headers).status_code == 401
    assert wechat.get(app_id) is None
