"""Liveness and readiness: is the database reachable, is Redis reachable."""

from flask import Blueprint, jsonify

from api.extensions import db
from api.settings import settings
from workers.connection import get_redis

bp = Blueprint("health", __name__)


@bp.get("/livez")
def livez():
    """The process answers (no dependency touched): for load balancers and as the benchmarks' baseline."""
    return jsonify(status="ok")


@bp.get("/healthz")
def healthz():
    checks = {"database": _check(lambda: db.session.execute(db.text("SELECT 1"))),
              "redis": _check(lambda: get_redis(settings()).ping())}  # fmt: skip
    healthy = all(c == "ok" for c in checks.values())
    return jsonify(status="ok" if healthy else "degraded", checks=checks), 200 if healthy else 503


def _check(probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:  # a health check reports, never raises
        return f"error: {type(exc).__name__}"
