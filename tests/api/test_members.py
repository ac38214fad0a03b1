"""Operators' members API: segments counted and listed, a segment as a coupon audience and a bulk grant's
recipients, manual tags by upload, RFM movements and lifecycle over a moved clock, and what a brand admin may
see (their brand only)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import SimpleWorker

from mall import clock
from tests.coupon_helpers import Coupons
from tests.member_helpers import T0, Members
from tests.shop_helpers import Shop
from workers import queues

DAY = timedelta(days=1)
API = "/api/v1/admin/members"


@pytest.fixture
def world(app, client, login):
    """Brands A and B; s1 bought A four times (T-1 .. T-45), s2 once (T-2), s3 bought B (T-5), s4 nothing; the
    nightly run at T0."""
    clock.freeze(T0)
    shop, members = Shop(app, client, login), Members(app)
    a, b = members.brand(), members.brand()
    heads = {n: shop.shopper(f"s{n}") for n in range(1, 5)}
    ids = {n: shop.user_id(h) for n, h in heads.items()}
    for days in (1, 10, 20, 45):
        members.order(ids[1], {a: 300}, T0 - days * DAY)
    members.order(ids[2], {a: 100}, T0 - 2 * DAY)
    members.order(ids[3], {b: 400}, T0 - 5 * DAY)
    members.run(T0)
    ops = login("platform_admin", name="ops")
    return {"a": a, "b": b, "heads": heads, "ids": ids, "members": members, "shop": shop, "platform": ops,
            "admin_a": shop.merchant(a), "admin_b": shop.merchant(b)}  # fmt: skip


def _ok(resp, status: int = 200):
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def _problem(resp, status: int, code: str) -> None:
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["code"] == code


def _segment(client, headers, definition: dict, name: str = "seg", **extra) -> int:
    body = {"name": name, "definition": definition, **extra}
    return _ok(client.post(f"{API}/segments", json=body, headers=headers), 201)["id"]


def test_segments_are_counted_before_use_and_listed_in_pages(client, world):
    ops, ids = world["platform"], world["ids"]
    preview = client.post(f"{API}/segments/count", json={"definition": {"stages": ["new"]}}, headers=ops)
    assert _ok(preview) == {"count": 2}  # s2 and s3: their first order is days old
    seg = _segment(client, ops, {"bought_brands": [world["a"]]})
    assert _ok(client.get(f"{API}/segments/{seg}/count", headers=ops)) == {"count": 2}
    first = _ok(client.get(f"{API}/segments/{seg}/members", query_string={"limit": 1}, headers=ops))
    assert [(m["user_id"], m["rfm_group"], m["stage"]) for m in first] == [(ids[1], "champions", "mature")]
    rest = _ok(client.get(f"{API}/segments/{seg}/members", query_string={"after": ids[1]}, headers=ops))
    assert [m["user_id"] for m in rest] == [ids[2]]

    tag = _ok(client.post(f"{API}/tags", json={"code": "vip", "name": "VIP"}, headers=ops), 201)["id"]
    staff = world["shop"].user_id(world["admin_a"])
    uploaded = client.post(f"{API}/tags/{tag}/assign", json={"user_ids": [ids[2], ids[4], staff]}, headers=ops)
    assert _ok(uploaded) == {"count": 2}  # staff are never members
    vip = _segment(client, ops, {"tags_any": ["vip"]}, name="vip")
    assert [m["user_id"] for m in _ok(client.get(f"{API}/segments/{vip}/members", headers=ops))] == [ids[2], ids[4]]
    both = client.post(f"{API}/segments/count", json={"definition": {"tags_any": ["vip"], "bought_brands": [world["a"]]}},
                       headers=ops)  # fmt: skip
    assert _ok(both) == {"count": 1}
    _problem(client.post(f"{API}/tags", json={"code": "channel:x"}, headers=ops), 422, "member.tag_reserved")


def test_a_segment_is_a_coupon_audience_and_a_bulk_grant(app, client, world):
    coupons = Coupons(world["shop"])
    admin_a, heads = world["admin_a"], world["heads"]
    new_in_a = _segment(client, admin_a, {"stages": ["new"]})
    assert _ok(client.get(f"{API}/segments/{new_in_a}/count", headers=admin_a)) == {"count": 1}  # s2 only
    template = coupons.template(admin_a, audience="segment", audience_segment_id=new_in_a)
    assert coupons.claim(heads[2], template).status_code == 201
    for outsider in (heads[1], heads[3], heads[4]):
        _problem(coupons.claim(outsider, template), 403, "coupon.audience")
    _problem(coupons.create(world["admin_b"], audience="segment", audience_segment_id=new_in_a), 422,
             "coupon.segment_unknown")  # fmt: skip
    _problem(client.delete(f"{API}/segments/{new_in_a}", headers=admin_a), 409, "member.segment_in_use")

    bulk_template = coupons.template(admin_a, total_quantity=10)
    started = client.post(f"/api/v1/admin/coupon-templates/{bulk_template}/bulk-grants",
                          json={"segment_id": new_in_a}, headers=admin_a)  # fmt: skip
    assert _ok(started, 202)["total"] == 1
    queue = queues.queue(queues.LOW)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert [c.user_id for c in coupons.rows(template_id=bulk_template)] == [world["ids"][2]]


def test_movements_and_lifecycle_after_a_moved_clock(client, login, world):
    members, ids = world["members"], world["ids"]
    members.order(ids[3], {world["b"]: 400}, T0 + 50 * DAY)
    members.run(T0 + 60 * DAY)
    ops = login("platform_admin", name="ops")  # a token of the moved clock's day
    moved = _ok(client.get(f"{API}/rfm/movements", headers=ops))
    assert moved["moves"] == [
        {"from": "about_to_sleep", "to": "lost", "members": 1, "because": {"r": 1}},
        {"from": "champions", "to": "loyal", "members": 1, "because": {"r": 1}},
        {"from": "hibernating", "to": "potential_loyalist", "members": 1, "because": {"r": 1, "f": 1}},
    ]
    stages = _ok(client.get(f"{API}/lifecycle", headers=ops))
    assert stages["stages"] == [{"stage": "declining", "members": 2}, {"stage": "growing", "members": 1}]
    assert stages["transitions"] == [{"from": "mature", "to": "declining", "members": 1},
                                     {"from": "new", "to": "declining", "members": 1},
                                     {"from": "new", "to": "growing", "members": 1}]  # fmt: skip
    grid = _ok(client.get(f"{API}/rfm/grid", headers=ops))
    assert sum(c["members"] for c in grid["cells"]) == 3
    assert {g["group"] for g in grid["groups"]} == {"loyal", "lost", "potential_loyalist"}


def test_a_brand_admin_sees_only_their_brand(client, world):
    a, b, admin_a, admin_b, ids = world["a"], world["b"], world["admin_a"], world["admin_b"], world["ids"]
    seg_a = _segment(client, admin_a, {})
    assert [m["user_id"] for m in _ok(client.get(f"{API}/segments/{seg_a}/members", headers=admin_a))] == [
        ids[1], ids[2]]  # fmt: skip
    _problem(client.get(f"{API}/segments/{seg_a}", headers=admin_b), 404, "member.segment_not_found")
    _problem(client.get(f"{API}/segments/{seg_a}/members", headers=admin_b), 404, "member.segment_not_found")
    assert _ok(client.get(f"{API}/segments", headers=admin_b)) == []
    all_b = _segment(client, admin_b, {})
    assert _ok(client.get(f"{API}/segments/{all_b}/count", headers=admin_b)) == {"count": 1}  # s3, not A's buyers
    _problem(client.post(f"{API}/segments/count", json={"definition": {"bought_brands": [a]}}, headers=admin_b), 403,
             "member.brand_forbidden")  # fmt: skip
    _problem(client.get(f"{API}/rfm/grid", query_string={"brand_id": a}, headers=admin_b), 403,
             "member.brand_forbidden")  # fmt: skip
    grid_b = _ok(client.get(f"{API}/rfm/grid", headers=admin_b))
    assert (grid_b["scope"], sum(c["members"] for c in grid_b["cells"])) == (b, 1)
    grid_a = _ok(client.get(f"{API}/rfm/grid", query_string={"brand_id": a}, headers=world["platform"]))
    assert sum(c["members"] for c in grid_a["cells"]) == 2
    tag_a = _ok(client.post(f"{API}/tags", json={"code": "vip"}, headers=admin_a), 201)["id"]
    _problem(client.post(f"{API}/tags/{tag_a}/assign", json={"user_ids": [ids[4]]}, headers=admin_b), 404,
             "member.tag_not_found")  # fmt: skip
    assert [t["id"] for t in _ok(client.get(f"{API}/tags", query_string={"kind": "manual"}, headers=admin_b))] == []
    system = _ok(client.get(f"{API}/tags", query_string={"kind": "system"}, headers=admin_a))
    _problem(client.patch(f"{API}/tags/{system[0]['id']}", json={"name": "x"}, headers=admin_a), 403,
             "member.tag_read_only")  # fmt: skip
    _ok(client.post(f"{API}/tags/{tag_a}/assign", json={"user_ids": [ids[4]]}, headers=admin_a))
    assert _ok(client.get(f"{API}/segments/{seg_a}/count", headers=admin_a)) == {"count": 3}  # tagged by A: A's
    assert all(p["brand_a"] == b for p in _ok(client.get(f"{API}/cross-brand", headers=admin_b))["pairs"])
