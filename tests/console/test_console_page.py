"""The console page over plain HTTP (no browser): served at /console/live with its security headers, and no
code in the page that text from the API could ride in on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "api" / "console" / "static"


def test_the_live_console_page_is_served_with_security_headers(client):
    resp = client.get("/console/live")

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
    assert 'src="/console/static/live.js"' in html and 'href="/console/static/live.css"' in html
    # Under that CSP inline code would not run anyway; keep the page free of it so nothing depends on it.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.parametrize(("name", "mimetype"), [("live.js", "text/javascript"), ("live.css", "text/css")])
def test_the_console_assets_are_served_with_the_same_headers(client, name, mimetype):
    resp = client.get(f"/console/static/{name}")

    assert resp.status_code == 200 and resp.mimetype == mimetype
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    resp.close()


def test_the_console_script_never_builds_html_from_text_nor_keeps_the_token_beyond_the_tab():
    script = (STATIC / "live.js").read_text()

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "localStorage" not in script and "document.cookie" not in script
    assert "sessionStorage.setItem(TOKEN_KEY" in script
