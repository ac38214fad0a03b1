"""Web consoles (DESIGN.md §7): small pages served by Flask that sign in with a bearer token and call the
same JSON API as any client. `/console/live` is the host's console for running a show, `/console/guide` a guide's
workbench, `/console/members` the operators' view of members. The pages share one layout
(templates/console/base.html), script (static/console.js) and sheet (static/console.css), and add their own."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from api.edge import PAGE_HEADERS

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
               static_url_path="/console/static")  # fmt: skip


def _page(name: str, title: str) -> Response:
    resp = Response(render_template(f"console/{name}.html", page=name, title=title))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/console/live")
def live() -> Response:
    """The host console: sign in, pick a room, start/end it, pin/unpin/next, watch the numbers."""
    return _page("live", "Live console")


@bp.get("/console/guide")
def guide() -> Response:
    """The guide workbench: today's visits and orders, earnings by state and per day, the storefront QR code to show
    a customer, and "why (not) credited" lookups."""
    return _page("guide", "Guide workbench")


@bp.get("/console/members")
def members() -> Response:
    """The operators' members console: the RFM heat map per brand or the platform, movements since the last run,
    the points liability and a saved segment's size."""
    return _page("members", "Members")


@bp.after_request
def _security_headers(resp: Response) -> Response:
    """On the page and its static files alike: strict CSP, never framed, no referrer (api/edge.py)."""
    resp.headers.update(PAGE_HEADERS)
    return resp
