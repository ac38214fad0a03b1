"""Stock reservations: all of an order's SKUs or none, refused with the SKU that ran short."""

from __future__ import annotations

import pytest

from api.extensions import db
from mall.errors import Conflict
from mall.inventory import services as inventory
from tests.shop_helpers import Shop


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def test_reserving_several_skus_takes_each_quantity(app, shop):
    brand = shop.brand()
    a, b = shop.sku(brand, price=100, stock=5), shop.sku(brand, price=100, stock=5)
    with app.app_context():
        inventory.reserve(db.session, {b: 2, a: 5})
        db.session.commit()
    assert (shop.stock(a), shop.stock(b)) == (0, 3)


def test_one_short_sku_refuses_the_whole_reservation_and_names_it(app, shop):
    brand = shop.brand()
    a, b, c = (shop.sku(brand, price=100, stock=s) for s in (5, 1, 5))
    with app.app_context():
        with pytest.raises(Conflict) as refused:
            inventory.reserve(db.session, {a: 1, b: 2, c: 1})
        db.session.rollback()
    assert refused.value.code == "stock.insufficient" and refused.value.extra["sku_id"] == b
    assert [shop.stock(s) for s in (a, b, c)] == [5, 1, 5]


def test_an_archived_sku_refuses_the_whole_reservation(app, shop):
    from mall.catalog.models import Sku

    brand = shop.brand()
    a, b = shop.sku(brand, price=100, stock=5), shop.sku(brand, price=100, stock=5)
    with app.app_context():
        db.session.get(Sku, b).status = "archived"
        db.session.commit()
        with pytest.raises(Conflict) as refused:
            inventory.reserve(db.session, {a: 1, b: 1})
        db.session.rollback()
    assert refused.value.extra["sku_id"] == b
    assert (shop.stock(a), shop.stock(b)) == (5, 5)
