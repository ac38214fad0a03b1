"""Issuing coupons: claims (idempotent, within the limits, for the right audience), automatic grants
(sign-up, birthday month, abandoned-cart recovery), guides' and hosts' grants, bulk grants with
progress, and the expiry reminder each coupon queues."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry

from api.extensions import db
from mall import clock
from mall.identity.models import User
from mall.promotions.coupons import grants, services
from mall.promotions.coupons.models import BulkGrant
from tests.coupon_helpers import DAYTIME, Coupons, window
from tests.notification_helpers import grant, messages, use_recorder
from tests.shop_helpers import Shop
from workers import queues
from workers.jobs import coupons as coupon_jobs
from workers.jobs import notifications as notification_jobs

DAY = timedelta(days=1)


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def coupons(shop) -> Coupons:
    clock.freeze(DAYTIME)
    return Coupons(shop)


def set_user(app, user_id: int, **values) -> None:
    with app.app_context():
        user = db.session.get(User, user_id)
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


# claims ------------------------------------------------------------------------------------------


def test_a_replayed_claim_returns_the_same_coupon_and_issues_one(shop, coupons):
    template = coupons.template(total_quantity=5)
    me = shop.shopper()
    first = coupons.claim(me, template, key="claim-1")
    again = coupons.claim(me, template, key="claim-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    assert first.get_json()["status"] == "available" and first.get_json()["source"] == "claim"
    assert [c["id"] for c in coupons.wallet(me)] == [first.get_json()["id"]]
    assert coupons.template_row(template).issued_count == 1
    # a new key is a new claim, and the per-shopper limit (default 1) refuses it
    another = coupons.claim(me, template, key="claim-2")
    assert another.status_code == 409 and another.get_json()["code"] == "coupon.limit_reached"
    assert coupons.template_row(template).issued_count == 1


def test_a_claim_without_an_idempotency_key_is_400_and_issues_nothing(shop, coupons, client):
    template = coupons.template()
    me = shop.shopper()
    resp = client.post(f"/api/v1/coupons/{template}/claim", headers=me)
    assert resp.status_code == 400 and resp.get_json()["code"] == "idempotency.key_missing"
    assert coupons.wallet(me) == [] and coupons.template_row(template).issued_count == 0


def test_per_shopper_limit_and_total_quantity(shop, coupons):
    template = coupons.template(per_shopper_limit=2, total_quantity=3)
    alice, bob = shop.shopper(), shop.shopper()
    assert [coupons.claim(alice, template).status_code for _ in range(3)] == [201, 201, 409]
    assert coupons.claim(bob, template).status_code == 201
    sold_out = coupons.claim(bob, template)
    assert sold_out.status_code == 409 and sold_out.get_json()["code"] == "coupon.sold_out"
    assert len(coupons.wallet(alice)) == 2 and len(coupons.wallet(bob)) == 1
    assert coupons.template_row(template).issued_count == 3


def test_claiming_a_relative_validity_coupon_opens_at_its_valid_from(shop, coupons):
    template = coupons.template(valid_days=7, valid_from=(DAYTIME + 2 * DAY).isoformat())
    me = shop.shopper()
    early = coupons.claim(me, template)
    assert early.status_code == 409 and early.get_json()["code"] == "coupon.not_issuing"
    clock.advance(2 * DAY)
    me = shop.shopper(shop.client.get("/api/v1/me", headers=me).get_json()["display_name"])
    claimed = coupons.row(coupons.give(me, template))
    assert (claimed.valid_from, claimed.valid_until) == (DAYTIME + 2 * DAY, DAYTIME + 9 * DAY)


def test_expired_coupons_are_marked_by_the_hourly_job_locked_ones_are_left(shop, coupons):
    me = shop.shopper()
    brief = coupons.give(me, coupons.template(**window(0, 1)))
    in_order = coupons.give(me, coupons.template(**window(0, 1)))
    lasting = coupons.give(me, coupons.template(valid_days=30))
    sku = shop.sku(shop.brand(), price=3000)
    placed = shop.place(me, [shop.add(me, sku)], shop.address(me), coupon_ids=[in_order])
    assert placed.status_code == 201, placed.get_json()
    clock.advance(DAY)
    assert coupon_jobs.expire_coupons() == 1
    assert coupon_jobs.expire_coupons() == 0
    assert {c["id"]: c["status"] for c in coupons.wallet(me)} == {
        brief: "expired",
        in_order: "locked",
        lasting: "available",
    }
    assert [c["id"] for c in coupons.wallet(me, status="expired")] == [brief]


def test_unknown_template_is_404(shop, coupons):
    resp = coupons.claim(shop.shopper(), 999_999)
    assert resp.status_code == 404 and resp.get_json()["code"] == "coupon.template_not_found"


def test_a_fixed_window_coupon_keeps_the_window_a_relative_one_runs_from_the_claim(shop, coupons):
    fixed = coupons.template(**window(2, 9))
    relative = coupons.template(valid_days=7)
    me = shop.shopper()
    held = {c["template_id"]: c for c in (coupons.claim(me, t).get_json() for t in (fixed, relative))}
    row = coupons.template_row(fixed)
    assert (coupons.row(held[fixed]["id"]).valid_from, coupons.row(held[fixed]["id"]).valid_until) == (
        row.valid_from,
        row.valid_until,
    )
    claimed = coupons.row(held[relative]["id"])
    assert (claimed.valid_from, claimed.valid_until) == (DAYTIME, DAYTIME + 7 * DAY)


def test_new_shoppers_only(shop, coupons):
    template = coupons.template(audience="new_shoppers")
    veteran, newcomer = shop.shopper(), shop.shopper()
    sku = shop.sku(shop.brand(), price=1000)
    order = shop.place(veteran, [shop.add(veteran, sku)], shop.address(veteran), coupon_ids=[]).get_json()
    assert shop.pay(veteran, order["id"]).status_code == 200
    refused = coupons.claim(veteran, template)
    assert refused.status_code == 403 and refused.get_json()["code"] == "coupon.audience"
    assert coupons.claim(newcomer, template).status_code == 201


def test_member_levels(shop, coupons):
    template = coupons.template(audience="levels", audience_levels=[2, 3])
    low, gold = shop.shopper(), shop.shopper()
    shop.set_level(low, 1)
    shop.set_level(gold, 2)
    assert coupons.claim(low, template).get_json()["code"] == "coupon.audience"
    assert coupons.claim(gold, template).status_code == 201


def test_tags_come_from_the_members_hook(shop, coupons, monkeypatch):
    template = coupons.template(audience="tags", audience_tags=["vip"])
    vip, other = shop.shopper(), shop.shopper()
    assert coupons.claim(vip, template).get_json()["code"] == "coupon.audience"  # no hook: no tags
    vip_id = shop.user_id(vip)
    monkeypatch.setattr(services, "tag_lookup", lambda session, user_id: {"vip"} if user_id == vip_id else {"new"})
    assert coupons.claim(other, template).get_json()["code"] == "coupon.audience"
    assert coupons.claim(vip, template).status_code == 201


# automatic grants ----------------------------------------------------------------------------------


def test_sign_up_grants_the_signup_coupons_once(shop, coupons):
    welcome = coupons.template(auto_grant="signup", amount=800, valid_days=14)
    coupons.template(auto_grant="birthday")  # not for sign-up
    newcomer = shop.shopper("brand-new")
    [held] = coupons.wallet(newcomer)
    assert (held["template_id"], held["source"], held["status"]) == (welcome, "signup", "available")
    assert coupons.row(held["id"]).valid_until == DAYTIME + 14 * DAY
    shop.shopper("brand-new")  # logging in again is not signing up
    assert len(coupons.wallet(newcomer)) == 1


def test_birthday_month_grants_once_a_year(app, shop, coupons):
    template = coupons.template(auto_grant="birthday", valid_days=30)
    november, march = shop.shopper("born-in-november"), shop.shopper()
    set_user(app, shop.user_id(november), birthday=date(1990, 11, 3))
    set_user(app, shop.user_id(march), birthday=date(1992, 3, 30))
    assert coupon_jobs.birthday_coupons() == 1
    assert coupon_jobs.birthday_coupons() == 0  # the daily job again: nothing twice
    [held] = coupons.wallet(november)
    assert (held["template_id"], held["source"]) == (template, "birthday")
    assert coupons.wallet(march) == []

    clock.freeze(DAYTIME.replace(year=2027))
    november = shop.shopper("born-in-november")  # a fresh token: a year has passed
    assert coupon_jobs.birthday_coupons() == 1
    assert coupon_jobs.birthday_coupons() == 0
    assert [c["source"] for c in coupons.wallet(november)] == ["birthday", "birthday"]


def test_abandoned_cart_nudge_carries_a_recovery_coupon(app, shop, coupons, monkeypatch):
    channel = use_recorder(monkeypatch)
    template = coupons.template(auto_grant="cart_recovery", amount=300, valid_days=3)
    me = shop.shopper()
    user = shop.user_id(me)
    shop.add(me, shop.sku(shop.brand(), price=4500))
    grant(app, user, "cart.abandoned")
    clock.advance(timedelta(hours=1))
    assert notification_jobs.nudge_abandoned_carts() == 1
    [held] = coupons.wallet(me)
    assert (held["template_id"], held["source"]) == (template, "cart_recovery")
    [nudge] = messages(app, user_id=user, template_key="cart.abandoned")
    assert nudge.payload["coupon_id"] == held["id"]
    assert notification_jobs.sweep_due_messages() == 1 and channel.sent == [nudge.id]


# staff grants -------------------------------------------------------------------------------------


def test_guides_and_hosts_hand_out_their_brands_coupons(shop, coupons, client):
    brand, other = shop.brand(), shop.brand()
    template = coupons.template(shop.merchant(brand), per_shopper_limit=3)
    me = shop.shopper()
    user = shop.user_id(me)

    def hand_out(headers, template_id=template, user_id=user):
        return client.post(f"/api/v1/coupon-templates/{template_id}/grants", json={"user_id": user_id},
                           headers=headers)  # fmt: skip

    guide = hand_out(shop.login("guide", name="guide-1", brand_id=brand))
    host = hand_out(shop.login("host", name="host-1", brand_id=brand))
    assert (guide.status_code, host.status_code) == (201, 201), (guide.get_json(), host.get_json())
    assert (guide.get_json()["source"], host.get_json()["source"]) == ("guide", "live")
    assert sorted(c["source"] for c in coupons.wallet(me)) == ["guide", "live"]

    foreign = hand_out(shop.login("guide", name="guide-2", brand_id=other))
    assert foreign.status_code == 403 and foreign.get_json()["code"] == "coupon.grant_forbidden"
    assert hand_out(me).status_code == 403  # shoppers do not hand out coupons
    staff = hand_out(shop.login("guide", name="guide-1", brand_id=brand), user_id=shop.user_id(shop.merchant(brand)))
    assert staff.status_code == 403 and staff.get_json()["code"] == "coupon.audience"
    assert len(coupons.wallet(me)) == 2


def test_staff_of_no_brand_cannot_hand_out_platform_coupons(shop, coupons, client):
    """A host may serve several brands and so belong to none: no brand is not the platform's brand."""
    platform_template = coupons.template()  # brand_id None: a platform coupon
    me = shop.shopper()
    resp = client.post(f"/api/v1/coupon-templates/{platform_template}/grants", json={"user_id": shop.user_id(me)},
                       headers=shop.login("host", name="host-of-none"))  # fmt: skip
    assert resp.status_code == 403 and resp.get_json()["code"] == "coupon.grant_forbidden", resp.get_json()
    assert coupons.wallet(me) == []


# bulk grants --------------------------------------------------------------------------------------


def run_queued_jobs() -> None:
    queue = queues.queue(queues.LOW)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_bulk_grant_runs_as_a_job_with_progress_and_never_grants_twice(app, shop, coupons, client, monkeypatch):
    brand = shop.brand()
    admin = shop.merchant(brand)
    template = coupons.template(admin, total_quantity=100)
    shoppers = [shop.shopper() for _ in range(5)]
    ids = [shop.user_id(h) for h in shoppers]
    coupons.give(shoppers[0], template)  # already holds one (limit 1): the bulk grant skips them
    segment = {"user_ids": [*ids, shop.user_id(admin)]}  # staff are never part of a segment

    started = client.post(f"/api/v1/admin/coupon-templates/{template}/bulk-grants", json=segment, headers=admin)
    assert started.status_code == 202, started.get_json()
    bulk = started.get_json()
    assert (bulk["status"], bulk["total"], bulk["done"]) == ("queued", 5, 0)

    def progress():
        resp = client.get(f"/api/v1/admin/coupon-bulk-grants/{bulk['id']}", headers=admin)
        assert resp.status_code == 200
        return {k: resp.get_json()[k] for k in ("status", "total", "done", "granted")}

    monkeypatch.setattr(grants, "BATCH", 2)
    with app.app_context():  # one batch, as the job commits it: progress shows
        grants.run_bulk_batch(db.session, bulk_id=bulk["id"])
        db.session.commit()
    assert progress() == {"status": "running", "total": 5, "done": 2, "granted": 1}

    run_queued_jobs()  # the job queued by the request finishes the rest
    assert progress() == {"status": "done", "total": 5, "done": 5, "granted": 4}
    assert sorted(c.user_id for c in coupons.rows(template_id=template)) == sorted(ids)
    assert [c.source for c in coupons.rows(template_id=template)].count("bulk") == 4

    coupon_jobs.run_bulk_grant(bulk["id"])  # re-running grants nothing twice
    with app.app_context():  # even a batch replayed from the start (a crash before the progress commit)
        row = db.session.get(BulkGrant, bulk["id"])
        row.status, row.done, row.last_user_id = "running", 0, 0
        db.session.commit()
    coupon_jobs.run_bulk_grant(bulk["id"])
    assert len(coupons.rows(template_id=template)) == 5
    assert progress()["granted"] == 4 and coupons.template_row(template).issued_count == 5

    refused = client.get(f"/api/v1/admin/coupon-bulk-grants/{bulk['id']}", headers=shop.merchant(shop.brand()))
    assert refused.status_code == 403 and refused.get_json()["code"] == "coupon.template_forbidden"


def test_bulk_grant_to_a_member_level_segment(app, shop, coupons, client):
    template = coupons.template()
    members = [shop.shopper() for _ in range(3)]
    for headers, level in zip(members, (1, 3, 4), strict=True):
        shop.set_level(headers, level)
    started = client.post(f"/api/v1/admin/coupon-templates/{template}/bulk-grants", json={"min_level": 3},
                          headers=coupons.platform())  # fmt: skip
    assert started.status_code == 202 and started.get_json()["total"] == 2
    run_queued_jobs()
    assert [len(coupons.wallet(h)) for h in members] == [0, 1, 1]


def test_a_bulk_grant_of_an_automatic_template_keeps_its_per_shopper_limit(shop, coupons, client):
    welcome = coupons.template(auto_grant="signup")
    me = shop.shopper()
    started = client.post(f"/api/v1/admin/coupon-templates/{welcome}/bulk-grants",
                          json={"user_ids": [shop.user_id(me)]}, headers=coupons.platform())  # fmt: skip
    assert started.status_code == 202
    run_queued_jobs()
    assert [c["source"] for c in coupons.wallet(me)] == ["signup"]  # already holds its one


def test_bulk_grant_of_a_paused_template_is_refused_up_front(shop, coupons, client):
    template = coupons.template()
    shop.shopper()
    admin = coupons.platform()
    client.post(f"/api/v1/admin/coupon-templates/{template}/status", json={"status": "paused"}, headers=admin)
    resp = client.post(f"/api/v1/admin/coupon-templates/{template}/bulk-grants", json={"min_level": 0},
                       headers=admin)  # fmt: skip
    assert resp.status_code == 409 and resp.get_json()["code"] == "coupon.not_issuing"
    assert coupons.rows(template_id=template) == []


def test_bulk_grant_of_another_brands_template_is_403(shop, coupons, client):
    template = coupons.template(shop.merchant(shop.brand()))
    resp = client.post(f"/api/v1/admin/coupon-templates/{template}/bulk-grants", json={"min_level": 0},
                       headers=shop.merchant(shop.brand()))  # fmt: skip
    assert resp.status_code == 403 and resp.get_json()["code"] == "coupon.template_forbidden"


# expiry reminders ---------------------------------------------------------------------------------


def test_expiry_reminder_is_sent_once_a_day_before_the_coupon_ends(app, shop, coupons, monkeypatch):
    channel = use_recorder(monkeypatch)
    template = coupons.template(**window(0, 3))
    me = shop.shopper()
    user = shop.user_id(me)
    coupon = coupons.give(me, template)
    grant(app, user, "coupon.expiring")
    [reminder] = messages(app, user_id=user, template_key="coupon.expiring")
    assert reminder.send_after == DAYTIME + 2 * DAY  # valid_until − 24 h
    assert (reminder.payload["coupon_id"], reminder.status, reminder.kind) == (coupon, "pending", "marketing")
    queue = queues.queue()
    registry = ScheduledJobRegistry(queue=queue)
    job_id = f"message-{reminder.id}-{int(reminder.send_after.timestamp())}"
    assert job_id in registry.get_job_ids()  # the worker's scheduler holds it until then

    clock.advance(2 * DAY - timedelta(minutes=1))
    assert notification_jobs.sweep_due_messages() == 0  # not due yet
    clock.advance(timedelta(minutes=1))
    queue.enqueue_job(queue.fetch_job(job_id))  # due by the project clock: what RQ's scheduler does
    registry.remove(job_id)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert channel.sent == [reminder.id]
    assert notification_jobs.sweep_due_messages() == 0  # sent once: the back-up sweep finds nothing
    assert channel.sent == [reminder.id]
    assert messages(app, user_id=user, template_key="coupon.expiring")[0].status == "sent"


def test_expiry_reminder_is_skipped_when_the_coupon_was_used(app, shop, coupons, monkeypatch):
    channel = use_recorder(monkeypatch)
    template = coupons.template(amount=500, **window(0, 3))
    me = shop.shopper()
    user = shop.user_id(me)
    coupon = coupons.give(me, template)
    grant(app, user, "coupon.expiring")
    sku = shop.sku(shop.brand(), price=3000)
    order = shop.place(me, [shop.add(me, sku)], shop.address(me), coupon_ids=[coupon])
    assert order.status_code == 201 and order.get_json()["discount_total"] == 500
    assert shop.pay(me, order.get_json()["id"]).status_code == 200

    clock.advance(2 * DAY)
    assert notification_jobs.sweep_due_messages() == 0
    [reminder] = messages(app, user_id=user, template_key="coupon.expiring")
    assert (reminder.status, reminder.skip_reason) == ("skipped", "condition_failed")
    assert channel.sent == []


def test_reminder_hours_follow_the_setting(app, shop, coupons, rewire):
    rewire(coupon_expiry_reminder_hours=48)
    template = coupons.template(**window(0, 5))
    me = shop.shopper()
    coupons.give(me, template)
    [reminder] = messages(app, user_id=shop.user_id(me), template_key="coupon.expiring")
    assert reminder.send_after == DAYTIME + 3 * DAY
