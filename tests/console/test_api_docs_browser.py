"""The API docs page (/api/docs) in headless Chromium: Swagger UI loads from this server only (no third-party
CDN), renders the OpenAPI document's operations under the page's strict CSP (the `phone` fixture fails on any CSP
violation or script error) and can expand an operation."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.console.conftest import browser_missing

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")


def test_the_docs_page_renders_the_api_from_this_server_only(live_server, phone):
    origins = []
    phone.on("request", lambda req: origins.append(urlsplit(req.url).netloc))

    phone.goto(f"{live_server}/api/docs")

    phone.locator(".swagger-ui .info .title", has_text="Mall API").wait_for(timeout=60_000)  # a 1.7 MB bundle
    # The first operation: Swagger UI renders the operations below the fold only as they are scrolled to.
    phone.locator(".opblock-post .opblock-summary-path[data-path='/api/v1/auth/wechat']").click()
    phone.locator(".opblock.is-open .responses-wrapper", has_text="401").wait_for()
    assert set(origins) == {urlsplit(live_server).netloc}, set(origins)
