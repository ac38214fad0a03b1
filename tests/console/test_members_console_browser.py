"""The members console end to end in headless Chromium at a phone's width: a platform operator signs in with a
token and reads the RFM heat map (counts from orders placed and paid through the services), the points liability
and a saved segment's size; switches to a brand; comes back after the next night's run and sees who moved and why.
A brand admin reads their brand only; a shopper's token gets the API's refusal."""

from __future__ import annotations

import uuid

import pytest

from tests.console.conftest import browser_missing, token_sign_in
from tests.member_console_helpers import MemberWorld

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")

API = "/api/v1/admin/members"
SNEAKY = '<img src=x onerror="window.__owned=1">A buyers'


@pytest.fixture
def world(app, client, login) -> MemberWorld:
    """The MemberWorld (see its docstring) with saved segments (the platform's champions, brand A's buyers, named
    with markup) and points granted by operators: 10,000 funded by brand A to s2, 5,000 by the platform to s3
    (besides the points the paid orders earned: 12 + 1 in A, 4 in B, pending)."""
    world = MemberWorld(app, client, login)
    admins = world.admins()
    for headers, body in ((admins["platform"], {"name": "Champions", "definition": {"rfm_groups": ["champions"]}}),
                          (admins["a"], {"name": SNEAKY, "definition": {}})):  # fmt: skip
        assert client.post(f"{API}/segments", json=body, headers=headers).status_code == 201
    for user, points, brand in ((2, 10_000, world.a), (3, 5_000, None)):
        body = {"user_id": world.ids[user], "points": points, "reason": "welcome back", "brand_id": brand}
        granted = client.post("/api/v1/admin/points/adjustments", json=body,
                              headers={**admins["platform"], "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert granted.status_code == 201, granted.get_json()
    return world


def cell(page, r: int, fm: int):
    return page.locator(f'#heatmap td[data-r="{r}"][data-fm="{fm}"]')


def filled(page) -> dict[tuple[int, int], tuple[str, str]]:
    """The non-empty cells as the page shows them: (R, FM) -> (count, group name)."""
    found = {}
    for td in page.locator('#heatmap td:not([data-level="0"])').all():
        found[(int(td.get_attribute("data-r")), int(td.get_attribute("data-fm")))] = (
            td.locator(".cell-count").inner_text(), td.locator(".cell-group").inner_text())  # fmt: skip
    return found


def figure(page, key: str):
    return page.locator(f'#liability [data-figure="{key}"] dd')


def test_an_operator_reads_the_grid_liability_and_a_segment_then_the_movement_after_the_next_run(live_server, phone,
                                                                                                 world):  # fmt: skip
    from playwright.sync_api import expect

    page = phone
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    token_sign_in(page, live_server, "members", world.admins()["platform"])

    # The platform: three members in three cells, each named; the fullest cell the darkest.
    expect(page.locator("#members")).to_be_visible()
    expect(page.locator("#scope option")).to_have_count(3)
    expect(page.locator("#scope")).to_have_value("")
    expect(page.locator("#heatmap td")).to_have_count(25)
    expect(cell(page, 5, 5)).to_have_attribute("data-members", "1")
    assert filled(page) == {(5, 5): ("1", "Champions"), (3, 1): ("1", "About to sleep"), (1, 2): ("1", "Hibernating")}
    expect(cell(page, 5, 5)).to_have_attribute("data-level", "5")
    expect(cell(page, 4, 1).locator(".cell-group")).to_have_text("Promising")  # empty cells are named too
    expect(page.locator("#run")).to_contain_text("3 members scored")
    expect(page.locator("#moves-empty")).to_be_visible()
    expect(page.locator("#moves-empty")).to_have_text("One run so far: nothing to compare.")
    expect(page.locator("#moves li")).to_have_count(0)
    # Liability: 10,013 points of A, 4 of B, 5,000 of the platform's; 100 points a yuan, no breakage yet.
    expect(figure(page, "points")).to_have_text("15017")
    expect(figure(page, "value")).to_contain_text("150.17")
    expect(figure(page, "net_value")).to_contain_text("150.17")
    expect(page.locator("#funders li")).to_have_count(3)
    # The platform's saved segment, counted.
    expect(page.locator("#segment option")).to_have_text(["Champions"])
    page.click("#count-button")
    expect(page.locator("#segment-count")).to_have_text("Champions: 1 member now")

    # Brand A: its own two buyers, its liability and its segment (a name with markup, shown as text).
    page.select_option("#scope", str(world.a))
    expect(page.locator("#members")).to_have_attribute("data-scope", str(world.a))
    expect(cell(page, 1, 1)).to_have_attribute("data-members", "1")
    assert filled(page) == {(5, 5): ("1", "Champions"), (1, 1): ("1", "Lost")}
    expect(figure(page, "points")).to_have_text("10013")
    expect(figure(page, "value")).to_contain_text("100.13")
    expect(page.locator("#funders li")).to_have_count(0)  # one funder: the figures say it all
    expect(page.locator("#segment option")).to_have_text([SNEAKY])
    page.click("#count-button")
    expect(page.locator("#segment-count")).to_have_text(f"{SNEAKY}: 2 members now")
    assert page.evaluate("window.__owned") is None

    # The next night's run, after s3 bought B again and s4 bought A: back at the console (a fresh token: days
    # have passed), who moved and why.
    world.second_run()
    page.click("#sign-out")
    token_sign_in(page, live_server, "members", world.admins()["platform"])
    expect(page.locator("#moves li")).to_have_count(4)
    assert filled(page) == {(5, 4): ("1", "Champions"), (4, 1): ("1", "Promising"), (2, 5): ("1", "Cannot lose"),
                            (1, 1): ("1", "Lost")}  # fmt: skip
    moved = page.locator('#moves li[data-from="hibernating"][data-to="champions"]')
    expect(moved.locator(".main")).to_have_text("Hibernating → Champions")
    expect(moved.locator(".figure")).to_have_text("1")
    expect(moved.locator(".sub")).to_have_text("R changed (1), F changed (1), M changed (1)")
    expect(page.locator('#moves li[data-from="champions"][data-to="cannot_lose"] .sub')).to_have_text("R changed (1)")
    expect(page.locator('#moves li[data-from=""][data-to="promising"] .sub')).to_have_text("first scored in this run")
    page.select_option("#scope", str(world.a))
    expect(page.locator("#moves li")).to_have_count(2)
    expect(page.locator('#moves li[data-from="champions"][data-to="loyal"] .sub')).to_have_text("R changed (1)")

    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
    token = page.evaluate("sessionStorage.getItem('mall.console.token')")
    assert token and not [url for url in requested if token in url]


def test_a_brand_admin_reads_their_brand_only(live_server, phone, world):
    from playwright.sync_api import expect

    token_sign_in(phone, live_server, "members", world.admins()["b"])

    expect(phone.locator("#members")).to_be_visible()
    expect(phone.locator("#scope option")).to_have_count(1)
    expect(phone.locator("#scope")).to_be_disabled()
    expect(phone.locator("#scope")).to_have_value(str(world.b))
    expect(cell(phone, 1, 1)).to_have_attribute("data-members", "1")
    assert filled(phone) == {(1, 1): ("1", "Lost")}
    expect(figure(phone, "points")).to_have_text("4")  # B's earned points only
    expect(phone.locator("#segments-empty")).to_be_visible()


def test_a_shoppers_token_is_refused_with_the_apis_words(client, live_server, phone, world):
    from playwright.sync_api import expect

    refusal = client.get(f"{API}/scopes", headers=world.heads[1])
    assert refusal.status_code == 403
    token_sign_in(phone, live_server, "members", world.heads[1])

    expect(phone.locator("#notice")).to_have_text(refusal.get_json()["detail"])
    expect(phone.locator("#signin")).to_be_visible()
    expect(phone.locator("#members")).to_be_hidden()
    assert phone.evaluate("sessionStorage.length") == 0
