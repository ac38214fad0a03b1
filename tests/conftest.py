"""Shared fixtures: one migrated database and one Redis per test process, emptied after every test.

Where the tests keep their data:

- Default (`make test`): a temporary SQLite file and an embedded Redis, per process. Under pytest-xdist every
  worker has its own of both: nothing is shared, so the suite runs on all cores (`-n auto --maxprocesses 4`).
- TEST_DATABASE_URL / TEST_REDIS_URL (`make test-pg`, `.ci/run`): PostgreSQL and a real Redis, both throw-away
  (every test empties them; the database is created if missing).
  - Serially (no `-n`): the tests use that database and that Redis db as given.
  - Under xdist (`-n N`): the controller migrates the named database once, empties its tables, and leaves it
    unused as a template; worker gwK works on its own database `<name>_gwK`, created as a copy of it at the
    start of its session (CREATE DATABASE ... TEMPLATE: ~0.3 s, against ~10 s of migrations per worker) and
    dropped at its end, and on Redis db n+K, n being TEST_REDIS_URL's db (beyond db 15 is refused: lower n).
    Workers never see each other's rows, keys or RQ queues; the PostgreSQL advisory locks are per database too.
  - What a Redis db number does not separate is pub/sub: a channel is seen by every db. Tests that subscribe
    (the live stream's `live:room:*`) are marked `serial`; under xdist against a real Redis they are skipped,
    and `make test-pg` runs them afterwards in a second, serial pass (`-m serial`) on the named database.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

from mall import clock
from mall.config import Settings
from mall.db import Base
from tests.fakes.wechat import FakeWeChat
from workers.embedded import EmbeddedRedis

WECHAT_APPS = {"wx-brand-a": "secret-a", "wx-brand-b": "secret-b"}
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256"


MAX_REDIS_DB = 15  # Redis' default `databases 16`
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"...: set in xdist workers only


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "refund_audit: after the test, audit every order's refund columns against "
        "its refund ledger (tests/refund_audit.py)",
    )
    config.addinivalue_line(
        "markers",
        "serial: shares what Redis db numbers do not separate (pub/sub channels): on a real Redis it runs alone, "
        "in the serial pass of `make test-pg` (`-m serial`), and is skipped under xdist",
    )
    workers = getattr(config.option, "numprocesses", None) or 0  # xdist has resolved "auto" to a number by now
    if workers and not hasattr(config, "workerinput"):  # the xdist controller, before its workers start
        _check_redis_dbs(workers)
        if os.environ.get("TEST_DATABASE_URL"):
            _prepare_template(os.environ["TEST_DATABASE_URL"])


def pytest_collection_modifyitems(config, items):
    if not (WORKER and os.environ.get("TEST_REDIS_URL")):
        return
    skip = pytest.mark.skip(reason="sees other xdist workers' Redis pub/sub: runs in the serial pass (-m serial)")
    for item in items:
        if item.get_closest_marker("serial"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """The schemathesis run's figures (tests/api/test_schema_fuzz.py records one line per role)."""
    # stats hold test reports and, for collection errors and warnings, other objects (no `when`)
    lines = [value for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, value in getattr(report, "user_properties", ()) if name == "fuzz"]  # fmt: skip
    if lines:
        terminalreporter.write_sep("-", "schemathesis against /api/openapi.json")
        for line in sorted(lines):
            terminalreporter.write_line(line)


def pytest_report_header(config):
    per_worker = (
        "; under xdist per worker gwK: <database>_gwK, redis db n+K" if os.environ.get("TEST_DATABASE_URL") else ""
    )
    return f"database: {os.environ.get('TEST_DATABASE_URL', 'sqlite (temporary)')}; " \
           f"redis: {os.environ.get('TEST_REDIS_URL', 'embedded')}{per_worker}"  # fmt: skip


# PostgreSQL and Redis per xdist worker (see the module's docstring) ------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):  # it is spliced into CREATE/DROP DATABASE
        raise pytest.UsageError(
            f"TEST_DATABASE_URL: name the database in lower-case letters, digits and _, not {name!r}"
        )
    return name


def _admin(url: str, *statements: str) -> None:
    """Run statements on the server's maintenance database `postgres` (CREATE/DROP DATABASE cannot run inside
    the database they name, nor while anyone is connected to a template being copied)."""
    import psycopg

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _ensure_database(url: str) -> None:
    import psycopg

    name = _database_name(url)
    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {name}")


def _prepare_template(url: str) -> None:
    """In the xdist controller, before the workers start: the named database migrated to head and emptied, then
    left without a connection so that the workers can copy it."""
    from flask_migrate import upgrade

    from api import create_app
    from api.extensions import db

    _ensure_database(url)
    app = create_app(Settings.from_env({}, env="test", secret_key=TEST_SECRET, database_url=url,
                                       redis_url=os.environ.get("TEST_REDIS_URL", "")))  # fmt: skip
    log = io.StringIO()  # Alembic's INFO lines, shown only if the migration fails (as pytest shows a test's)
    with app.app_context():
        try:
            with contextlib.redirect_stderr(log):
                upgrade()
        except BaseException:
            sys.stderr.write(log.getvalue())
            raise
        _empty_tables(app)  # left behind by an interrupted run, they would be in every copy
        db.session.remove()
        db.engine.dispose()


def _redis_db(url: str) -> int:
    from redis.connection import parse_url

    return int(parse_url(url).get("db") or 0)


def _check_redis_dbs(workers: int) -> None:
    url = os.environ.get("TEST_REDIS_URL")
    if url and _redis_db(url) + workers - 1 > MAX_REDIS_DB:
        raise pytest.UsageError(
            f"TEST_REDIS_URL is db {_redis_db(url)}: {workers} xdist workers would need dbs up to "
            f"{_redis_db(url) + workers - 1}, beyond {MAX_REDIS_DB}; pick a db of at most {MAX_REDIS_DB - workers + 1}"
        )


def _worker_redis_url(url: str, index: int) -> str:
    """TEST_REDIS_URL with db n + index (in the path, or in `?db=` for a unix socket URL)."""
    db = _redis_db(url) + index
    if db > MAX_REDIS_DB:
        raise pytest.UsageError(f"xdist worker gw{index} would use Redis db {db}, beyond {MAX_REDIS_DB}")
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(db))]
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'mall.db'}"
        return
    if not WORKER:
        _ensure_database(url)
        yield url
        return
    template, mine = _database_name(url), f"{_database_name(url)}_{WORKER}"
    _admin(url, f"DROP DATABASE IF EXISTS {mine} WITH (FORCE)", f"CREATE DATABASE {mine} TEMPLATE {template}")
    yield _with_database(url, mine)
    _admin(url, f"DROP DATABASE IF EXISTS {mine} WITH (FORCE)")  # FORCE: connections of apps tests built


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if os.environ.get("TEST_REDIS_URL"):
        url = os.environ["TEST_REDIS_URL"]
        if WORKER:
            url = _worker_redis_url(url, int(WORKER.removeprefix("gw")))
        import redis

        with redis.Redis.from_url(url) as client:
            client.flushdb()  # throw-away: whatever an interrupted run left
        yield url
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
def settings(database_url, redis_url, fake_wechat) -> Settings:
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
