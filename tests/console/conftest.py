"""Browser fixtures: the app on a real port (werkzeug in a thread, the test's own database and Redis) and
Debian's headless Chromium driven by Playwright (no browser download: DESIGN.md §7). Where Chromium or
Playwright is missing, the browser tests skip with a one-line hint."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"headless Chromium not found at {CHROMIUM}: install it with `apt-get install chromium`"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: `pip install -r requirements-dev.txt` (no `playwright install`)"
    return None


@pytest.fixture(scope="session")
def live_server(app):
    """The base URL of the app served on 127.0.0.1, a free port, threaded like a real server."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="session")
def chromium():
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def phone(chromium):
    """A page on a 390-px-wide phone screen (iPhone 12-15 width), touch enabled; fails the test on a script error
    or a CSP violation reported to the console."""
    context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True,
                                   is_mobile=True, locale="en-US")  # fmt: skip
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert not problems, problems


def token_sign_in(page, base: str, console: str, headers: dict) -> None:
    """Open `/console/<console>` and sign in with the bearer token of `headers`, as a person pastes it."""
    page.goto(f"{base}/console/{console}")
    page.click("details summary")
    page.fill("#token", headers["Authorization"].removeprefix("Bearer "))
    page.click("#token-form button")


def pytest_terminal_summary(terminalreporter):
    """`pytest -q` lists no skip reasons: say once, at the end, why the browser tests skipped and how to fix it."""
    skipped = terminalreporter.stats.get("skipped", [])
    reason = browser_missing()
    if reason and any(report.nodeid.startswith("tests/console/") for report in skipped):
        terminalreporter.write_line(f"browser tests skipped: {reason}", yellow=True)
