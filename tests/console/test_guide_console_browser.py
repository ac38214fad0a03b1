"""The guide workbench end to end in headless Chromium at a phone's width: a guide signs in with a token, sees
today's visits, orders and earnings change after a shopper opens their link and pays, shows their storefront QR
code, and looks up why a customer is bound to them; a shopper's token gets the API's refusal."""

from __future__ import annotations

import pytest

from tests.console.conftest import browser_missing, token_sign_in
from tests.guide_helpers import Guides
from tests.live_helpers import Live
from tests.shop_helpers import Shop

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")

SNEAKY = '<img src=x onerror="window.__owned=1">Mei'


@pytest.fixture
def team(shop):
    """A brand with a ¥50 product and a 10% rate card, its admin, an active guide with a storefront link, and a
    shopper whose name carries markup."""
    guides = Guides(shop)
    brand_id = shop.brand()
    admin = guides.login("brand_admin", brand_id)
    product = Live(shop).product(brand_id, price=5000)
    guide = guides.guide(admin, brand_id)
    card = shop.client.post("/api/v1/admin/guides/rate-cards", json={"scope": "brand", "basis_points": 1000},
                            headers=admin)  # 10% on every line  # fmt: skip
    assert card.status_code == 201, card.get_json()
    storefront = guides.link(guide)
    shopper = guides.login(name=SNEAKY)
    return {"guides": guides, "brand": brand_id, "admin": admin, "product": product, "guide": guide,
            "storefront": storefront, "shopper": shopper}  # fmt: skip


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def figure(page, box: str, key: str):
    return page.locator(f'#{box} [data-figure="{key}"] dd')


def test_a_guide_sees_a_sale_through_their_link_shows_their_qr_code_and_asks_why(client, shop, live_server, phone,
                                                                                 team):  # fmt: skip
    from playwright.sync_api import expect

    page, guides, guide = phone, team["guides"], team["guide"]
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    token_sign_in(page, live_server, "guide", guide["headers"])

    expect(page.locator("#workbench")).to_be_visible()
    expect(figure(page, "today", "visits")).to_have_text("0")
    expect(figure(page, "today", "orders")).to_have_text("0")
    expect(page.locator("#orders-empty")).to_be_visible()
    expect(page.locator("#earnings-empty")).to_have_text("No commission yet.")
    expect(page.locator("#chart svg rect.bar")).to_have_count(30)  # a month of zeros

    # The storefront QR code: the link's PNG, loaded (a real image), its mini-program path under it.
    qr = page.locator("#qr-image")
    expect(qr).to_be_visible()
    expect(page.locator("#qr-path")).to_have_text(team["storefront"]["path"])
    expect(qr).to_have_js_property("complete", True)  # not wait_for_function: its in-page polling evals (CSP)
    assert page.evaluate("document.getElementById('qr-image').naturalWidth") > 100
    box = qr.bounding_box()
    assert box["width"] >= 200 and box["x"] >= 0 and box["x"] + box["width"] <= 390

    # A shopper opens the guide's product link and pays: the page shows it on refresh.
    link = guides.link(guide, "product", product_id=team["product"])
    order = guides.buy(team["shopper"], link, quantity=2)
    page.click("#refresh")
    expect(figure(page, "today", "visits")).to_have_text("1")
    expect(figure(page, "today", "orders")).to_have_text("1")
    row = page.locator(f'#orders li[data-order-id="{order["id"]}"]')
    expect(row).to_contain_text("100.00")
    expect(row).to_contain_text("<**")  # the buyer masked (and their markup shown as text, never parsed)
    expect(page.locator("#visits li").first).to_contain_text("product")
    assert page.evaluate("window.__owned") is None
    # 10% of 100.00 earned, pending until the return window closes; today's bar is the one that stands out.
    expect(figure(page, "earnings", "pending")).to_contain_text("10.00")
    expect(figure(page, "earnings", "available")).to_contain_text("0.00")
    today = page.locator("#chart svg rect.bar.current")
    expect(today).to_have_attribute("data-value", "1000")
    assert float(today.get_attribute("height")) > 100
    page.click("#per-day summary")
    expect(page.locator("#per-day-list li")).to_have_count(1)
    expect(page.locator("#per-day-list li")).to_contain_text("10.00")

    # Why was this order credited? From the order's row: the ledger's verdict and entry, with its rule.
    row.locator("button.why-button").click()
    line = page.locator("#why-answer .line")
    expect(line).to_have_attribute("data-verdict", "pending_settlement")
    expect(line.locator(".verdict")).to_have_text("Credited: pending until the return window closes.")
    expect(line.locator("li").first).to_contain_text("earn · pending")
    expect(line.locator("li").first).to_contain_text("10.00")
    # An order number that is not theirs: said so, no more.
    page.fill("#why-ref", "NOT-MINE-1")
    page.click("#why-button")
    expect(page.locator("#why-answer")).to_contain_text("No line of this order was yours")

    # Why is this customer mine? The binding's history, with its rule.
    shopper_id = shop.user_id(team["shopper"])
    page.select_option("#why-kind", "customer")
    page.fill("#why-ref", str(shopper_id))
    page.click("#why-button")
    answer = page.locator("#why-answer li").first
    expect(answer).to_contain_text("bound")
    expect(answer).to_contain_text("rule: protected")

    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
    token = page.evaluate("sessionStorage.getItem('mall.console.token')")
    assert token and not [url for url in requested if token in url]
    assert page.evaluate("localStorage.length") == 0


def test_a_guide_without_a_storefront_link_makes_one_from_the_page(live_server, phone, team, client):
    from playwright.sync_api import expect

    guides = team["guides"]
    other = guides.guide(team["admin"], team["brand"])  # no links yet
    token_sign_in(phone, live_server, "guide", other["headers"])

    expect(phone.locator("#make-qr")).to_be_visible()
    expect(phone.locator("#qr")).to_be_hidden()
    phone.click("#make-qr")
    expect(phone.locator("#qr-image")).to_be_visible()
    links = client.get("/api/v1/guide/links", headers=other["headers"]).get_json()
    assert [link["target"] for link in links] == ["storefront"]
    expect(phone.locator("#qr-path")).to_have_text(links[0]["path"])


def test_a_shoppers_token_is_refused_with_the_apis_words(client, live_server, phone, team):
    from playwright.sync_api import expect

    refusal = client.get("/api/v1/guide/summary", headers=team["shopper"])
    assert refusal.status_code == 403
    token_sign_in(phone, live_server, "guide", team["shopper"])

    expect(phone.locator("#notice")).to_have_text(refusal.get_json()["detail"])
    expect(phone.locator("#signin")).to_be_visible()
    expect(phone.locator("#workbench")).to_be_hidden()
    assert phone.evaluate("sessionStorage.length") == 0
