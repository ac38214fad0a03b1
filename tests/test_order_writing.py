"""Writing a placed order with its event, the stock it takes and the cart lines it empties: all of it or
none (on PostgreSQL one statement does it all; elsewhere one statement each)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.cart.models import CartLine
from mall.catalog.models import Sku
from mall.checkout import services as checkout
from mall.errors import Conflict
from mall.events import DomainEvent
from mall.identity.roles import Actor, Role
from mall.orders import creation
from mall.orders.models import Order, OrderLine
from mall.orders.policy import OrderPolicy
from tests.shop_helpers import Shop


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def chosen(shop):
    """A shopper's cart with two lines of two brands (2 and 1 units of SKUs holding 5 each)."""
    me = shop.shopper()
    skus = [shop.sku(shop.brand(), price=1000, stock=5), shop.sku(shop.brand(), price=700, stock=5)]
    lines = [shop.add(me, skus[0], 2), shop.add(me, skus[1], 1)]
    return shop.user_id(me), shop.address(me), skus, lines


def write(user_id, address_id, lines, result=None):
    result = result or checkout.quote(db.session, shopper_id=user_id, line_ids=lines, address_id=address_id)
    stock = {line.sku_id: line.quantity for line in result.quote.lines}
    return creation.insert_order(db.session, shopper_id=user_id, quote=result.quote, policy=OrderPolicy(),
                                 address=result.address._asdict(), actor=Actor(user_id, Role.SHOPPER), stock=stock,
                                 from_cart=(result.cart_id, lines), coupon_ids=[])  # fmt: skip


def state(skus) -> tuple:
    """The SKUs' stock; how many orders, order lines, cart lines and order.placed events there are."""
    stock = [db.session.get(Sku, sku_id).stock for sku_id in skus]
    counts = [db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in (Order, OrderLine, CartLine)]
    return stock, [*counts, len(placed_events())]


def placed_events() -> list[DomainEvent]:
    return db.session.scalars(sa.select(DomainEvent).filter_by(type="order.placed")).all()


def test_the_order_takes_its_stock_and_empties_its_lines(app, chosen):
    user_id, address_id, skus, lines = chosen
    with app.app_context():
        order = write(user_id, address_id, lines)
        db.session.commit()
        db.session.expire_all()
        assert state(skus) == ([3, 4], [1, 2, 0, 1])
        assert sorted(line.sku_id for line in db.session.get(Order, order.id).lines) == sorted(skus)
        (event,) = placed_events()
        placed = db.session.get(Order, order.id)
        assert (event.type, event.aggregate_id, event.actor_id, event.actor_role) == (
            "order.placed",
            order.id,
            user_id,
            "shopper",
        )
        assert event.payload == {
            "payable": placed.payable_total,
            "expires_at": placed.expires_at.isoformat(),
            "coupon_ids": [],
        }
        assert event.occurred_at == placed.created_at


def test_stock_gone_since_the_quote_writes_nothing(app, chosen):
    user_id, address_id, skus, lines = chosen
    with app.app_context():
        result = checkout.quote(db.session, shopper_id=user_id, line_ids=lines, address_id=address_id)
        db.session.rollback()
        db.session.execute(sa.update(Sku).where(Sku.id == skus[1]).values(stock=0))  # sold meanwhile
        db.session.commit()
        with pytest.raises(Conflict) as refused:
            write(user_id, address_id, lines, result)
        assert (refused.value.code, refused.value.extra) == ("stock.insufficient", {"sku_id": skus[1]})
        db.session.rollback()
        assert state(skus) == ([5, 0], [0, 0, 2, 0])


def test_lines_gone_since_the_quote_write_nothing(app, chosen):
    user_id, address_id, skus, lines = chosen
    with app.app_context():
        result = checkout.quote(db.session, shopper_id=user_id, line_ids=lines, address_id=address_id)
        db.session.rollback()
        db.session.execute(sa.delete(CartLine).where(CartLine.id == lines[0]))  # ordered by a twin meanwhile
        db.session.commit()
        with pytest.raises(Conflict) as refused:
            write(user_id, address_id, lines, result)
        assert refused.value.code == "checkout.lines_changed"
        db.session.rollback()
        assert state(skus) == ([5, 5], [0, 0, 1, 0])
