"""Racing lucky-bag requests: a bag is drawn exactly once, and no entry lands after the draw's snapshot. Real
threads, each with its own client and connection; meaningful on PostgreSQL, where the writers do not queue
behind one database lock as on SQLite. And the database's own guard: one open bag per room."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from api.extensions import db
from mall import clock
from mall.live.lucky_bag_models import LuckyBag, LuckyBagPrize
from mall.orders.models import Order
from mall.promotions.coupons.models import Coupon
from tests.concurrency.test_order_concurrency import count, race
from tests.live_helpers import Live
from tests.lucky_bag_helpers import Bags, recompute
from tests.shop_helpers import Shop


@pytest.fixture
def bags(app, client, login) -> Bags:
    return Bags(Live(Shop(app, client, login)))


@pytest.mark.parametrize("prize_type", ["gift", "coupon"])
def test_ten_racing_draws_give_one_result_and_the_prizes_once(app, bags, prize_type):
    show = bags.show(gift_stock=10)
    prize = {"gift_sku_id": show["gift_sku"]} if prize_type == "gift" else {"coupon_template_id": show["template"]}
    bag = bags.create(show["host"], show["room"]["id"], prize_type=prize_type, winner_count=3, **prize)
    bags.entrants(bag["id"], 6)
    runners = [show["host"], show["admin"]] * 5

    responses = race(app, [lambda client, h=h: bags.draw(h, bag["id"], client=client) for h in runners])

    assert [r.status_code for r in responses] == [200] * 10, [r.get_json() for r in responses if r.status_code != 200]
    results = {tuple(r.get_json()["winners"]) for r in responses}
    assert len(results) == 1 and len(next(iter(results))) == 3
    published = bags.read(bag["id"])
    assert recompute(published) == published["winners"] == list(next(iter(results)))
    assert count(app, LuckyBagPrize, bag_id=bag["id"]) == 3
    if prize_type == "gift":
        assert bags.shop.stock(show["gift_sku"]) == 7  # reserved once
    else:
        assert count(app, Coupon, template_id=show["template"]) == 3


def test_entries_racing_the_draw_are_either_in_the_snapshot_or_refused(app, bags):
    show = bags.show()
    bag = bags.create(show["host"], show["room"]["id"], prize_type="gift", gift_sku_id=show["gift_sku"],
                      winner_count=2)  # fmt: skip
    bags.entrants(bag["id"], 2)
    shoppers = [bags.shop.shopper() for _ in range(15)]
    ids = [bags.shop.user_id(h) for h in shoppers]
    calls = [lambda client, h=h: bags.enter(h, bag["id"], client=client) for h in shoppers]
    calls.insert(7, lambda client: bags.draw(show["host"], bag["id"], client=client))

    responses = race(app, calls)

    draw = responses.pop(7)
    assert draw.status_code == 200, draw.get_json()
    codes = {r.status_code for r in responses}
    assert codes <= {200, 409}, [r.get_json() for r in responses]
    entered = {uid for uid, r in zip(ids, responses, strict=True) if r.status_code == 200}
    refused = {uid for uid, r in zip(ids, responses, strict=True) if r.status_code == 409}
    assert all(r.get_json()["code"] == "lucky_bag.not_open" for r in responses if r.status_code == 409)
    published = bags.read(bag["id"])
    assert entered <= set(published["entrants"]) and not refused & set(published["entrants"])
    assert len(published["entrants"]) == published["entrant_count"] == 2 + len(entered)
    assert recompute(published) == published["winners"]


def test_racing_entries_of_one_shopper_count_once(app, bags):
    show = bags.show()
    bag = bags.create(show["host"], show["room"]["id"], prize_type="gift", gift_sku_id=show["gift_sku"])
    shopper = bags.shop.shopper()

    responses = race(app, [lambda client: bags.enter(shopper, bag["id"], client=client)] * 8)

    assert [r.status_code for r in responses] == [200] * 8, [r.get_json() for r in responses]
    assert sorted(r.get_json()["entered"] for r in responses) == [False] * 7 + [True]
    assert bags.read(bag["id"])["entrant_count"] == 1


def test_racing_creates_leave_one_open_bag_and_the_database_refuses_a_second(app, bags):
    show = bags.show()
    room_id = show["room"]["id"]
    calls = [lambda client, h=h: bags.create_response(h, room_id, prize_type="gift", gift_sku_id=show["gift_sku"])
             for h in [show["host"], show["admin"]] * 4]  # fmt: skip

    responses = race(app, calls)

    assert sorted(r.status_code for r in responses) == [201] + [409] * 7, [r.get_json() for r in responses]
    assert count(app, LuckyBag, room_id=room_id, status="open") == 1
    with app.app_context():  # whatever writes the row: the partial unique index
        first = db.session.scalar(sa.select(LuckyBag).where(LuckyBag.room_id == room_id))
        copy = {c.name: getattr(first, c.name) for c in LuckyBag.__table__.columns if c.name != "id"}
        db.session.add(LuckyBag(**{**copy, "created_at": clock.now(), "updated_at": clock.now()}))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_racing_claims_of_one_gift_make_one_zero_priced_order(app, bags):
    show = bags.show(gift_stock=2)
    bag = bags.create(show["host"], show["room"]["id"], prize_type="gift", gift_sku_id=show["gift_sku"],
                      winner_count=1)  # fmt: skip
    [(winner, winner_id)] = bags.entrants(bag["id"], 1)
    assert bags.draw(show["host"], bag["id"]).get_json()["winners"] == [winner_id]
    address = bags.shop.address(winner)

    responses = race(app, [lambda client: bags.claim(winner, bag["id"], address, client=client)] * 6)

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 5, [r.get_json() for r in responses]
    assert {r.get_json()["code"] for r in responses if r.status_code == 409} == {"lucky_bag.already_claimed"}
    with app.app_context():
        orders = db.session.scalars(sa.select(Order).where(Order.user_id == winner_id)).all()
        assert [(o.payable_total, o.status) for o in orders] == [(0, "paid")]
    assert bags.shop.stock(show["gift_sku"]) == 1  # the one unit reserved at the draw, nothing more
