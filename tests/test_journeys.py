"""T+ journeys: operators define an anchor event and timed steps; the anchor queues every step at
anchor + offset, conditional steps are skipped if the condition no longer holds when they fire, and a
shopper enters a journey once per anchor event."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.notifications import journeys, reactions
from mall.notifications.journeys import Journey, JourneyEnrollment
from mall.notifications.models import Message
from tests.notification_helpers import DAYTIME, count, grant, messages, use_recorder
from tests.shop_helpers import Shop
from workers.jobs import notifications as jobs

DAY = timedelta(days=1)
WELCOME = {"name": "Welcome", "anchor": "signed_up", "steps": [
    {"offset_minutes": 1440, "template_key": "journey.welcome"},
    {"offset_minutes": 3 * 1440, "template_key": "journey.recommendation", "condition": "no_order_since_anchor"},
]}  # fmt: skip
FIRST_PURCHASE = {"name": "First purchase", "anchor": "first_order_paid", "steps": [
    {"offset_minutes": 5 * 1440, "template_key": "journey.usage_tips"},
    {"offset_minutes": 15 * 1440, "template_key": "journey.member_benefits"},
]}  # fmt: skip


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def channel(monkeypatch):
    return use_recorder(monkeypatch)


@pytest.fixture
def admin(login) -> dict:
    return login("platform_admin", name="ops")


@pytest.fixture
def define(client, admin):
    def define(body: dict) -> dict:
        resp = client.post("/api/v1/admin/journeys", json=body, headers=admin)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    return define


def signed_up(shop) -> tuple[dict, int]:
    headers = shop.shopper()
    return headers, shop.user_id(headers)


def queued(app, user_id: int, template_key: str) -> Message:
    [message] = messages(app, user_id=user_id, template_key=template_key)
    return message


def order_and_pay(shop, headers, sku) -> dict:
    order = shop.place(headers, [shop.add(headers, sku, 1)], shop.address(headers))
    assert order.status_code == 201, order.get_json()
    paid = shop.pay(headers, order.get_json()["id"])
    assert paid.status_code == 200 and paid.get_json()["status"] == "succeeded", paid.get_json()
    return order.get_json()


def test_operators_define_and_list_journeys(client, admin, login, define):
    made = define(WELCOME)
    assert made["anchor"] == "signed_up" and made["active"] is True and made["inactive_days"] is None
    assert [(s["offset_minutes"], s["template_key"], s["condition"]) for s in made["steps"]] == [
        (1440, "journey.welcome", None), (4320, "journey.recommendation", "no_order_since_anchor")]  # fmt: skip
    win_back = define({"name": "Win-back", "anchor": "inactive", "inactive_days": 10,
                       "steps": [{"offset_minutes": 14400, "template_key": "journey.win_back"}]})  # fmt: skip
    assert win_back["inactive_days"] == 10
    listed = client.get("/api/v1/admin/journeys", headers=admin).get_json()
    assert [j["name"] for j in listed] == ["Welcome", "Win-back"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"anchor": "birthday"}, 422, "request.invalid"),
        ({"inactive_days": 10}, 422, "journey.inactive_days"),
        ({"anchor": "inactive"}, 422, "journey.inactive_days"),
        ({"steps": [{"offset_minutes": 1440, "template_key": "journey.nope"}]}, 422, "notification.unknown_template"),
        ({"steps": [{"offset_minutes": 1440, "template_key": "journey.welcome", "condition": "rainy"}]}, 422,
         "request.invalid"),
        ({"steps": []}, 422, "request.invalid"),
        ({"steps": [{"offset_minutes": -1, "template_key": "journey.welcome"}]}, 422, "request.invalid"),
    ],
)  # fmt: skip
def test_invalid_journeys_are_refused_and_write_nothing(app, client, admin, change, status, code):
    resp = client.post("/api/v1/admin/journeys", json={**WELCOME, **change}, headers=admin)
    assert (resp.status_code, resp.get_json()["code"]) == (status, code), resp.get_json()
    assert count(app, Journey) == 0


def test_a_journey_name_is_taken_once(app, client, admin, define):
    define(WELCOME)
    again = client.post("/api/v1/admin/journeys", json=WELCOME, headers=admin)
    assert (again.status_code, again.get_json()["code"]) == (409, "journey.name_taken")
    assert count(app, Journey) == 1


def test_only_platform_admins_manage_journeys(client, login, shop):
    for headers in (shop.shopper(), login("brand_admin", brand_id=shop.brand())):
        assert client.post("/api/v1/admin/journeys", json=WELCOME, headers=headers).status_code == 403
        assert client.get("/api/v1/admin/journeys", headers=headers).status_code == 403


def test_sign_up_queues_each_step_at_anchor_plus_offset_and_sends_it_then(app, shop, define, channel):
    define(WELCOME)
    clock.freeze(DAYTIME)
    _, user = signed_up(shop)  # the dev login is the sign-up: shopper.signed_up
    grant(app, user, "journey.welcome")
    grant(app, user, "journey.recommendation")
    welcome, recommendation = queued(app, user, "journey.welcome"), queued(app, user, "journey.recommendation")
    assert welcome.send_after == DAYTIME + DAY and recommendation.send_after == DAYTIME + 3 * DAY
    assert recommendation.guard == {"type": "no_order_since", "since": DAYTIME.isoformat()}
    assert count(app, JourneyEnrollment, user_id=user, anchor_ref="signup") == 1

    clock.freeze(DAYTIME + DAY - timedelta(minutes=1))
    assert jobs.dispatch_message(welcome.id) == "not_due"
    assert jobs.sweep_due_messages() == 0
    clock.freeze(DAYTIME + DAY)
    assert jobs.sweep_due_messages() == 1 and channel.sent == [welcome.id]
    clock.freeze(DAYTIME + 3 * DAY - timedelta(minutes=1))
    assert jobs.dispatch_message(recommendation.id) == "not_due"
    clock.freeze(DAYTIME + 3 * DAY)
    assert jobs.dispatch_message(recommendation.id) == "sent"
    assert channel.sent == [welcome.id, recommendation.id]


def test_conditional_step_is_skipped_when_the_shopper_ordered_meanwhile(app, shop, client, define, admin, channel):
    define(WELCOME)
    sku = shop.sku(shop.brand(), price=1000)
    clock.freeze(DAYTIME)
    buyer, buyer_id = signed_up(shop)
    _, browser_id = signed_up(shop)
    for user in (buyer_id, browser_id):
        grant(app, user, "journey.welcome")
        grant(app, user, "journey.recommendation")
    clock.advance(2 * DAY)
    shop.place(buyer, [shop.add(buyer, sku, 1)], shop.address(buyer))  # placing counts, paid or not
    clock.advance(DAY)
    assert jobs.sweep_due_messages() == 3  # two welcomes, the browser's recommendation
    bought, browsed = queued(app, buyer_id, "journey.recommendation"), queued(app, browser_id, "journey.recommendation")
    assert (bought.status, bought.skip_reason) == ("skipped", "condition_failed")
    assert browsed.status == "sent"
    assert queued(app, buyer_id, "journey.welcome").status == "sent"  # unconditional steps still go

    resp = client.get(f"/api/v1/admin/notifications?user_id={buyer_id}", headers=shop.login("platform_admin", "ops"))
    assert resp.status_code == 200
    seen = {m["template_key"]: (m["status"], m["skip_reason"]) for m in resp.get_json()}
    assert seen["journey.welcome"] == ("sent", None)
    assert seen["journey.recommendation"] == ("skipped", "condition_failed")
    skipped = client.get("/api/v1/admin/notifications?status=skipped&template_key=journey.recommendation",
                         headers=shop.login("platform_admin", "ops"))  # fmt: skip
    assert [(m["user_id"], m["skip_reason"]) for m in skipped.get_json()] == [(buyer_id, "condition_failed")]


def test_first_paid_order_enters_the_journey_and_a_second_does_not(app, shop, define, channel):
    define(FIRST_PURCHASE)
    sku = shop.sku(shop.brand(), price=1000)
    clock.freeze(DAYTIME)
    me, user = signed_up(shop)
    unpaid = shop.place(me, [shop.add(me, sku, 1)], shop.address(me))
    assert unpaid.status_code == 201
    assert messages(app, user_id=user, template_key="journey.usage_tips") == []  # placing is not paying
    clock.advance(timedelta(hours=2))
    paid_at = clock.now()
    order_and_pay(shop, me, sku)
    tips, benefits = queued(app, user, "journey.usage_tips"), queued(app, user, "journey.member_benefits")
    assert tips.send_after == paid_at + 5 * DAY and benefits.send_after == paid_at + 15 * DAY
    clock.advance(DAY)
    order_and_pay(shop, me, sku)  # a second paid order is no new anchor
    assert count(app, JourneyEnrollment, user_id=user) == 1
    assert len(messages(app, user_id=user, template_key="journey.usage_tips")) == 1

    grant(app, user, "journey.usage_tips")
    grant(app, user, "journey.member_benefits")
    clock.freeze(paid_at + 5 * DAY - timedelta(seconds=1))
    assert jobs.dispatch_message(tips.id) == "not_due"
    clock.freeze(paid_at + 5 * DAY)
    assert jobs.dispatch_message(tips.id) == "sent"
    clock.freeze(paid_at + 15 * DAY - timedelta(seconds=1))
    assert jobs.dispatch_message(benefits.id) == "not_due"
    clock.freeze(paid_at + 15 * DAY)
    assert jobs.sweep_due_messages() == 1
    assert channel.sent == [tips.id, benefits.id]


def test_two_first_orders_paid_at_once_enter_once(app, shop, define):
    """Neither payment sees the other's: the enrolment's unique key decides (a real race on PostgreSQL)."""
    define(FIRST_PURCHASE)
    brand = shop.brand()
    sku_a, sku_b = shop.sku(brand, price=1000), shop.sku(brand, price=2000)
    me, user = signed_up(shop)
    address = shop.address(me)
    orders = [shop.place(me, [shop.add(me, sku, 1)], address).get_json()["id"] for sku in (sku_a, sku_b)]
    barrier = threading.Barrier(2)

    def pay(order_id):
        client = app.test_client()
        barrier.wait()
        return client.post(f"/api/v1/orders/{order_id}/pay", headers={**me, "Idempotency-Key": uuid.uuid4().hex})

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(pay, orders))
    assert [r.status_code for r in results] == [200, 200], [r.get_json() for r in results]
    assert count(app, JourneyEnrollment, user_id=user) == 1
    assert len(messages(app, user_id=user, template_key="journey.usage_tips")) == 1


def test_completed_order_anchors_its_own_enrolment(app, shop, client, define):
    define({"name": "Review ask", "anchor": "order_completed",
            "steps": [{"offset_minutes": 2 * 1440, "template_key": "journey.usage_tips"}]})  # fmt: skip
    brand = shop.brand()
    sku = shop.sku(brand, price=1000)
    clock.freeze(DAYTIME)
    me, user = signed_up(shop)
    order = order_and_pay(shop, me, sku)
    sub = order["sub_orders"][0]["id"]
    shipped = client.post(f"/api/v1/admin/sub-orders/{sub}/ship", json={"carrier": "SF", "tracking_number": "SF1"},
                          headers=shop.merchant(brand))  # fmt: skip
    assert shipped.status_code == 200
    assert messages(app, user_id=user, template_key="journey.usage_tips") == []
    clock.advance(timedelta(hours=5))
    assert client.post(f"/api/v1/sub-orders/{sub}/confirm-receipt", headers=me).status_code == 200
    step = queued(app, user, "journey.usage_tips")
    assert step.send_after == DAYTIME + timedelta(hours=5) + 2 * DAY
    with app.app_context():
        refs = db.session.scalars(sa.select(JourneyEnrollment.anchor_ref).filter_by(user_id=user)).all()
    assert refs == [f"order-{order['id']}"]


def test_entering_twice_for_the_same_anchor_ref_does_nothing(app, shop, session, define):
    define(FIRST_PURCHASE)
    _, user = signed_up(shop)
    clock.freeze(DAYTIME)
    assert journeys.enter(session, user_id=user, anchor="first_order_paid", anchor_ref="first-paid-order") == 1
    clock.advance(DAY)
    assert journeys.enter(session, user_id=user, anchor="first_order_paid", anchor_ref="first-paid-order") == 0
    session.commit()
    steps = messages(app, user_id=user)
    assert len(steps) == 2 and {m.send_after for m in steps} == {DAYTIME + 5 * DAY, DAYTIME + 15 * DAY}
    assert journeys.enter(session, user_id=user, anchor="signed_up", anchor_ref="signup") == 0  # no such journey
    assert journeys.enter(session, user_id=user, anchor="first_order_paid", anchor_ref="another") == 1


def test_inactivity_enrols_shoppers_whose_last_order_was_n_days_ago_once(app, shop, define, channel):
    define(
        {
            "name": "Win-back",
            "anchor": "inactive",
            "inactive_days": 10,
            "steps": [
                {"offset_minutes": 10 * 1440, "template_key": "journey.win_back", "condition": "no_order_since_anchor"}
            ],
        }
    )
    define({"name": "Deep win-back", "anchor": "inactive", "inactive_days": 30, "steps": [
        {"offset_minutes": 30 * 1440, "template_key": "journey.member_benefits"}]})  # fmt: skip
    sku = shop.sku(shop.brand(), price=1000)
    clock.freeze(DAYTIME)
    lapsed, lapsed_id = signed_up(shop)
    order_and_pay(shop, lapsed, sku)
    _, never_id = signed_up(shop)  # never ordered: inactive since signing up
    recent, recent_id = signed_up(shop)
    clock.advance(5 * DAY)
    order_and_pay(shop, recent, sku)
    for user in (lapsed_id, never_id):
        grant(app, user, "journey.win_back")

    clock.freeze(DAYTIME + 10 * DAY - timedelta(hours=1))
    assert jobs.enter_inactivity_journeys() == 0
    clock.freeze(DAYTIME + 10 * DAY + timedelta(hours=2))  # the daily run
    assert jobs.enter_inactivity_journeys() == 2  # the 10-day journey only; the 30-day one is not due
    assert jobs.enter_inactivity_journeys() == 0
    clock.advance(DAY)  # the next daily run: the same episode does not enter again
    assert jobs.enter_inactivity_journeys() == 0
    with app.app_context():
        e = JourneyEnrollment
        enrolled = db.session.execute(
            sa.select(e.user_id, Journey.name, e.anchor_ref, e.anchor_at).join(Journey).order_by(e.user_id)
        ).all()
    day = DAYTIME.date().isoformat()
    assert [tuple(row) for row in enrolled] == [(lapsed_id, "Win-back", f"inactive-{day}", DAYTIME),
                                                (never_id, "Win-back", f"inactive-{day}", DAYTIME)]  # fmt: skip
    win_backs = messages(app, template_key="journey.win_back")
    assert {m.send_after for m in win_backs} == {DAYTIME + 10 * DAY}  # T+10 of the last activity: due now
    assert jobs.sweep_due_messages() == 2 and sorted(channel.sent) == sorted(m.id for m in win_backs)

    clock.freeze(DAYTIME + 15 * DAY + timedelta(hours=2))
    assert jobs.enter_inactivity_journeys() == 1  # the shopper who ordered on day 5
    assert count(app, JourneyEnrollment, user_id=recent_id) == 1
    clock.freeze(DAYTIME + 30 * DAY + timedelta(hours=2))
    assert jobs.enter_inactivity_journeys() == 2  # now the 30-day journey, for the two lapsed since day 0
    assert count(app, JourneyEnrollment) == 5


def test_a_daily_run_later_than_yesterdays_or_a_missed_run_loses_nobody(app, shop, define):
    define({"name": "Win-back", "anchor": "inactive", "inactive_days": 10,
            "steps": [{"offset_minutes": 14400, "template_key": "journey.win_back"}]})  # fmt: skip
    clock.freeze(DAYTIME)
    _, user = signed_up(shop)
    clock.freeze(DAYTIME + 10 * DAY - timedelta(minutes=5))  # 5 minutes too early for this shopper
    assert jobs.enter_inactivity_journeys() == 0
    clock.freeze(DAYTIME + 11 * DAY + timedelta(minutes=5))  # the next run starts 10 minutes later
    assert jobs.enter_inactivity_journeys() == 1
    clock.advance(DAY)
    assert jobs.enter_inactivity_journeys() == 0  # the same episode, still in the look-back: entered once
    [step] = messages(app, user_id=user, template_key="journey.win_back")
    assert step.send_after == DAYTIME + 10 * DAY  # already due: sent at once, a few minutes late


def test_inactivity_step_is_skipped_if_the_shopper_came_back(app, shop, session, define, channel):
    define(
        {
            "name": "Win-back",
            "anchor": "inactive",
            "inactive_days": 3,
            "steps": [
                {"offset_minutes": 5 * 1440, "template_key": "journey.win_back", "condition": "no_order_since_anchor"}
            ],
        }
    )
    sku = shop.sku(shop.brand(), price=1000)
    clock.freeze(DAYTIME)
    me, user = signed_up(shop)
    grant(app, user, "journey.win_back")
    clock.freeze(DAYTIME + 3 * DAY + timedelta(hours=1))
    assert jobs.enter_inactivity_journeys() == 1
    clock.advance(DAY)
    order_and_pay(shop, me, sku)  # back before T+5
    clock.freeze(DAYTIME + 5 * DAY)
    assert jobs.sweep_due_messages() == 0
    assert queued(app, user, "journey.win_back").skip_reason == "condition_failed"


def test_every_inactive_shopper_of_the_day_enters_not_only_the_first_page(app, shop, session, define):
    define({"name": "Win-back", "anchor": "inactive", "inactive_days": 10,
            "steps": [{"offset_minutes": 14400, "template_key": "journey.win_back"}]})  # fmt: skip
    clock.freeze(DAYTIME)
    users = sorted(signed_up(shop)[1] for _ in range(5))
    clock.freeze(DAYTIME + 10 * DAY + timedelta(hours=2))
    assert reactions.enter_inactive(session, days=10, page=2) == 5
    session.commit()
    assert sorted(m.user_id for m in messages(app, template_key="journey.win_back")) == users


def test_seed_creates_the_seed_journeys_once(app, session):
    journeys.seed(session)
    journeys.seed(session)
    session.commit()
    found = session.scalars(sa.select(Journey).order_by(Journey.id)).all()
    shape = [
        (j.anchor, j.inactive_days, [(s.offset_minutes // 1440, s.template_key, s.condition) for s in j.steps])
        for j in found
    ]
    assert shape == [
        ("signed_up", None, [(1, "journey.welcome", None), (3, "journey.recommendation", "no_order_since_anchor")]),
        ("first_order_paid", None, [(5, "journey.usage_tips", None), (15, "journey.member_benefits", None)]),
        ("inactive", 10, [(10, "journey.win_back", "no_order_since_anchor")]),
    ]  # fmt: skip
    assert all(j.active for j in found)


def test_seeded_journeys_run_end_to_end_for_a_new_shopper(app, shop, session, channel):
    journeys.seed(session)
    session.commit()
    clock.freeze(DAYTIME)
    _, user = signed_up(shop)
    assert [(m.template_key, m.send_after - DAYTIME) for m in messages(app, user_id=user)] == [
        ("journey.welcome", DAY), ("journey.recommendation", 3 * DAY)]  # fmt: skip
