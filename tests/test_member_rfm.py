"""The nightly RFM run on a hand-computed example: scores, groups, lifecycle stages, movements and their reasons
over a moved clock, the cross-brand repurchase matrix, system and channel tags (ADR 0028)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.members.models import PLATFORM, BrandPair, RfmRun, RfmScore, Tag, TagAssignment
from tests.member_helpers import T0, Members

DAY = timedelta(days=1)


@pytest.fixture
def members(app) -> Members:
    return Members(app)


@pytest.fixture
def example(members):
    """Five members of brand A (and one of them of brand B), with these counted orders before T0:
    u1 A: T-1 300, T-10 300, T-20 300, T-45 300; B: T-3 100    -> F 4, M 1200 in A
    u2 A: T-2 100                                               -> F 1, M 100
    u3 A: T-40 500, T-50 500; T-5 300 wholly refunded           -> F 2, M 1000 (the refunded order does not count)
    u4 A: T-100 2000 (500 refunded), T-120 100, T-130 100       -> F 3, M 1700
    u5 A: T-200 50                                              -> F 1, M 50"""
    a, b = members.brand(), members.brand()
    u = {n: members.shopper(f"u{n}") for n in range(1, 6)}
    for days in (1, 10, 20, 45):
        members.order(u[1], {a: 300}, T0 - days * DAY)
    members.order(u[1], {b: 100}, T0 - 3 * DAY)
    members.order(u[2], {a: 100}, T0 - 2 * DAY)
    members.order(u[3], {a: 500}, T0 - 40 * DAY)
    members.order(u[3], {a: 500}, T0 - 50 * DAY)
    members.order(u[3], {a: 300}, T0 - 5 * DAY, refunded={a: 300})
    members.order(u[4], {a: 2000}, T0 - 100 * DAY, refunded={a: 500})
    members.order(u[4], {a: 100}, T0 - 120 * DAY)
    members.order(u[4], {a: 100}, T0 - 130 * DAY)
    members.order(u[5], {a: 50}, T0 - 200 * DAY)
    return a, b, u


def _view(rows, u) -> dict:
    return {n: (rows[uid].r, rows[uid].f, rows[uid].m, rows[uid].grp, rows[uid].stage) for n, uid in u.items()}


def test_scores_groups_and_stages_on_a_hand_computed_example(members, example):
    a, b, u = example
    members.run(T0)
    rows = members.scores(a)
    # R by last counted order, F by counted orders (ties share the lower quintile), M paid net of refunds;
    # the group from R and FM = round-half-up((F + M) / 2).
    assert _view(rows, u) == {
        1: (5, 5, 4, "champions", "mature"),
        2: (4, 1, 2, "potential_loyalist", "new"),
        3: (3, 3, 3, "need_attention", "growing"),
        4: (2, 4, 5, "cannot_lose", "declining"),
        5: (1, 1, 1, "lost", "lost"),
    }
    assert [(rows[u[n]].frequency, rows[u[n]].monetary) for n in range(1, 6)] == [
        (4, 1200), (1, 100), (2, 1000), (3, 1700), (1, 50)]  # fmt: skip
    assert rows[u[3]].last_paid_at == T0 - 40 * DAY  # the wholly refunded order is not a purchase
    assert all(row.prev_grp is None for row in rows.values())
    platform = members.scores(PLATFORM)
    assert (platform[u[1]].frequency, platform[u[1]].monetary) == (5, 1300)
    assert _view(platform, u)[1][3] == "champions"
    assert set(members.scores(b)) == {u[1]}


def test_movements_say_which_score_changed_after_a_moved_clock(members, example):
    a, _, u = example
    members.run(T0)
    members.order(u[2], {a: 200}, T0 + 59 * DAY)
    members.run(T0 + 60 * DAY)
    rows = members.scores(a)
    assert _view(rows, u) == {
        1: (4, 5, 4, "loyal", "declining"),
        2: (5, 2, 2, "potential_loyalist", "growing"),
        3: (3, 2, 3, "need_attention", "declining"),
        4: (2, 4, 5, "cannot_lose", "declining"),
        5: (1, 1, 1, "lost", "lost"),
    }
    moved = rows[u[1]]
    assert (moved.prev_grp, moved.grp, moved.prev_r, moved.r, moved.prev_f, moved.f) == (
        "champions", "loyal", 5, 4, 5, 5)  # fmt: skip
    assert (rows[u[2]].prev_r, rows[u[2]].prev_f, rows[u[2]].prev_grp) == (4, 1, "potential_loyalist")


def test_lifecycle_moves_over_a_moved_clock(members, example):
    a, _, u = example
    stages = []
    members.order(u[2], {a: 200}, T0 + 59 * DAY)
    for at in (T0, T0 + 60 * DAY, T0 + 130 * DAY, T0 + 260 * DAY):
        members.run(at)
        rows = members.scores(a)
        stages.append({n: rows[uid].stage for n, uid in u.items()})
    assert [s[2] for s in stages] == ["new", "growing", "declining", "lost"]
    assert [s[1] for s in stages] == ["mature", "declining", "declining", "lost"]
    assert [s[4] for s in stages] == ["declining", "declining", "lost", "lost"]
    rows = members.scores(a)
    assert (rows[u[2]].prev_stage, rows[u[2]].stage) == ("declining", "lost")


def test_cross_brand_repurchase_and_runs_kept(members, example, app):
    a, b, u = example
    for days in (0, 1, 2):
        members.run(T0 + days * DAY)
    with app.app_context():
        runs = db.session.scalars(sa.select(RfmRun.id).order_by(RfmRun.id)).all()
        kept = set(db.session.scalars(sa.select(RfmScore.run_id).distinct()))
        pairs = {(p.brand_a, p.brand_b): (p.buyers, p.repurchased)
                 for p in db.session.scalars(sa.select(BrandPair).filter_by(run_id=runs[-1]))}  # fmt: skip
    assert kept == set(runs[-2:])  # older runs pruned in batches
    assert pairs == {(a, b): (5, 1), (b, a): (1, 1)}


def test_system_and_channel_tags(members, example, app):
    a, b, u = example
    members.order(u[5], {b: 80}, T0 - 190 * DAY, live_room_id=7)
    members.run(T0)
    with app.app_context():
        held = db.session.execute(sa.select(TagAssignment.user_id, Tag.code, Tag.kind)
                                  .join(Tag, Tag.id == TagAssignment.tag_id)).all()  # fmt: skip
    by_user: dict[int, set[str]] = {}
    for user_id, code, _ in held:
        by_user.setdefault(user_id, set()).add(code)
    assert {f"bought_brand:{a}", f"bought_brand:{b}", "cross_brand_buyer"} <= by_user[u[1]]
    assert f"bought_category:{members.category_of(a)}" in by_user[u[2]]
    assert "cross_brand_buyer" not in by_user[u[2]]
    assert {"channel:live_room", "channel:live_room:7", "cross_brand_buyer"} <= by_user[u[5]]
    members.run(T0 + DAY)  # refreshed, not duplicated
    with app.app_context():
        again = db.session.scalar(sa.select(sa.func.count()).select_from(TagAssignment))
    assert again == len(held)


def test_the_sign_up_channel_is_the_first_touch_and_a_channel_tag(app, client, fake_wechat, members):
    from mall.members.models import FirstTouch

    fake_wechat.issue_code("c-1", openid="o-1")
    resp = client.post("/api/v1/auth/wechat", json={"code": "c-1", "channel": "poster-spring"})
    assert resp.status_code == 200, resp.get_json()
    user_id = resp.get_json()["user"]["id"]
    brand = members.brand()
    members.order(user_id, {brand: 100}, T0 - DAY, live_room_id=3)  # a later live order does not move it
    members.run(T0)
    with app.app_context():
        touch = db.session.get(FirstTouch, user_id)
        codes = set(db.session.scalars(sa.select(Tag.code).join(TagAssignment, TagAssignment.tag_id == Tag.id)
                                       .where(TagAssignment.user_id == user_id)))  # fmt: skip
    assert (touch.channel, touch.ref) == ("signup", "poster-spring")
    assert {"channel:signup", "channel:signup:poster-spring"} <= codes and "channel:live_room" not in codes


def test_a_journey_step_on_the_in_segment_condition(app, members, example):
    from mall.members.models import Segment
    from mall.notifications import guards, journeys
    from mall.notifications.models import Message

    _, _, u = example
    members.run(T0)
    with app.app_context():
        segment = Segment(scope=PLATFORM, name="champions", definition={"rfm_groups": ["champions"]})
        db.session.add(segment)
        db.session.flush()
        step = {"offset_minutes": 60, "template_key": "journey.welcome", "condition": f"in_segment:{segment.id}"}
        journeys.define(db.session, name="VIP welcome", anchor="signed_up", steps=[step])
        for n in (1, 2):
            journeys.enter(db.session, user_id=u[n], anchor="signed_up", anchor_ref="signup")
        held = {m.user_id: guards.holds(db.session, m.user_id, m.guard) for m in db.session.scalars(sa.select(Message))}
        db.session.rollback()
    assert held == {u[1]: True, u[2]: False}  # re-checked when the step fires: only the champion gets it


@pytest.mark.parametrize(
    "amounts",
    [
        [100, 100, 200, 300, 300, 300, 400, 500, 600, 700, 700],  # 11 members: 5 x rank / 10 lands on whole scores
        [50, 60, 60, 70, 80, 90],  # 6 members: every quotient 5 x rank / 5 is whole
        [10, 10, 10, 10, 10, 10, 10],  # one value: everyone ties at the bottom
    ],
)
def test_quintiles_are_percent_rank_quintiles_with_ties(members, amounts):
    """score = min(5, 1 + floor(5 * percent_rank)), ties sharing the lower score, on both backends (PostgreSQL
    reads cut values from a sorted array instead of ranking with a window: the same float arithmetic)."""
    brand = members.brand()
    users = [members.shopper() for _ in amounts]
    for n, (user, amount) in enumerate(zip(users, amounts, strict=True)):
        members.order(user, {brand: amount}, T0 - (n % 4 + 1) * DAY)  # recency with ties as well
    members.run(T0)
    rows = members.scores(brand)

    def quintile(values: list, value) -> int:
        below = sum(1 for v in values if v < value)
        return min(5, 1 + math.floor(below / (len(values) - 1) * 5))

    paid = {user: T0 - (n % 4 + 1) * DAY for n, user in enumerate(users)}
    assert {u: rows[u].m for u in users} == {u: quintile(amounts, a) for u, a in zip(users, amounts, strict=True)}
    assert {u: rows[u].r for u in users} == {u: quintile(list(paid.values()), paid[u]) for u in users}
    assert {rows[u].f for u in users} == {1}
