"""The database connection drops in the middle of a request: a 503 problem with Retry-After (never a 500),
nothing the request wrote is left, and the next request works on a fresh connection."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.catalog.models import Sku
from mall.orders.models import Order
from tests.shop_helpers import Shop

WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@contextmanager
def connection_dropped_after_first_write(app):
    """The request's connection dies on the statement after its first write: PostgreSQL's backend is
    terminated (pg_terminate_backend, as a restart or a failover does); SQLite's driver fails with a
    disconnect. So the write before it sits in a transaction the database has to throw away."""
    with app.app_context():
        engine = db.engine
    state = {"writes": 0, "dropped": False}

    def before(conn, cursor, statement, params, context, executemany):
        if state["dropped"] or not state["writes"]:
            return
        state["dropped"] = True
        if engine.dialect.name == "postgresql":
            pid = conn.connection.dbapi_connection.info.backend_pid
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        else:
            raise sqlite3.OperationalError("disk I/O error: the connection is gone")

    def after(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith(WRITES) or " INSERT INTO " in statement.upper():
            state["writes"] += 1

    def mark_disconnect(context):
        if engine.dialect.name == "sqlite" and "connection is gone" in str(context.original_exception):
            context.is_disconnect = True

    hooks = {"before_cursor_execute": before, "after_cursor_execute": after, "handle_error": mark_disconnect}
    for name, fn in hooks.items():
        sa.event.listen(engine, name, fn)
    try:
        yield state
    finally:
        for name, fn in hooks.items():
            sa.event.remove(engine, name, fn)


def test_a_connection_dropped_mid_placement_is_a_503_that_wrote_nothing_and_the_retry_places_once(app, shop):
    """Guards api/errors.py's database-unavailable handler (OperationalError -> 503 + Retry-After, the
    session rolled back) and the pool's invalidation of a dead connection (the retry gets a live one)."""
    brand = shop.brand()
    sku = shop.sku(brand, price=5000, stock=10)
    me = shop.shopper()
    address = shop.address(me)
    line = shop.add(me, sku, 2)

    with connection_dropped_after_first_write(app) as dropped:
        resp = shop.place(me, [line], address, key="drop-1")
    assert dropped["dropped"]

    assert resp.status_code == 503, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "database.unavailable"
    assert int(resp.headers["Retry-After"]) > 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
        assert db.session.get(Sku, sku).stock == 10
    again = shop.place(me, [line], address, key="drop-1")  # the client retries with its key
    assert again.status_code == 201, again.get_json()
    assert shop.place(me, [line], address, key="drop-1").get_json()["id"] == again.get_json()["id"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 1
        assert db.session.get(Sku, sku).stock == 8
