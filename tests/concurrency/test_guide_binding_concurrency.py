"""Racing link opens: one shopper opening many guides' links of one brand at the same moment ends with exactly one
binding in force, and a history that explains it. Real threads, each with its own client and connection;
meaningful on PostgreSQL (where opens of one shopper and brand queue on an advisory lock), and the database's own
guard (a partial unique index) for a writer that skips the services."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from api.extensions import db
from mall import clock
from mall.guides.models import Binding, BindingEvent
from tests.concurrency.test_order_concurrency import race
from tests.guide_helpers import OPEN, Guides
from tests.shop_helpers import Shop

N = 10


@pytest.fixture
def guides(app, client, login) -> Guides:
    return Guides(Shop(app, client, login))


@pytest.fixture
def crowd(guides):
    """A brand with N active guides, a link each, and one shopper."""
    brand = guides.shop.brand()
    admin = guides.login("brand_admin", brand)
    links = [guides.link(guides.guide(admin, brand)) for _ in range(N)]
    shopper = guides.login()
    return brand, admin, links, shopper, guides.shop.user_id(shopper)


def _events(app, shopper_id: int) -> list[BindingEvent]:
    with app.app_context():
        return list(db.session.scalars(sa.select(BindingEvent).where(BindingEvent.shopper_id == shopper_id)
                                       .order_by(BindingEvent.id)))  # fmt: skip


def _open_all(app, links, shopper):
    calls = [lambda client, link=link: client.post(OPEN, json={"token": link["token"]}, headers=shopper)
             for link in links]  # fmt: skip
    responses = race(app, calls)
    assert [r.status_code for r in responses] == [200] * N, [r.get_json() for r in responses if r.status_code != 200]
    return [r.get_json()["binding"] for r in responses]


def test_racing_opens_under_protection_bind_one_guide_and_refuse_the_rest_with_their_reason(app, guides, crowd):
    brand, _, links, shopper, shopper_id = crowd
    outcomes = _open_all(app, links, shopper)

    bound = [o for o in outcomes if o["kind"] == "bound"]
    refused = [o for o in outcomes if o["kind"] == "refused"]
    assert len(bound) == 1 and len(refused) == N - 1
    assert {o["reason"]["why"] for o in refused} == {"protection_period"}
    assert {o["reason"]["bound_guide_id"] for o in refused} == {bound[0]["guide_id"]}
    assert [b.guide_id for b in guides.active(shopper_id, brand)] == [bound[0]["guide_id"]]


def test_racing_opens_under_last_click_leave_one_binding_in_force_and_a_chain_of_take_overs(app, guides, crowd):
    brand, admin, links, shopper, shopper_id = crowd
    guides.rule(admin, "last_click")
    outcomes = _open_all(app, links, shopper)

    assert [o["kind"] for o in outcomes] == ["bound"] * N
    active = guides.active(shopper_id, brand)
    assert len(active) == 1
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Binding).where(Binding.shopper_id == shopper_id).order_by(Binding.id)))
    assert [r.ended_at is None for r in rows] == [False] * (N - 1) + [True]
    for before, after in zip(rows, rows[1:], strict=False):  # each take-over replaced the binding in force then
        assert after.reason["replaced_binding_id"] == before.id and before.end_reason == "taken_over"
    assert [e.kind for e in _events(app, shopper_id)] == ["bound"] + ["ended", "bound"] * (N - 1)


def test_the_database_refuses_a_second_binding_in_force(app, guides, crowd):
    brand, _, links, shopper, shopper_id = crowd
    first = guides.opened(shopper, links[0])
    with app.app_context():
        now = clock.now()
        db.session.add(Binding(shopper_id=shopper_id, brand_id=brand, guide_id=links[1]["guide_id"], since=now,
                               reason={}))  # fmt: skip
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
        ended = db.session.get(Binding, first["binding_id"])
        ended.ended_at = now
        db.session.add(Binding(shopper_id=shopper_id, brand_id=brand, guide_id=links[1]["guide_id"], since=now,
                               reason={}))  # fmt: skip
        db.session.commit()  # once the first has ended, another may be in force


def test_a_hand_over_racing_take_overs_leaves_each_customer_one_binding_and_no_deadlock(app, guides, crowd):
    brand, admin, links, _, _ = crowd
    guides.rule(admin, "last_click")
    shoppers = [guides.login() for _ in range(6)]
    for shopper in shoppers:
        guides.opened(shopper, links[0])
    url = f"/api/v1/admin/guides/{links[0]['guide_id']}/hand-over"
    calls = [lambda client: client.post(url, json={"to_guide_id": links[1]["guide_id"]}, headers=admin)]
    calls += [lambda client, s=s: client.post(OPEN, json={"token": links[2]["token"]}, headers=s) for s in shoppers]
    responses = race(app, calls)

    assert [r.status_code for r in responses] == [200] * len(calls), [r.get_json() for r in responses]
    for shopper in shoppers:
        active = guides.active(guides.shop.user_id(shopper), brand)
        assert len(active) == 1 and active[0].guide_id in {links[1]["guide_id"], links[2]["guide_id"]}
