"""Every column of orders, sub_orders and order_lines is written by the placement, identically on both paths
(PostgreSQL's one statement and the table-by-table INSERTs), so a new attribution, bundle or points column
cannot be dropped silently by one of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import attribution, clock
from mall.attribution import Source, SourceType
from mall.orders import creation
from mall.orders.models import Order, OrderLine, SubOrder
from tests.api.test_bundle_orders import add_bundle, bundle  # noqa: F401 (a fixture)
from tests.conftest import TEST_SECRET
from tests.shop_helpers import Shop
from tests.test_order_writing import write

TABLES = (Order.__table__, SubOrder.__table__, OrderLine.__table__)
# Given by the database or by the parent row: not values a placement chooses.
GENERATED = {"id", "number", "order_id", "sub_order_id"}
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
LIVE = ("live_room_id", "live_host_id", "live_segment_id", "live_link_id", "live_touch")


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def _live_token() -> str:
    """A live link opened now: the line gets every live column (room, host, segment, link, touch)."""
    refs = {"room_id": 3, "host_id": 9, "segment_id": 5, "link_id": 7, "opened_at": clock.now().isoformat()}
    return attribution.sign(Source(SourceType.LIVE, refs), secret=TEST_SECRET)


def _place(shop, me, skus, bundle_id=None) -> int:
    lines = [shop.add(me, skus[0], 2, source_token=_live_token()), shop.add(me, skus[1], 1)]
    if bundle_id is not None:  # the bundle's parts: lines with bundle_id and bundle_quantity set
        lines.append(add_bundle(shop, me, bundle_id, 2)["id"])
    order = write(shop.user_id(me), shop.address(me), lines)
    db.session.commit()
    return order.id


def _rows(order_id: int) -> dict:
    """Every column of the order's rows, by table, without the generated ones; lines in SKU and bundle order."""
    orders, subs, lines = TABLES
    found = {}
    for table, where, order_by in ((orders, orders.c.id == order_id, [orders.c.id]),
                                   (subs, subs.c.order_id == order_id, [subs.c.brand_id]),
                                   (lines, lines.c.order_id == order_id, [lines.c.sku_id, lines.c.bundle_id])):  # fmt: skip
        rows = db.session.execute(sa.select(table).where(where).order_by(*order_by)).mappings().all()
        found[table.name] = [{k: v for k, v in row.items() if k not in GENERATED} for row in rows]
    return found


def test_every_column_is_in_the_one_list_both_paths_take():
    """A column added to a model but not to creation.WRITTEN (nor given by the database) fails here."""
    for table in TABLES:
        listed = set(creation.WRITTEN[table.name])
        generated = set(creation.GENERATED[table.name])
        assert listed.isdisjoint(generated), table.name
        assert listed | generated == {c.name for c in table.columns}, table.name


def test_the_one_statement_is_generated_from_the_lists(app):
    with app.app_context():
        sql = creation._write_order_sql()
    for table in TABLES:
        for name in creation.WRITTEN[table.name]:
            assert f"u.{name}" in sql, (table.name, name)
    assert creation._write_order_sql() is sql  # built once


def test_the_table_by_table_path_is_given_a_value_for_every_column(app, shop, monkeypatch):
    given = {}
    real_many, real_order = creation._insert_many, creation._insert_order_row

    def spy_many(session, model, rows):
        given[model.__tablename__] = set().union(*rows) - GENERATED
        return real_many(session, model, rows)

    def spy_order(session, values, now):
        given["orders"] = set(values)
        return real_order(session, values, now)

    monkeypatch.setattr(creation, "_fits_one_statement", lambda *a: False)
    monkeypatch.setattr(creation, "_insert_many", spy_many)
    monkeypatch.setattr(creation, "_insert_order_row", spy_order)
    me, skus = shop.shopper(), [shop.sku(shop.brand(), price=1000), shop.sku(shop.brand(), price=700)]
    with app.app_context():
        _place(shop, me, skus)

    for table in TABLES:
        assert given[table.name] == {c.name for c in table.columns} - GENERATED, table.name
        assert given[table.name] == set(creation.WRITTEN[table.name]), table.name


def test_both_placement_paths_write_every_column_alike(app, shop, bundle, monkeypatch):  # noqa: F811
    me, skus = shop.shopper(), [shop.sku(shop.brand(), price=1000), shop.sku(shop.brand(), price=700)]
    clock.freeze(NOW)
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("one path only: the one-statement placement is PostgreSQL's")
        one_statement = _place(shop, me, skus, bundle[0])
        monkeypatch.setattr(creation, "_fits_one_statement", lambda *a: False)
        table_by_table = _place(shop, me, skus, bundle[0])
        db.session.expire_all()

        written = _rows(one_statement)
        assert written == _rows(table_by_table)
        assert {(line["bundle_id"], line["bundle_quantity"]) for line in written["order_lines"]} == {
            (None, None),
            (bundle[0], 2),
        }
        assert {tuple(line[c] for c in LIVE) for line in written["order_lines"]} == {
            (3, 9, 5, 7, "direct"),
            (None,) * 5,
        }
        assert db.session.get(Order, table_by_table).number.endswith(f"{table_by_table:010d}")
