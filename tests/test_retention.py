"""The nightly prune (mall/retention.py, workers/jobs/retention.py): per table, rows past their window go, young
ones and the ones still needed (pending messages, unprocessed webhooks, an order's events, the visits a room's
numbers count) stay, and a run stops at its batch budget."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.cart.models import Cart
from mall.events import DomainEvent
from mall.guides.models import GuideVisit
from mall.identity.models import RefreshToken
from mall.live.tracking import RoomVisit
from mall.notifications.models import Message, SubscriptionGrant
from mall.notifications.nudges import CartNudge
from mall.orders.models import IdempotencyRecord
from mall.payments.models import WebhookEvent
from tests.api.test_live_attribution import live, numbers, pin, show, visit  # noqa: F401 (fixtures)
from tests.guide_helpers import Guides
from tests.shop_helpers import Shop
from workers.jobs.retention import prune_old_rows

DAY = timedelta(days=1)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def ago(days: float):
    return clock.now() - days * DAY


def add(app, model, *rows: dict) -> list[int]:
    with app.app_context():
        objs = [model(**row) for row in rows]
        db.session.add_all(objs)
        db.session.commit()
        return [o.id for o in objs]


def left(app, model) -> set[int]:
    with app.app_context():
        return set(db.session.scalars(sa.select(model.id)))


def test_idempotency_records_outlive_the_retry_window_of_seven_days(app):
    def record(days, key):
        return {"user_id": 1, "scope": "orders.place", "key": key, "request_hash": "h", "status_code": 201,
                "response": {}, "created_at": ago(days)}  # fmt: skip

    old, young = add(app, IdempotencyRecord, record(7.1, "old"), record(6.9, "young"))
    assert prune_old_rows()["idempotency_records"] == 1
    assert left(app, IdempotencyRecord) == {young}


def test_domain_events_go_after_180_days_except_an_orders_history(app):
    def event(days, aggregate):
        return {"type": "x.happened", "aggregate_type": aggregate, "aggregate_id": 1, "payload": {},
                "occurred_at": ago(days)}  # fmt: skip

    _, old_order, young = add(app, DomainEvent, event(181, "product"), event(400, "order"), event(179, "product"))
    assert prune_old_rows()["domain_events"] == 1
    assert left(app, DomainEvent) == {old_order, young}


def test_done_messages_go_after_90_days_pending_ones_stay_and_a_spent_grant_is_kept(app, shop):
    user_id = shop.user_id(shop.shopper())

    def message(days, status, n):
        return {"user_id": user_id, "template_key": "order.paid", "channel": "wechat", "kind": "transactional",
                "payload": {}, "dedupe_key": f"m-{n}", "status": status, "created_at": ago(days),
                "send_after": ago(days)}  # fmt: skip

    sent, skipped, failed, pending, sending, young = add(app, Message, message(91, "sent", 1),
        message(91, "skipped", 2), message(91, "failed", 3), message(91, "pending", 4), message(91, "sending", 5),
        message(89, "sent", 6))  # fmt: skip
    (grant,) = add(app, SubscriptionGrant, {"user_id": user_id, "template_key": "order.paid", "granted_at": ago(92),
                                            "consumed_at": ago(91), "message_id": sent})  # fmt: skip
    assert prune_old_rows()["messages"] == 3
    assert left(app, Message) == {pending, sending, young}
    with app.app_context():
        spent = db.session.get(SubscriptionGrant, grant)
        assert spent.message_id is None and spent.consumed_at is not None


def test_processed_webhook_events_go_after_30_days_unprocessed_ones_stay(app):
    def event(days, n, processed=True):
        return {"provider": "stripe", "event_id": f"evt_{n}", "type": "payment_intent.succeeded", "payload": {},
                "received_at": ago(days), "processed_at": ago(days) if processed else None}  # fmt: skip

    _, unprocessed, young = add(app, WebhookEvent, event(31, 1), event(31, 2, processed=False), event(29, 3))
    assert prune_old_rows()["webhook_events"] == 1
    assert left(app, WebhookEvent) == {unprocessed, young}


def test_cart_nudge_claims_go_after_30_days(app, shop):
    (cart,) = add(app, Cart, {"user_id": shop.user_id(shop.shopper())})
    _, young = add(app, CartNudge, {"cart_id": cart, "version": 1, "stage": 1, "created_at": ago(31)},
                   {"cart_id": cart, "version": 2, "stage": 1, "created_at": ago(29)})  # fmt: skip
    assert prune_old_rows()["cart_nudges"] == 1
    assert left(app, CartNudge) == {young}


def test_guide_visits_go_after_400_days(app, shop):
    guides = Guides(shop)
    brand = shop.brand()
    link = guides.link(guides.guide(guides.login("brand_admin", brand), brand))
    guides.opened(guides.login(), link)
    with app.app_context():
        opened = db.session.scalars(sa.select(GuideVisit)).one()
        row = {c: getattr(opened, c) for c in ("guide_id", "brand_id", "shopper_id", "link_id")}
    _, young = add(app, GuideVisit, {**row, "visited_at": ago(401)}, {**row, "visited_at": ago(399)})
    assert prune_old_rows()["guide_visits"] == 1
    assert left(app, GuideVisit) == {opened.id, young}


def test_a_logins_refresh_tokens_go_30_days_after_its_absolute_expiry_and_a_live_login_still_refreshes(app, shop):
    login = shop.client.post("/api/v1/auth/dev", json={"role": "shopper", "name": "kept-login"}).get_json()
    user_id = shop.user_id({"Authorization": f"Bearer {login['token']}"})

    def token(n: int, family_ended_days_ago: float) -> dict:
        ended = ago(family_ended_days_ago)
        return {"user_id": user_id, "family": f"f{n}", "token_hash": f"{n:064d}", "token_version": 1,
                "access_jti": f"j{n}", "access_expires_at": ended, "issued_at": ended - 90 * DAY,
                "expires_at": ended, "family_expires_at": ended}  # fmt: skip

    old, young = add(app, RefreshToken, token(1, 31), token(2, 29))
    assert prune_old_rows()["refresh_tokens"] == 1
    assert old not in left(app, RefreshToken) and young in left(app, RefreshToken)
    refreshed = shop.client.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.get_json()


def test_room_visits_are_compacted_to_what_the_rooms_numbers_count(app, client, shop, live, show):  # noqa: F811
    a, b = show["products"]
    me, other = shop.shopper(), shop.shopper()
    for _ in range(3):  # before any pin: in no segment, so any later visit of mine stands for these
        assert visit(client, me, show["room"]).get_json()["recorded"]
        clock.advance(timedelta(minutes=2))
    pin(live, show, a)
    for who in (me, me, other, me):  # in segment A: one visit of each shopper is needed
        clock.advance(timedelta(minutes=2))
        assert visit(client, who, show["room"]).get_json()["recorded"]
    clock.advance(timedelta(minutes=2))
    pin(live, show, b)
    clock.advance(timedelta(minutes=2))
    assert visit(client, other, show["room"]).get_json()["recorded"]  # in segment B, other's latest
    clock.advance(timedelta(minutes=2))
    before = numbers(client, show["host"], show["room"]).get_json()
    assert [s["viewers"] for s in before["segments"]] == [2, 1] and before["totals"]["viewers"] == 2
    then = clock.now()

    clock.freeze(then + 34 * DAY)
    assert prune_old_rows()["live_room_visits"] == 0  # not yet past the window (35 days)
    clock.freeze(then + 36 * DAY)
    assert prune_old_rows()["live_room_visits"] == 5  # mine but the latest (in A); other's in A and in B stay

    with app.app_context():
        kept = db.session.execute(sa.select(RoomVisit.user_id, sa.func.count()).group_by(RoomVisit.user_id)).all()
    assert sorted(n for _, n in kept) == [1, 2]
    clock.freeze(then)
    assert numbers(client, show["host"], show["room"]).get_json() == before


def test_a_run_stops_at_its_batch_budget_and_the_next_goes_on(app, rewire):
    rows = [{"user_id": 1, "scope": "s", "key": f"k{n}", "request_hash": "h", "created_at": ago(8)} for n in range(5)]
    add(app, IdempotencyRecord, *rows)
    rewire(retention_batch=2, retention_max_batches=2)
    assert prune_old_rows()["idempotency_records"] == 4
    assert len(left(app, IdempotencyRecord)) == 1
    assert prune_old_rows()["idempotency_records"] == 1
    assert left(app, IdempotencyRecord) == set()
