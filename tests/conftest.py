"""Shared fixtures: one migrated database and one Redis per run, emptied after every test.

By default the run uses a temporary SQLite file and the embedded Redis. Set
TEST_DATABASE_URL / TEST_REDIS_URL to run the same suite on PostgreSQL and a real
Redis (`.ci/run` does); those must be throw-away: every test empties them.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from mall import clock
from mall.config import Settings
from mall.db import Base
from tests.fakes.wechat import FakeWeChat
from workers.embedded import EmbeddedRedis

WECHAT_APPS = {"wx-brand-a": "secret-a", "wx-brand-b": "secret-b"}
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "refund_audit: after the test, audit every order's refund columns against "
        "its refund ledger (tests/refund_audit.py)",
    )


def pytest_report_header(config):
    return f"database: {os.environ.get('TEST_DATABASE_URL', 'sqlite (temporary)')}; " \
           f"redis: {os.environ.get('TEST_REDIS_URL', 'embedded')}"  # fmt: skip


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"), die_with_parent=True).start()
    yield embedded.url
    embedded.stop()


@pytest.fixture(scope="session")
def fake_wechat():
    fake = FakeWeChat(WECHAT_APPS).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def settings(tmp_path_factory, redis_url, fake_wechat) -> Settings:
    database_url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'mall.db'}"
    return Settings.from_env(
        {}, env="test", secret_key=TEST_SECRET, database_url=database_url, redis_url=redis_url,
        wechat_api_base=fake_wechat.base_url, wechat_apps=WECHAT_APPS, wechat_default_app="wx-brand-a",
    )  # fmt: skip


@pytest.fixture
def rewire(app, settings):
    """Run the composition root again with some settings changed (the deployment's policies), as a
    process started with them would; the test's settings are wired back afterwards."""
    from dataclasses import replace

    from workers import runtime

    yield lambda **changes: runtime.configure(replace(settings, **changes))
    runtime.configure(settings)


@pytest.fixture(scope="session")
def app(settings):
    from flask_migrate import upgrade

    from api import create_app

    app = create_app(settings)
    with app.app_context():
        upgrade()  # the schema comes from the migrations, as in production
    return app


@pytest.fixture(autouse=True)
def _clean_state(request, fake_wechat):
    """Every test starts with empty tables, an empty Redis, the real clock, and jobs bound to the test
    database (a test that built another app, e.g. on a scratch database, rebinds the process-wide runtime)."""
    if "app" in request.fixturenames:
        from workers import runtime

        runtime.configure(request.getfixturevalue("app").extensions["mall.settings"])
    yield
    clock.reset()
    fake_wechat.reset()
    if "app" in request.fixturenames:
        app = request.getfixturevalue("app")
        with app.app_context():
            _empty_tables(app)
        from workers.connection import get_redis

        get_redis(app.extensions["mall.settings"]).flushdb()


@pytest.fixture(autouse=True)
def _refund_audit(request, _clean_state):
    """Tests marked `refund_audit`: once the test is done (before the tables are emptied), every order's refunds
    must add up (tests/refund_audit.py)."""
    yield
    if request.node.get_closest_marker("refund_audit") is None or "app" not in request.fixturenames:
        return
    from api.extensions import db
    from tests.refund_audit import audit

    with request.getfixturevalue("app").app_context():
        db.session.remove()
        found = audit(db.session)
        db.session.remove()
    assert found == [], f"refund columns disagree with the refund ledger: {found}"


def _empty_tables(app) -> None:
    from api.extensions import db

    db.session.remove()
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:  # DELETE beats TRUNCATE's fixed cost per table on tiny test tables
        for name in tables:
            conn.execute(sa.text(f"DELETE FROM {name}"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    """The Flask-SQLAlchemy session inside an app context, for service-level tests."""
    from api.extensions import db

    with app.app_context():
        yield db.session
        db.session.rollback()


class Login:
    """Dev-login helper: `login("brand_admin", brand_id=b)` -> Authorization headers."""

    def __init__(self, client):
        self.client = client

    def __call__(self, role: str = "shopper", name: str | None = None, brand_id: int | None = None) -> dict:
        body = {"role": role, "name": name or f"test-{role}-{brand_id or 0}"}
        if brand_id is not None:
            body["brand_id"] = brand_id
        resp = self.client.post("/api/v1/auth/dev", json=body)
        assert resp.status_code == 200, resp.json
        return {"Authorization": f"Bearer {resp.json['token']}"}


@pytest.fixture
def login(client) -> Login:
    return Login(client)
