"""The APIs behind the operator console (/console/members) and the shopper's member centre: the R x FM heat map
with every cell named (hand-computed from orders placed and paid through the services), movements after a second
run, the scopes an operator may read, and GET /me/member; what each role may see."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.extensions import db
from mall import clock
from mall.members import ledger
from tests.member_console_helpers import T0, MemberWorld

API = "/api/v1/admin/members"
DAY = timedelta(days=1)
# The named group of each R x FM cell (R 5..1 down, FM 1..5 across), as ADR 0028's map reads.
NAMES = [
    ["new", "potential_loyalist", "potential_loyalist", "champions", "champions"],
    ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
    ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
    ["hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"],
    ["lost", "hibernating", "at_risk", "at_risk", "cannot_lose"],
]


@pytest.fixture
def world(app, client, login) -> MemberWorld:
    return MemberWorld(app, client, login)


def _ok(resp, status: int = 200):
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def _problem(resp, status: int, code: str | None = None) -> None:
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    if code:
        assert resp.get_json()["code"] == code


def _filled(heatmap: dict) -> dict[tuple[int, int], tuple[str, int]]:
    return {(c["r"], c["fm"]): (c["group"], c["members"]) for c in heatmap["cells"] if c["members"]}


def test_the_heatmap_names_every_cell_and_counts_the_members_in_it(client, world):
    ops = world.admins()["platform"]
    platform = _ok(client.get(f"{API}/rfm/heatmap", headers=ops))

    assert [(c["r"], c["fm"]) for c in platform["cells"]] == [(r, fm) for r in range(5, 0, -1) for fm in range(1, 6)]
    assert [[c["group"] for c in platform["cells"][row * 5 : row * 5 + 5]] for row in range(5)] == NAMES
    # R by last paid (s3 T-5, s2 T-2, s1 T-1: 1, 3, 5), F (1, 1, 4 orders: 1, 1, 5), M (¥4, ¥1, ¥12: 3, 1, 5).
    assert _filled(platform) == {(5, 5): ("champions", 1), (3, 1): ("about_to_sleep", 1), (1, 2): ("hibernating", 1)}
    assert platform["members"] == 3 and platform["scope"] == 0 and platform["run_id"] is not None
    assert {g["group"]: g["members"] for g in platform["groups"] if g["members"]} == {
        "champions": 1, "about_to_sleep": 1, "hibernating": 1}  # fmt: skip
    assert len(platform["groups"]) == 11  # every group, empty ones at 0

    brand_a = _ok(client.get(f"{API}/rfm/heatmap", query_string={"brand_id": world.a}, headers=ops))
    assert (brand_a["scope"], _filled(brand_a)) == (world.a, {(5, 5): ("champions", 1), (1, 1): ("lost", 1)})
    brand_b = _ok(client.get(f"{API}/rfm/heatmap", query_string={"brand_id": world.b}, headers=ops))
    assert _filled(brand_b) == {(1, 1): ("lost", 1)}  # a scope of one: every score is the lowest


def test_after_a_second_run_the_heatmap_and_movements_say_who_moved_and_why(client, world):
    world.second_run()
    admins = world.admins()

    platform = _ok(client.get(f"{API}/rfm/heatmap", headers=admins["platform"]))
    # R: s2 T-2, s1 T-1, s4 T+49, s3 T+50 -> 1, 2, 4, 5; F: 1, 5, 1, 4; M (¥1, ¥12, ¥1, ¥8): 1, 5, 1, 4.
    assert _filled(platform) == {(5, 4): ("champions", 1), (4, 1): ("promising", 1), (2, 5): ("cannot_lose", 1),
                                 (1, 1): ("lost", 1)}  # fmt: skip
    moved = _ok(client.get(f"{API}/rfm/movements", headers=admins["platform"]))
    assert moved["previous_run_id"] == platform["run_id"] - 1
    assert sorted(moved["moves"], key=lambda m: (m["from"] or "", m["to"])) == [
        {"from": None, "to": "promising", "members": 1, "because": {"new_member": 1}},
        {"from": "about_to_sleep", "to": "lost", "members": 1, "because": {"r": 1}},
        {"from": "champions", "to": "cannot_lose", "members": 1, "because": {"r": 1}},
        {"from": "hibernating", "to": "champions", "members": 1, "because": {"r": 1, "f": 1, "m": 1}},
    ]  # (where a new member sorts differs between the backends)

    brand_a = _ok(client.get(f"{API}/rfm/heatmap", headers=admins["a"]))
    assert _filled(brand_a) == {(5, 1): ("new", 1), (3, 5): ("loyal", 1), (1, 1): ("lost", 1)}
    moved_a = _ok(client.get(f"{API}/rfm/movements", headers=admins["a"]))
    assert {(m["from"], m["to"]): m["because"] for m in moved_a["moves"]} == {
        (None, "new"): {"new_member": 1}, ("champions", "loyal"): {"r": 1}}  # fmt: skip


def test_a_brand_admin_reads_their_brand_only_and_a_shopper_nothing(client, world):
    admins, shopper = world.admins(), world.heads[1]

    mine = _ok(client.get(f"{API}/rfm/heatmap", headers=admins["b"]))
    assert (mine["scope"], _filled(mine)) == (world.b, {(1, 1): ("lost", 1)})
    _problem(client.get(f"{API}/rfm/heatmap", query_string={"brand_id": world.a}, headers=admins["b"]), 403,
             "member.brand_forbidden")  # fmt: skip
    assert _ok(client.get(f"{API}/scopes", headers=admins["b"])) == [
        {"scope": world.b, "brand_id": world.b, "name": _brand_name(world, world.b)}]  # fmt: skip
    scopes = _ok(client.get(f"{API}/scopes", headers=admins["platform"]))
    assert [s["brand_id"] for s in scopes][0] is None and {s["brand_id"] for s in scopes[1:]} == {world.a, world.b}
    assert scopes[0] == {"scope": 0, "brand_id": None, "name": "Platform"}

    for path in ("/rfm/heatmap", "/scopes"):
        _problem(client.get(f"{API}{path}", headers=shopper), 403)
        _problem(client.get(f"{API}{path}"), 401)
    _problem(client.get(f"{API}/rfm/heatmap", query_string={"brand_id": 0}, headers=admins["platform"]), 422)


def _brand_name(world, brand_id: int) -> str:
    return _ok(world.client.get(f"/api/v1/brands/{brand_id}"))["name"]


def test_a_members_centre_shows_the_balance_what_expires_next_and_when(app, client, world):
    user_id = world.ids[4]
    expiries = [(100, 10), (50, 10), (70, 40), (30, 90), (20, 200)]  # (points, days from now)
    with app.app_context():
        for n, (points, days) in enumerate(expiries):
            ledger.grant(db.session, user_id=user_id, amount=points, kind="adjust", key=f"centre-{n}",
                         reason={"why": "test"}, now=T0 - 2 * DAY, expires_at=T0 + days * DAY)  # fmt: skip
        ledger.grant(db.session, user_id=user_id, amount=40, kind="earn", key="centre-pending", reason={},
                     now=T0, expires_at=T0 + DAY, state="pending")  # fmt: skip
        db.session.commit()
    clock.freeze(T0)

    centre = _ok(client.get("/api/v1/me/member", headers=world.heads[4]))

    at = lambda days: (T0 + days * DAY).isoformat()  # noqa: E731
    assert centre["user_id"] == user_id and centre["display_name"] == "s4"
    points = centre["points"]
    assert (points["available"], points["pending"], points["reserved"]) == (270, 40, 0)
    assert points["value"] == {"amount": 270, "currency": "CNY"}  # 100 points a yuan
    assert points["next_expiry"] == {"points": 150, "expires_at": at(10)}  # two lots due at the same instant
    assert points["expiring"] == [{"points": 150, "expires_at": at(10)}, {"points": 70, "expires_at": at(40)},
                                  {"points": 30, "expires_at": at(90)}]  # fmt: skip
    assert points["entries_url"] == "/api/v1/me/points/entries"
    assert _ok(client.get(f"{points['entries_url']}", headers=world.heads[4]))["items"]
    # The same balance as GET /me/points; tags, RFM groups and first touch stay the operators'.
    assert {k: v for k, v in points.items() if k not in ("expiring", "entries_url")} == _ok(
        client.get("/api/v1/me/points", headers=world.heads[4]))  # fmt: skip
    assert not {"tags", "rfm_group", "first_touch", "stage"} & set(centre)
    # The level's progress and the points catalogue, as their own endpoints answer them.
    assert centre["level"] == _ok(client.get("/api/v1/me/level", headers=world.heads[4]))
    assert centre["catalogue"] == _ok(client.get("/api/v1/me/points/catalogue", headers=world.heads[4])) == []

    empty = _ok(client.get("/api/v1/me/member", headers=world.shop.shopper("new")))
    assert empty["points"]["next_expiry"] is None and empty["points"]["expiring"] == []


def test_the_members_centre_is_the_shoppers_own(client, world):
    for role in ("brand_admin", "platform_admin"):
        headers = world.admins()["a" if role == "brand_admin" else "platform"]
        _problem(client.get("/api/v1/me/member", headers=headers), 403)
    _problem(client.get("/api/v1/me/member"), 401)


def test_the_console_apis_are_documented(client):
    spec = client.get("/api/openapi.json").get_json()
    heat = spec["paths"]["/api/v1/admin/members/rfm/heatmap"]["get"]
    assert heat["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Heatmap")
    assert "brand_id" in {p["name"] for p in heat["parameters"]}
    assert "/api/v1/admin/members/scopes" in spec["paths"]
    centre = spec["components"]["schemas"]["MemberCentre"]
    assert set(centre["properties"]) >= {"user_id", "points"}


def test_before_any_run_the_heatmap_is_all_named_cells_at_zero(client, login):
    empty = _ok(client.get(f"{API}/rfm/heatmap", headers=login("platform_admin", name="ops")))

    assert (empty["run_id"], empty["as_of"], empty["members"]) == (None, None, 0)
    assert len(empty["cells"]) == 25 and not _filled(empty)
    assert [c["group"] for c in empty["cells"][:5]] == NAMES[0]
