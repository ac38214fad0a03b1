"""What the schemathesis and object-access sweeps found (tests/api/test_schema_fuzz.py, test_object_access.py),
each pinned down by the request that showed it."""

from __future__ import annotations

import pytest

from tests.guide_helpers import Guides
from tests.live_helpers import ROOMS, Live
from tests.shop_helpers import Shop

UNKNOWN_BRAND = 999_999


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def test_a_guide_state_conflict_is_a_409_problem_not_a_500(shop, client):
    """The conflict's `status` member (the guide's) collided with the problem's own: a TypeError, a 500."""
    brand = shop.brand()
    admin = shop.merchant(brand)
    guide = Guides(shop).guide(admin, brand)

    resp = client.post(f"/api/v1/admin/guides/{guide['id']}/activate", headers=admin)

    assert resp.status_code == 409, resp.get_data(as_text=True)
    body = resp.get_json()
    assert (body["status"], body["code"], body["guide_status"]) == (409, "guides.status", "active")


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/admin/live/settings", {"direct_window_minutes": 10, "indirect_window_minutes": 60}),
        ("/api/v1/admin/guides/payout-terms", {"minimum_amount": 100}),
        ("/api/v1/admin/guides/commission/hold-settings", {"fresh_account_days": 7}),
        ("/api/v1/admin/guides/stores", {"name": "West Lake"}),
    ],
    ids=["live-windows", "payout-terms", "hold-settings", "guide-store"],
)
def test_a_platform_admin_naming_an_unknown_brand_is_404_not_a_500(client, login, path, body):
    """The row was written for the named brand and the foreign key refused it at the flush: a 500."""
    root = login("platform_admin", name="root")
    method = "POST" if path.endswith("/stores") else "PUT"

    resp = client.open(path, method=method, json={**body, "brand_id": UNKNOWN_BRAND}, headers=root)

    assert resp.status_code == 404, resp.get_data(as_text=True)
    assert resp.get_json()["code"] == "brand.not_found"


def test_a_rooms_unset_times_are_null_as_documented(client):
    """A room not started (or not ended) answers `started_at`/`ended_at` null: the document said string only."""
    room = client.get("/api/openapi.json").get_json()["components"]["schemas"]["Room"]["properties"]

    assert "null" in room["started_at"]["type"] and "null" in room["ended_at"]["type"]


def test_a_lineup_item_without_a_live_price_has_no_currency_as_documented(shop, client):
    """`make fuzz` found it: clearing an item's live price answered `currency: null`, the document said string."""
    live = Live(shop)
    brand = shop.brand()
    admin = shop.merchant(brand)
    _, host_id = live.host()
    room = live.room(admin, host_id, [live.product(brand)])
    item = room["lineup"][0]["id"]

    resp = client.patch(f"{ROOMS}/{room['id']}/lineup/{item}", json={"live_price": None, "live_quota": None},
                        headers=admin)  # fmt: skip

    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["currency"] is None
    lineup = client.get("/api/openapi.json").get_json()["components"]["schemas"]["LineupItem"]["properties"]
    assert "null" in lineup["currency"]["type"]
