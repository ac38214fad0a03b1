"""The console pages over plain HTTP (no browser): /console/live and /console/guide served with their security
headers, their shared and own assets, and no code in a page that text from the API could ride in on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "api" / "console" / "static"
PAGES = ["live", "guide", "members"]


@pytest.mark.parametrize("page", PAGES)
def test_a_console_page_is_served_with_security_headers(client, page):
    resp = client.get(f"/console/{page}")

    assert resp.status_code == 200 and resp.mimetype == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                      "connect-src 'self'", "base-uri 'none'"):  # fmt: skip
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    for asset in ('src="/console/static/console.js"', f'src="/console/static/{page}.js"',
                  'href="/console/static/console.css"', f'href="/console/static/{page}.css"'):  # fmt: skip
        assert asset in html
    assert html.index("console.js") < html.index(f"{page}.js")  # the shared script first (both deferred: in order)
    # Under that CSP inline code would not run anyway; keep the page free of it so nothing depends on it.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.parametrize("name", ["console", *PAGES])
@pytest.mark.parametrize("kind", ["js", "css"])
def test_the_console_assets_are_served_with_the_same_headers(client, name, kind):
    resp = client.get(f"/console/static/{name}.{kind}")

    assert resp.status_code == 200 and resp.mimetype == {"js": "text/javascript", "css": "text/css"}[kind]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    resp.close()


@pytest.mark.parametrize("name", ["console", *PAGES])
def test_the_console_scripts_never_build_html_from_text_nor_keep_the_token_beyond_the_tab(name):
    script = (STATIC / f"{name}.js").read_text()

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "localStorage" not in script and "document.cookie" not in script
    if name == "console":
        assert "sessionStorage.setItem(TOKEN_KEY" in script
    else:  # the token is the shared script's business
        assert "sessionStorage.setItem" not in script
