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


def test_a_nul_character_anywhere_in_the_input_is_422_and_writes_nothing(app, client, login):
    """PostgreSQL text cannot hold NUL: it must be refused as bad input, not fail in the database (a 500)."""
    from mall.identity.models import Address

    me = login("shopper", name="nul-tester")
    body = {"recipient": "Li\x00Lei", "phone": "13800000000", "province": "Zhejiang", "city": "Hangzhou",
            "detail": "1 West Lake Road"}  # fmt: skip
    resp = client.post("/api/v1/me/addresses", json=body, headers=me)
    assert resp.status_code == 422 and resp.json["code"] == "request.invalid" and _fields(resp) == {"recipient"}
    dev = client.post("/api/v1/auth/dev", json={"role": "shopper", "name": "x\x00y"})
    assert dev.status_code == 422 and _fields(dev) == {"name"}
    search = client.get("/api/v1/products", query_string={"q": "tea\x00"}, headers=me)
    assert search.status_code == 422 and _fields(search) == {"q"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Address)) == 0


def _fields(resp) -> set[str]:
    return {error["field"] for error in resp.json["errors"]}


def test_json_too_deep_is_422_and_with_a_huge_integer_400_not_500(client, login):
    """Python's decoder refuses these with a RecursionError and a ValueError, not a JSONDecodeError; nesting past
    32 levels is a 422 like any other input out of bounds (ADR 0036)."""
    me = login("shopper", name="deep-json")
    deep, huge = "[" * 100_000 + "]" * 100_000, '{"line_ids": [' + "9" * 5000 + '], "address_id": 1}'
    for path in ("/api/v1/orders", "/api/v1/me/addresses", "/api/v1/flash-sales/1/items/1/purchase"):
        for raw, status in ((deep, 422), (huge, 400)):
            resp = client.post(path, data=raw, content_type="application/json", headers={**me, "Idempotency-Key": "d"})
            assert resp.status_code == status and resp.json["code"] == "request.invalid", (path, resp.json)
