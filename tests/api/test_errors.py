"""A bug is a 500 problem document with nothing internal in it, and it changes nothing."""

import sqlalchemy as sa

from api import create_app
from api.extensions import db
from mall.catalog.models import Brand


def test_unhandled_exception_is_a_plain_500_problem_and_rolls_back(settings, app):
    buggy = create_app(settings)

    @buggy.get("/boom")
    def boom():
        db.session.add(Brand(slug="half-written", name="Half written"))
        db.session.flush()
        raise RuntimeError("secret internals")

    resp = buggy.test_client().get("/boom")
    assert resp.status_code == 500
    assert resp.mimetype == "application/problem+json"
    assert resp.json["code"] == "server.error"
    assert "secret internals" not in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Brand)) == 0
