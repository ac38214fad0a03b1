"""Lucky bags (福袋) over HTTP: create, enter, draw, recompute the winners from what was published, coupon and
gift prizes, the gift claimed into a zero-priced order, unclaimed gifts released, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import attribution, clock
from mall.attribution import Source, SourceType
from mall.live.lucky_bag_models import LuckyBagPrize
from mall.promotions.coupons.models import Coupon
from tests.conftest import TEST_SECRET
from tests.coupon_helpers import Coupons
from tests.live_helpers import Live
from tests.lucky_bag_helpers import BAGS, Bags, recompute
from tests.shop_helpers import Shop
from workers.jobs.lucky_bags import release_unclaimed_prizes


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def bags(shop) -> Bags:
    return Bags(Live(shop))


@pytest.fixture
def show(bags):
    return bags.show()


def prizes(app, bag_id: int) -> list[LuckyBagPrize]:
    with app.app_context():
        rows = db.session.scalars(sa.select(LuckyBagPrize).where(LuckyBagPrize.bag_id == bag_id)
                                  .order_by(LuckyBagPrize.rank))  # fmt: skip
        found = list(rows)
        db.session.expunge_all()
        return found


def test_a_coupon_bag_commits_its_seed_draws_once_and_anyone_can_recompute_the_winners(app, bags, show):
    bag = bags.create(show["host"], show["room"]["id"], prize_type="coupon", coupon_template_id=show["template"],
                      winner_count=3)  # fmt: skip
    assert bag["status"] == "open" and len(bag["seed_hash"]) == 64 and bag["seed"] is None
    people = bags.entrants(bag["id"], 7)
    again = bags.enter(people[0][0], bag["id"])
    assert again.status_code == 200 and again.get_json() == {"bag_id": bag["id"], "entered": False}
    before = bags.read(bag["id"])
    assert before["entrant_count"] == 7 and before["seed"] is None and before["entrants"] is None
    assert before["seed_hash"] == bag["seed_hash"]
    listed = bags.client.get(f"/api/v1/live/rooms/{show['room']['id']}/lucky-bags").get_json()
    assert [(b["id"], b["seed_hash"]) for b in listed] == [(bag["id"], bag["seed_hash"])]
    on_room = bags.live.view(show["room"]["id"]).get_json()["lucky_bag"]  # what every viewer polls
    assert on_room["id"] == bag["id"] and on_room["seed_hash"] == bag["seed_hash"] and on_room["status"] == "open"

    drawn = bags.draw(show["host"], bag["id"])
    assert drawn.status_code == 200, drawn.get_json()
    published = bags.read(bag["id"])  # only what anyone can read
    assert published["status"] == "drawn" and published["seed_hash"] == bag["seed_hash"]
    assert bags.live.view(show["room"]["id"]).get_json()["lucky_bag"]["status"] == "drawn"  # re-rendered
    assert published["entrants"] == sorted(uid for _, uid in people) and published["prizes_awarded"] == 3
    assert recompute(published) == published["winners"] and len(published["winners"]) == 3

    # each winner holds the coupon (through the coupons capability), the others do not
    winners = set(published["winners"])
    with app.app_context():
        held = {c.user_id: c for c in db.session.scalars(sa.select(Coupon).filter_by(template_id=show["template"]))}
    assert set(held) == winners and {c.source for c in held.values()} == {"live"}
    for headers, uid in people:
        mine = bags.prize(headers, bag["id"])
        if uid in winners:
            assert mine.status_code == 200 and mine.get_json()["status"] == "granted"
            assert mine.get_json()["coupon_id"] == held[uid].id
        else:
            assert mine.status_code == 404 and mine.get_json()["code"] == "lucky_bag.no_prize"

    # drawn once: a second draw answers the same result and gives nothing more; no entry after the draw
    second = bags.draw(show["host"], bag["id"])
    assert second.status_code == 200 and second.get_json()["winners"] == published["winners"]
    assert len(prizes(app, bag["id"])) == 3
    late = bags.enter(bags.shop.shopper(), bag["id"])
    assert late.status_code == 409 and late.get_json()["code"] == "lucky_bag.not_open"


def test_a_coupon_winner_at_the_templates_limit_is_recorded_not_granted(app, bags, show):
    bag = bags.create(show["admin"], show["room"]["id"], prize_type="coupon", coupon_template_id=show["template"],
                      winner_count=1)  # fmt: skip
    [(headers, uid)] = bags.entrants(bag["id"], 1)
    held = Coupons(bags.shop).claim(headers, show["template"])  # the template allows one per shopper
    assert held.status_code == 201, held.get_json()
    assert bags.draw(show["admin"], bag["id"]).status_code == 200
    assert bags.prize(headers, bag["id"]).get_json()["status"] == "not_granted"


def test_entering_needs_the_room_live_and_the_bag_open(bags):
    show = bags.show(start=False)
    bag = bags.create(show["host"], show["room"]["id"], prize_type="gift", gift_sku_id=show["gift_sku"])
    shopper = bags.shop.shopper()
    refused = bags.enter(shopper, bag["id"])
    assert refused.status_code == 409 and refused.get_json()["code"] == "live.room_not_live"
    assert bags.live.act(show["host"], show["room"]["id"], "start").status_code == 200
    assert bags.enter(shopper, bag["id"]).get_json() == {"bag_id": bag["id"], "entered": True}
    clock.freeze(clock.now() + timedelta(minutes=6))  # past closes_at
    closed = bags.enter(bags.shop.shopper(), bag["id"])
    assert closed.status_code == 409 and closed.get_json()["code"] == "lucky_bag.not_open"
    assert bags.read(bag["id"])["entrant_count"] == 1
    assert bags.enter(shopper, 10**6).status_code == 404


def test_followed_link_bags_take_only_shoppers_with_this_rooms_link_in_their_cart(bags, show):
    room = show["room"]
    bag = bags.create(show["host"], room["id"], prize_type="gift", gift_sku_id=show["gift_sku"],
                      entry_condition="followed_link")  # fmt: skip
    organic, linked, other_room = bags.shop.shopper(), bags.shop.shopper(), bags.shop.shopper()
    product_sku = show["gift_sku"]

    def token(room_id):
        return attribution.sign(Source(SourceType.LIVE, {"room_id": room_id, "host_id": show["host_id"]}),
                                secret=TEST_SECRET)  # fmt: skip

    bags.shop.add(organic, product_sku)
    bags.shop.add(linked, product_sku, source_token=token(room["id"]))
    bags.shop.add(other_room, product_sku, source_token=token(room["id"] + 1000))
    assert bags.enter(linked, bag["id"]).get_json()["entered"] is True
    for headers in (organic, other_room):
        refused = bags.enter(headers, bag["id"])
        assert refused.status_code == 403 and refused.get_json()["code"] == "lucky_bag.link_required"


def test_a_gift_is_reserved_at_the_draw_and_claimed_into_a_zero_priced_paid_order(app, bags):
    show = bags.show(gift_stock=5)
    bag = bags.create(show["host"], show["room"]["id"], prize_type="gift", gift_sku_id=show["gift_sku"],
                      winner_count=2)  # fmt: skip
    people = dict((uid, headers) for headers, uid in bags.entrants(bag["id"], 4))
    assert bags.shop.stock(show["gift_sku"]) == 5  # nothing taken before the draw
    published = bags.draw(show["host"], bag["id"]).get_json()
    assert recompute(published) == published["winners"]
    assert bags.shop.stock(show["gift_sku"]) == 3  # reserved at the draw, one per winner

    first, second = (people[uid] for uid in published["winners"])
    prize = bags.prize(first, bag["id"]).get_json()
    assert prize["status"] == "reserved" and prize["sku_id"] == show["gift_sku"]
    no_address = bags.claim(first, bag["id"], None)
    assert no_address.status_code == 422
    loser = next(h for uid, h in people.items() if uid not in published["winners"])
    assert bags.claim(loser, bag["id"], bags.shop.address(loser)).status_code == 404

    claimed = bags.claim(first, bag["id"], bags.shop.address(first))
    assert claimed.status_code == 201, claimed.get_json()
    order = claimed.get_json()
    assert order["payable_total"] == 0 and order["items_total"] == 0 and order["status"] == "paid"
    [line] = order["sub_orders"][0]["lines"]
    assert line["sku_id"] == show["gift_sku"] and line["unit_price"] == 0 and line["quantity"] == 1
    assert bags.shop.stock(show["gift_sku"]) == 3  # the order took the reserved unit, not another
    assert bags.prize(first, bag["id"]).get_json() | {"status": "claimed", "order_id": order["id"]} == \
        bags.prize(first, bag["id"]).get_json()  # fmt: skip
    again = bags.claim(first, bag["id"], bags.shop.address(first))
    assert again.status_code == 409 and again.get_json()["code"] == "lucky_bag.already_claimed"

    # the other winner lets 24 hours pass: the sweep gives the unit back, once; a late claim is refused
    clock.freeze(clock.now() + timedelta(hours=23))
    assert release_unclaimed_prizes() == 0
    clock.advance(timedelta(hours=1, seconds=1))
    assert release_unclaimed_prizes() == 1 and release_unclaimed_prizes() == 0
    assert bags.shop.stock(show["gift_sku"]) == 4
    assert bags.prize(second, bag["id"]).get_json()["status"] == "released"
    late = bags.claim(second, bag["id"], bags.shop.address(second))
    assert late.status_code == 409 and late.get_json()["code"] == "lucky_bag.claim_expired"


def test_a_gift_with_shipping_fee_is_still_free(bags, shop):
    brand = shop.brand(fee=800)
    gift = shop.sku(brand, price=5900, stock=3)
    host, host_id = bags.live.host()
    room = bags.live.room(shop.merchant(brand), host_id, [bags.live.product(brand)])
    bags.live.act(host, room["id"], "start")
    bag = bags.create(host, room["id"], prize_type="gift", gift_sku_id=gift, winner_count=1)
    [(winner, _)] = bags.entrants(bag["id"], 1)
    bags.draw(host, bag["id"])
    order = bags.claim(winner, bag["id"], shop.address(winner)).get_json()
    assert order["payable_total"] == 0 and order["shipping_total"] == 0 and order["status"] == "paid"


def test_fewer_gifts_in_stock_than_winners_gives_as_many_as_there_are(bags):
    show = bags.show(gift_stock=3)
    bag = bags.create(show["host"], show["room"]["id"], prize_type="gift", gift_sku_id=show["gift_sku"],
                      winner_count=3)  # fmt: skip
    bags.entrants(bag["id"], 5)
    with bags.shop.app.app_context():  # two units sold elsewhere meanwhile
        db.session.execute(sa.text("UPDATE skus SET stock = 1 WHERE id = :id"), {"id": show["gift_sku"]})
        db.session.commit()
    published = bags.draw(show["host"], bag["id"]).get_json()
    assert published["prizes_awarded"] == 1 and len(published["winners"]) == 1
    assert recompute(published) == published["winners"] and bags.shop.stock(show["gift_sku"]) == 0


def test_no_entrants_no_winners(bags, show):
    bag = bags.create(show["host"], show["room"]["id"], prize_type="gift", gift_sku_id=show["gift_sku"])
    published = bags.draw(show["host"], bag["id"]).get_json()
    assert published["entrants"] == [] and published["winners"] == [] and published["prizes_awarded"] == 0
    assert bags.shop.stock(show["gift_sku"]) == 10


def test_one_bag_at_a_time_per_room(bags, show):
    room_id = show["room"]["id"]
    first = bags.create(show["host"], room_id, prize_type="gift", gift_sku_id=show["gift_sku"])
    busy = bags.create_response(show["admin"], room_id, prize_type="coupon", coupon_template_id=show["template"])
    assert busy.status_code == 409 and busy.get_json()["code"] == "lucky_bag.one_at_a_time"
    assert bags.draw(show["host"], first["id"]).status_code == 200
    second = bags.create(show["host"], room_id, prize_type="coupon", coupon_template_id=show["template"])
    cancelled = bags.client.post(f"{BAGS}/{second['id']}/cancel", headers=show["host"])
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert bags.create_response(show["host"], room_id, prize_type="gift", gift_sku_id=show["gift_sku"]).status_code \
        == 201  # fmt: skip


def test_prizes_must_be_the_rooms_brands_and_other_brands_cannot_run_the_bag(bags, show):
    room_id = show["room"]["id"]
    other = bags.show()
    foreign_coupon = bags.create_response(show["host"], room_id, prize_type="coupon",
                                          coupon_template_id=other["template"])  # fmt: skip
    assert foreign_coupon.status_code == 422 and foreign_coupon.get_json()["code"] == "lucky_bag.prize_unknown"
    foreign_gift = bags.create_response(show["host"], room_id, prize_type="gift", gift_sku_id=other["gift_sku"])
    assert foreign_gift.status_code == 422
    too_many = bags.create_response(show["host"], room_id, prize_type="gift", gift_sku_id=show["gift_sku"],
                                    winner_count=11)  # fmt: skip
    assert too_many.status_code == 409 and too_many.get_json()["code"] == "lucky_bag.gift_short"

    for headers in (other["admin"], other["host"]):
        refused = bags.create_response(headers, room_id, prize_type="gift", gift_sku_id=show["gift_sku"])
        assert refused.status_code == 403, refused.get_json()
    shopper = bags.create_response(bags.shop.shopper(), room_id, prize_type="gift", gift_sku_id=show["gift_sku"])
    assert shopper.status_code == 403 and shopper.get_json()["code"] == "auth.role_forbidden"
    bag = bags.create(show["host"], room_id, prize_type="gift", gift_sku_id=show["gift_sku"])
    for headers in (other["admin"], other["host"]):
        assert bags.draw(headers, bag["id"]).status_code == 403
        assert bags.client.post(f"{BAGS}/{bag['id']}/cancel", headers=headers).status_code == 403
    assert bags.draw(show["host"], 10**6).status_code == 404
    assert bags.read(bag["id"])["status"] == "open"
