"""The API's browsable documentation at /api/docs: Swagger UI served from the installation (the pinned
flask-swagger-ui package ships swagger-ui-dist; only its files are used), under the pages' strict CSP (no inline
code: api/docs/static/docs.js starts the UI). Registered when `Settings.api_docs_enabled` (API_DOCS; on
outside production by default, ADR 0036)."""

from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, Response, abort, render_template, send_from_directory, url_for

from api.edge import PAGE_HEADERS

DIST = files("flask_swagger_ui") / "dist"
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png"})

bp = Blueprint("api_docs", __name__, template_folder="templates", static_folder="static",
               static_url_path="/api/docs/static")  # fmt: skip


@bp.get("/api/docs")
def page() -> Response:
    """Swagger UI over /api/openapi.json."""
    resp = Response(render_template("docs/index.html", spec_url=url_for("api-docs.openapi_json")))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/api/docs/swagger-ui/<name>")
def swagger_ui(name: str) -> Response:
    """The few swagger-ui-dist files the page uses, as the installed package has them."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(str(DIST), name)


@bp.after_request
def _security_headers(resp: Response) -> Response:
    resp.headers.update(PAGE_HEADERS)
    return resp
