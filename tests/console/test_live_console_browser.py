"""The host console end to end in headless Chromium at a phone's width: a host signs in with the staff password,
opens their room, starts the show and pins from the page; the viewer endpoint and the page both change."""

from __future__ import annotations

import json
import re

import pytest

from api.extensions import db
from mall.catalog.models import Product
from tests.console.conftest import browser_missing
from tests.live_helpers import Live
from tests.shop_helpers import Shop

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")

PASSWORD = "pin-it-now-123"
SNEAKY = '<img src=x onerror="window.__owned=1">Silk scarf'


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def show(app, client, shop):
    """A brand's scheduled room with two products (B first in the lineup, titled with markup, live-priced,
    quota 5 of stock 7; then A), and its host: a staff account with a password, made by the brand's admin."""
    live = Live(shop)
    brand = shop.brand()
    a, b = live.product(brand, price=9900), live.product(brand, price=4900, stock=7)
    with app.app_context():
        db.session.get(Product, b).title = SNEAKY
        db.session.commit()
    admin = shop.merchant(brand)
    email = f"host-{brand}@console.test"
    staff = {"role": "host", "name": "Lily", "email": email, "password": PASSWORD, "brand_id": brand}
    resp = client.post("/api/v1/admin/staff", json=staff, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    lineup = [{"product_id": b, "live_price": 3900, "live_quota": 5}, {"product_id": a}]
    room = live.room(admin, resp.get_json()["id"], [], lineup=lineup)
    return {"room": room["id"], "a": a, "b": b, "email": email, "admin": admin, "live": live}


def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/console/live")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#signin-button")


def buy_through_link(client, show, host_token: str, room_id: int) -> None:
    """A viewer opens the host's cart link for the pinned B, orders and pays."""
    shop, host = show["live"].shop, {"Authorization": f"Bearer {host_token}"}
    link = client.post(f"/api/v1/live/rooms/{room_id}/links", json={"product_id": show["b"]}, headers=host)
    assert link.status_code == 201, link.get_json()
    viewer = shop.shopper()
    opened = client.post("/api/v1/live/links/open", json={"token": link.get_json()["token"]}, headers=viewer)
    assert opened.status_code == 200, opened.get_json()
    order = shop.place(viewer, [opened.get_json()["line_id"]], shop.address(viewer))
    assert order.status_code == 201, order.get_json()
    assert shop.pay(viewer, order.get_json()["id"]).status_code == 200


def test_a_host_signs_in_starts_the_show_and_pins_from_a_phone(app, client, live_server, phone, show):
    from playwright.sync_api import expect

    page, room_id = phone, show["room"]
    viewer = lambda: client.get(f"/api/v1/live/rooms/{room_id}").get_json()  # noqa: E731
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    sign_in(page, live_server, show["email"])
    page.locator(f'button[data-room-id="{room_id}"]').click()
    expect(page.locator("#room-status")).to_have_text("scheduled")
    expect(page.locator("#next")).to_be_disabled()

    page.click("#start")
    expect(page.locator("#room-status")).to_have_text("live")
    assert viewer()["status"] == "live"

    item_b = page.locator(f'#lineup li[data-product-id="{show["b"]}"]')
    expect(item_b.locator(".item-title")).to_have_text(SNEAKY)  # the markup shown as text, never parsed
    expect(item_b.locator(".item-price")).to_contain_text("39.00")
    expect(item_b.locator(".item-normal")).to_contain_text("49.00")
    expect(item_b.locator(".item-left")).to_have_text("5 left")
    pin = item_b.locator("button.pin")
    expect(pin).to_be_visible()
    box = pin.bounding_box()
    assert box["height"] >= 56 and box["width"] >= 88, box  # a thumb's target, not a link
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone

    pin.click()
    expect(pin).to_have_text("Pinned")
    expect(page.locator("#pinned-title")).to_have_text(SNEAKY)
    pinned = viewer()["pinned"]
    assert pinned["item"]["product_id"] == show["b"]
    assert page.evaluate("window.__owned") is None

    # The token stays in the tab: never in the address, in sessionStorage only.
    token = page.evaluate("sessionStorage.getItem('mall.console.token')")
    assert token and token not in page.url and page.url.endswith(f"#room/{room_id}")
    assert not [url for url in requested if token in url or PASSWORD in url]
    assert page.evaluate("localStorage.length") == 0

    # The big buttons: next pins A (after B in the lineup), unpin clears, all seen by viewers; a refusal is shown.
    for button in ("#next", "#unpin"):
        height = page.locator(button).bounding_box()["height"]
        assert height >= 56, (button, height)
    page.click("#next")
    expect(page.locator(f'#lineup li[data-product-id="{show["a"]}"] button.pin')).to_have_text("Pinned")
    assert viewer()["pinned"]["item"]["product_id"] == show["a"]
    page.click("#next")
    expect(page.locator("#notice")).to_contain_text("No item after the pinned one can be pinned")
    expect(page.locator("#notice")).to_be_in_viewport()  # seen wherever the host has scrolled to
    page.click("#notice")  # a tap puts it away
    expect(page.locator("#notice")).to_be_hidden()
    page.click("#unpin")
    expect(page.locator("#pinned-title")).to_have_text("Nothing pinned")
    assert viewer()["pinned"] is None

    # A change made elsewhere (the brand admin pins B from another device) reaches the page by its poll.
    resp = show["live"].act(show["admin"], room_id, "pin", product_id=show["b"])
    assert resp.status_code == 200, resp.get_json()
    expect(pin).to_have_text("Pinned", timeout=10_000)

    # The numbers panel follows the show: the pinned segment before any sale, then a viewer's paid order
    # through the host's cart link (at the live price), within the panel's refresh.
    expect(page.locator("#segment-heading")).to_contain_text("On screen now")
    expect(page.locator("#chart .chart-empty")).to_have_text("No sales yet.")
    buy_through_link(client, show, token, room_id)
    paid = page.locator('#segment-numbers [data-figure="paid_gmv"] dd')
    expect(paid).to_contain_text("39.00", timeout=15_000)
    expect(page.locator('#segment-numbers [data-figure="orders"] dd')).to_have_text("1")
    expect(page.locator("#chart svg rect.bar.current")).to_be_visible()

    # Ending takes two taps (a stray tap during the stream must not end it).
    page.click("#end")
    expect(page.locator("#end")).to_have_text("Tap again to end")
    assert viewer()["status"] == "live"
    page.click("#end")
    expect(page.locator("#room-status")).to_have_text("ended")
    assert viewer()["status"] == "ended"


def test_the_numbers_panel_shows_the_current_segment_and_a_chart_of_net_gmv_per_segment(
    client, live_server, phone, show
):
    """The numbers endpoint's shape (issue 15's contract), answered here by the browser's route so the panel
    is tested whatever the endpoint's progress; the bars follow the segments, the one on screen stands out."""
    from playwright.sync_api import expect

    page, room_id, live = phone, show["room"], show["live"]
    assert live.act(show["admin"], room_id, "start").status_code == 200
    segment_id = live.act(show["admin"], room_id, "pin", product_id=show["b"]).get_json()["id"]
    figures = {"viewers": 200, "cart_adds": 30, "orders": 10, "paid_gmv": 39000, "refunds": 3900,
               "net_gmv": 35100, "conversion": 0.05, "direct_gmv": 30000, "indirect_gmv": 5100}  # fmt: skip
    earlier = {**figures, "net_gmv": 99000, "paid_gmv": 99000, "refunds": 0}
    body = {"room_id": room_id, "currency": "CNY", "totals": {**figures, "net_gmv": 134100},
            "segments": [{"segment_id": segment_id - 1, "product_id": show["a"], "title": "<b>Earlier</b>",
                          "started_at": "2026-12-03T07:00:00Z", "ended_at": "2026-12-03T07:05:00Z", **earlier},
                         {"segment_id": segment_id, "product_id": show["b"], "title": SNEAKY,
                          "started_at": "2026-12-03T07:05:00Z", "ended_at": None, **figures}]}  # fmt: skip
    answer = {"status": 200, "body": body}
    page.route(re.compile(rf".*/api/v1/live/rooms/{room_id}/numbers$"),
               lambda route: route.fulfill(status=answer["status"], content_type="application/json",
                                           body=json.dumps(answer["body"])))  # fmt: skip

    sign_in(page, live_server, show["email"])
    page.locator(f'button[data-room-id="{room_id}"]').click()

    expect(page.locator("#numbers-body")).to_be_visible()
    expect(page.locator("#segment-heading")).to_have_text(f"On screen now: {SNEAKY}")
    segment = page.locator("#segment-numbers")
    expect(segment.locator('[data-figure="net_gmv"] dd')).to_contain_text("351.00")
    expect(segment.locator('[data-figure="refunds"] dd')).to_contain_text("39.00")
    expect(segment.locator('[data-figure="conversion"] dd')).to_have_text("5.0%")
    expect(segment.locator('[data-figure="viewers"] dd')).to_have_text("200")
    expect(page.locator('#total-numbers [data-figure="net_gmv"] dd')).to_contain_text("1,341.00")
    bars = page.locator("#chart svg rect.bar")
    expect(bars).to_have_count(2)
    expect(page.locator("#chart svg rect.bar.current")).to_have_attribute("data-id", str(segment_id))
    legend = page.locator("#chart ol.legend li")
    expect(legend).to_have_count(2)
    expect(legend.nth(0)).to_contain_text("<b>Earlier</b>")
    expect(page.locator("#chart ol.legend li.current")).to_contain_text(SNEAKY)
    expect(page.locator("#chart ol.legend li.current")).to_contain_text("351.00")
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(2)]
    assert heights[0] > heights[1] > 0  # 990.00 against 351.00
    assert page.evaluate("window.__owned") is None
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # A refusal is said in the panel (not as a notice coming back every few seconds), escaped like the rest.
    answer.update(status=403, body={"status": 403, "code": "live.not_your_room", "detail": "<i>Not yours</i>"})
    expect(page.locator("#numbers-empty")).to_have_text("Numbers unavailable: <i>Not yours</i>", timeout=10_000)
    expect(page.locator("#numbers-body")).to_be_hidden()
    expect(page.locator("#notice")).to_be_hidden()


def test_a_wrong_password_is_refused_on_the_page_and_keeps_no_token(live_server, phone, show):
    from playwright.sync_api import expect

    sign_in(phone, live_server, show["email"], password="not-the-password")

    expect(phone.locator("#notice")).to_have_text("Email or password is wrong.")
    expect(phone.locator("#signin")).to_be_visible()
    assert phone.evaluate("sessionStorage.length") == 0


def test_a_pasted_token_signs_in_and_a_shoppers_token_sees_the_apis_refusal(client, live_server, phone, show, shop):
    from playwright.sync_api import expect

    page = phone
    login = client.post("/api/v1/auth/password", json={"email": show["email"], "password": PASSWORD})
    page.goto(f"{live_server}/console/live")
    page.click("details summary")
    page.fill("#token", login.get_json()["token"])
    page.click("#token-form button")
    expect(page.locator(f'button[data-room-id="{show["room"]}"]')).to_contain_text("Spring launch")
    expect(page.locator("#who")).to_have_text("Lily (host)")

    page.click("#sign-out")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    if page.locator("details").get_attribute("open") is None:
        page.click("details summary")
    shopper = shop.shopper()
    refusal = client.get("/api/v1/admin/live/rooms", headers=shopper)
    assert refusal.status_code == 403
    page.fill("#token", shopper["Authorization"].removeprefix("Bearer "))
    page.click("#token-form button")
    expect(page.locator("#notice")).to_have_text(refusal.get_json()["detail"])
    expect(page.locator("#room-list li")).to_have_count(0)


def test_the_console_refreshes_an_expired_access_token_and_signing_out_revokes_it(client, live_server, phone, show):
    """Access tokens live 15 minutes (ADR 0032): the page trades its refresh token and carries on; signing out
    revokes the token it held, on the server."""
    from datetime import timedelta

    from playwright.sync_api import expect

    from mall import clock

    page = phone
    clock.freeze(clock.now())
    sign_in(page, live_server, show["email"])
    room = page.locator(f'button[data-room-id="{show["room"]}"]')
    expect(room).to_contain_text("Spring launch")
    first = page.evaluate(
        "[sessionStorage.getItem('mall.console.token'), sessionStorage.getItem('mall.console.refresh')]"
    )
    clock.advance(timedelta(minutes=16))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {first[0]}"}).status_code == 401

    page.reload()  # the page lists the rooms again with its expired token

    expect(room).to_contain_text("Spring launch")
    expect(page.locator("#signin")).to_be_hidden()
    token, refresh = page.evaluate(
        "[sessionStorage.getItem('mall.console.token'), sessionStorage.getItem('mall.console.refresh')]"
    )
    assert token != first[0] and refresh not in (None, first[1])
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/logout")) as logout:
        page.click("#sign-out")

    assert logout.value.status == 204
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    resp = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401 and resp.get_json()["code"] == "auth.token_revoked"
    refused = client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert refused.status_code == 401 and refused.get_json()["code"] == "auth.refresh_invalid"
