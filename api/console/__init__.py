"""Web consoles (DESIGN.md §7): small pages served by Flask that sign in with a bearer token and call the
same JSON API as any client. `/console/live` is the host's console for running a show."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
               static_url_path="/console/static")  # fmt: skip

# Scripts and styles only from this origin (no inline code, so text from the API can never run); the page is
# never framed (a host's pin button under someone else's overlay) and sends no referrer.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")  # fmt: skip
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@bp.get("/console/live")
def live() -> Response:
    """The host console: sign in, pick a room, start/end it, pin/unpin/next, watch the numbers."""
    resp = Response(render_template("console/live.html"))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.after_request
def _security_headers(resp: Response) -> Response:
    """On the page and its static files alike."""
    resp.headers.update(SECURITY_HEADERS)
    return resp
