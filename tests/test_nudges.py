"""Abandoned-cart nudges: idle carts with lines are nudged at 1 h and 24 h, naming their lines, at most
once per (cart, version, stage) even with two sweepers; ordering, emptying or changing the cart stops them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from api.extensions import db
from mall import clock
from mall.cart.models import Cart
from mall.notifications import nudges
from mall.notifications.models import Message
from mall.notifications.nudges import CartNudge
from tests.api.test_bundle_orders import add_bundle, bundle  # noqa: F401 (a fixture)
from tests.notification_helpers import DAYTIME, count, grant, messages, use_recorder
from tests.shop_helpers import Shop
from workers.jobs import notifications as jobs

HOUR = timedelta(hours=1)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def channel(monkeypatch):
    return use_recorder(monkeypatch)


@pytest.fixture
def skus(shop):
    brand = shop.brand()
    return shop.sku(brand, price=1999), shop.sku(brand, price=4500)


def shopper_with_cart(shop, client, skus, quantities=(2, 1)):
    """A shopper (consenting to two nudges) with lines in the cart: (headers, user id, [(title, quantity)])."""
    me = shop.shopper()
    user = shop.user_id(me)
    for sku, quantity in zip(skus, quantities, strict=False):
        shop.add(me, sku, quantity)
    grant(shop.app, user, "cart.abandoned", times=2)
    lines = client.get("/api/v1/cart", headers=me).get_json()["lines"]
    return me, user, [(line["title"], line["quantity"]) for line in lines]


def nudges_of(app, user_id: int) -> list[Message]:
    return messages(app, user_id=user_id, template_key="cart.abandoned")


def test_nudged_at_one_hour_not_at_59_minutes_naming_the_lines(app, shop, client, skus, channel):
    clock.freeze(DAYTIME)
    me, user, lines = shopper_with_cart(shop, client, skus)
    clock.advance(timedelta(minutes=59))
    assert jobs.nudge_abandoned_carts() == 0
    assert nudges_of(app, user) == []
    clock.advance(timedelta(minutes=1))
    assert jobs.nudge_abandoned_carts() == 1
    [message] = nudges_of(app, user)
    assert message.payload["stage"] == 1 and message.kind == "marketing"
    assert [(line["title"], line["quantity"]) for line in message.payload["lines"]] == lines
    assert [q for _, q in lines] == [2, 1] and all(title.startswith("Product ") for title, _ in lines)
    assert "coupon_id" not in message.payload  # no coupon capability yet
    assert message.guard == {"type": "cart_unchanged", "cart_id": message.payload["cart_id"], "version": 3}
    assert jobs.sweep_due_messages() == 1
    assert channel.sent == [message.id]
    assert nudges_of(app, user)[0].status == "sent"


def test_second_nudge_at_24_hours_and_no_more(app, shop, client, skus, channel):
    clock.freeze(DAYTIME)
    _, user, _ = shopper_with_cart(shop, client, skus)
    clock.advance(HOUR)
    assert jobs.nudge_abandoned_carts() == 1
    assert jobs.sweep_due_messages() == 1
    clock.freeze(DAYTIME + 24 * HOUR - timedelta(minutes=1))
    assert jobs.nudge_abandoned_carts() == 0
    clock.freeze(DAYTIME + 24 * HOUR)
    assert jobs.nudge_abandoned_carts() == 1
    first, second = nudges_of(app, user)
    assert (first.payload["stage"], second.payload["stage"]) == (1, 2)
    assert second.payload["lines"] == first.payload["lines"]
    assert jobs.dispatch_message(second.id) == "sent"
    for later in (25 * HOUR, 3 * 24 * HOUR, 7 * 24 * HOUR):  # two stages configured: that is all
        clock.freeze(DAYTIME + later)
        assert jobs.nudge_abandoned_carts() == 0
    assert channel.sent == [first.id, second.id]


def test_emptied_cart_is_not_nudged(app, shop, client, skus, channel):
    clock.freeze(DAYTIME)
    me, user, _ = shopper_with_cart(shop, client, skus)
    clock.advance(timedelta(minutes=30))
    assert client.delete("/api/v1/cart", headers=me).status_code == 200
    for later in (HOUR, 2 * HOUR, 25 * HOUR):
        clock.freeze(DAYTIME + later)
        assert jobs.nudge_abandoned_carts() == 0
    assert nudges_of(app, user) == [] and count(app, CartNudge) == 0


def test_cart_ordered_from_before_the_threshold_is_not_nudged(app, shop, client, skus, channel):
    clock.freeze(DAYTIME)
    me, user, _ = shopper_with_cart(shop, client, skus)
    line_ids = [line["id"] for line in client.get("/api/v1/cart", headers=me).get_json()["lines"]]
    clock.advance(timedelta(minutes=40))
    assert shop.place(me, line_ids, shop.address(me)).status_code == 201
    for later in (HOUR, 2 * HOUR, 25 * HOUR):
        clock.freeze(DAYTIME + later)
        assert jobs.nudge_abandoned_carts() == 0
    assert nudges_of(app, user) == []


@pytest.mark.parametrize("change", ["add_line", "order", "empty"])
def test_change_after_the_nudge_was_queued_makes_it_skip(app, shop, client, skus, channel, change):
    clock.freeze(DAYTIME)
    brand_sku, other_sku = skus
    me, user, _ = shopper_with_cart(shop, client, [brand_sku])
    clock.advance(HOUR)
    assert jobs.nudge_abandoned_carts() == 1
    [queued] = nudges_of(app, user)
    clock.advance(timedelta(minutes=1))
    if change == "add_line":
        shop.add(me, other_sku, 3)
    elif change == "order":
        line_ids = [line["id"] for line in client.get("/api/v1/cart", headers=me).get_json()["lines"]]
        assert shop.place(me, line_ids, shop.address(me)).status_code == 201
    else:
        client.delete("/api/v1/cart", headers=me)
    assert jobs.dispatch_message(queued.id) == "skipped:condition_failed"
    assert nudges_of(app, user)[0].skip_reason == "condition_failed" and channel.sent == []
    clock.advance(HOUR)  # the changed cart is a new version: nudged again only if it still has lines
    assert jobs.nudge_abandoned_carts() == (1 if change == "add_line" else 0)
    if change == "add_line":
        fresh = nudges_of(app, user)[-1]
        assert [line["quantity"] for line in fresh.payload["lines"]] == [2, 3]
        assert jobs.dispatch_message(fresh.id) == "sent"


def test_cart_changed_between_finding_and_nudging_is_left_alone(app, shop, client, skus, session):
    clock.freeze(DAYTIME)
    me, user, _ = shopper_with_cart(shop, client, skus[:1])
    clock.advance(HOUR)
    [(cart_id, user_id, version)] = nudges.abandoned_carts(session, idle=HOUR, until=24 * HOUR, stage=1)
    session.rollback()
    shop.add(me, skus[1], 1)  # the shopper comes back meanwhile
    assert not nudges.nudge(session, cart_id=cart_id, user_id=user_id, version=version, stage=1)
    session.commit()
    assert nudges_of(app, user) == [] and count(app, CartNudge) == 0


def test_sweeping_twice_nudges_each_cart_version_once_per_stage(app, shop, client, skus, channel):
    clock.freeze(DAYTIME)
    users = [shopper_with_cart(shop, client, skus)[1] for _ in range(3)]
    clock.advance(HOUR)
    assert jobs.nudge_abandoned_carts() == 3
    assert jobs.nudge_abandoned_carts() == 0
    assert count(app, CartNudge) == 3 and count(app, Message, template_key="cart.abandoned") == 3
    assert sorted(m.user_id for m in messages(app, template_key="cart.abandoned")) == sorted(users)


def test_two_concurrent_sweeps_nudge_each_cart_once(app, shop, client, skus, channel):
    clock.freeze(DAYTIME)
    carts = 8
    for _ in range(carts):
        shopper_with_cart(shop, client, skus)
    clock.advance(HOUR)
    barrier = threading.Barrier(2)

    def sweep(_):
        barrier.wait()
        return jobs.nudge_abandoned_carts()

    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(sweep, range(2)))
    assert sum(made) == carts, made
    assert count(app, CartNudge) == carts and count(app, CartNudge, stage=1) == carts
    assert count(app, Message, template_key="cart.abandoned") == carts
    assert jobs.sweep_due_messages() == carts and len(set(channel.sent)) == carts


def test_stage_windows_end_where_the_next_stage_begins():
    assert nudges.stage_windows((1, 24)) == [(1, HOUR, 24 * HOUR), (2, 24 * HOUR, 72 * HOUR)]


def test_cart_idle_for_a_week_is_too_late_for_any_nudge(app, shop, client, skus, channel):
    """Decided: a nudge is only worth sending inside its stage's window. A cart first seen a week
    after its last change (sweeps were down, or the shopper predates the feature) is left alone
    rather than nudged about something the shopper has long forgotten."""
    clock.freeze(DAYTIME)
    _, user, _ = shopper_with_cart(shop, client, skus)
    clock.advance(timedelta(days=7))
    assert jobs.nudge_abandoned_carts() == 0
    assert nudges_of(app, user) == []


def test_cart_first_seen_after_the_first_window_gets_only_the_second_stage(app, shop, client, skus, channel):
    clock.freeze(DAYTIME)
    _, user, _ = shopper_with_cart(shop, client, skus)
    clock.advance(30 * HOUR)  # the sweeper was down through stage 1's window
    assert jobs.nudge_abandoned_carts() == 1
    assert [m.payload["stage"] for m in nudges_of(app, user)] == [2]


def test_recovery_coupon_hook_puts_its_coupon_in_the_payload(app, shop, client, skus, channel, monkeypatch):
    clock.freeze(DAYTIME)
    _, user, _ = shopper_with_cart(shop, client, skus)
    asked = []

    def grant_coupon(session, user_id, cart_id):
        asked.append((user_id, cart_id))
        return 4242

    monkeypatch.setattr(nudges, "recovery_coupon", grant_coupon)  # monkeypatch puts None back afterwards
    clock.advance(HOUR)
    assert jobs.nudge_abandoned_carts() == 1
    [message] = nudges_of(app, user)
    assert message.payload["coupon_id"] == 4242
    assert asked == [(user, message.payload["cart_id"])]


def test_recovery_coupon_hook_without_a_coupon_leaves_the_payload_without_one(app, shop, client, skus, monkeypatch):
    clock.freeze(DAYTIME)
    _, user, _ = shopper_with_cart(shop, client, skus)
    monkeypatch.setattr(nudges, "recovery_coupon", lambda session, user_id, cart_id: None)
    clock.advance(HOUR)
    assert jobs.nudge_abandoned_carts() == 1
    assert "coupon_id" not in nudges_of(app, user)[0].payload


def test_one_failing_cart_does_not_stop_the_sweep_and_is_retried(app, shop, client, skus, channel, monkeypatch):
    clock.freeze(DAYTIME)
    _, first_user, _ = shopper_with_cart(shop, client, skus)  # idle longest: swept first
    clock.advance(timedelta(minutes=5))
    _, second_user, _ = shopper_with_cart(shop, client, skus)
    broken = {first_user}

    def flaky_coupon(session, user_id, cart_id):
        if user_id in broken:
            raise RuntimeError("coupon service down")
        return None

    monkeypatch.setattr(nudges, "recovery_coupon", flaky_coupon)
    clock.advance(HOUR)
    assert jobs.nudge_abandoned_carts() == 1
    assert nudges_of(app, first_user) == [] and len(nudges_of(app, second_user)) == 1
    assert count(app, CartNudge) == 1  # the failed cart's claim rolled back with it
    broken.clear()
    assert jobs.nudge_abandoned_carts() == 1
    assert len(nudges_of(app, first_user)) == 1


def test_nudge_decided_late_in_the_evening_waits_for_morning(app, shop, client, skus, channel):
    evening = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai
    clock.freeze(evening)
    _, user, _ = shopper_with_cart(shop, client, skus)
    clock.advance(HOUR)  # 22:30: quiet hours
    assert jobs.nudge_abandoned_carts() == 1
    [message] = nudges_of(app, user)
    assert jobs.dispatch_message(message.id) == "deferred:quiet_hours"
    morning = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert nudges_of(app, user)[0].send_after == morning
    clock.freeze(morning - timedelta(minutes=1))
    assert jobs.sweep_due_messages() == 0
    clock.freeze(morning)
    assert jobs.sweep_due_messages() == 1 and channel.sent == [message.id]


def test_operators_see_nudges_with_status_and_skip_reason(app, shop, client, skus, login, channel):
    clock.freeze(DAYTIME)
    me, consenting, _ = shopper_with_cart(shop, client, skus)
    other = shop.shopper()
    silent = shop.user_id(other)
    shop.add(other, skus[0], 1)  # never answered the subscription request
    changed, changer, _ = shopper_with_cart(shop, client, skus)
    clock.advance(HOUR)
    assert jobs.nudge_abandoned_carts() == 3
    shop.add(changed, skus[0], 1)
    assert jobs.sweep_due_messages() == 1
    resp = client.get("/api/v1/admin/notifications?template_key=cart.abandoned",
                      headers=login("platform_admin", name="ops"))  # fmt: skip
    assert resp.status_code == 200
    seen = {m["user_id"]: (m["status"], m["skip_reason"]) for m in resp.get_json()}
    assert seen == {consenting: ("sent", None), silent: ("skipped", "no_consent"),
                    changer: ("skipped", "condition_failed")}  # fmt: skip
    with app.app_context():
        assert db.session.get(Cart, nudges_of(app, consenting)[0].payload["cart_id"]).user_id == consenting


def test_a_bundle_line_is_named_by_the_bundles_title(app, shop, client, skus, bundle, channel):  # noqa: F811
    clock.freeze(DAYTIME)
    me, user, _ = shopper_with_cart(shop, client, skus[:1], quantities=(1,))
    add_bundle(shop, me, bundle[0], 2)
    clock.advance(HOUR)
    assert jobs.nudge_abandoned_carts() == 1
    [message] = nudges_of(app, user)
    assert [line["quantity"] for line in message.payload["lines"]] == [1, 2]
    assert message.payload["lines"][1]["title"] == "Starter set"
