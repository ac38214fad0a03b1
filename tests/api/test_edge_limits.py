"""The HTTP edge's own rules (ADR 0036): the headers every answer carries, a 413 problem for a body over the
limit, a 422 for JSON nested too deep or strings too long, whichever route and however it reads its input."""

from __future__ import annotations

import io
import json
import uuid

import pytest
import sqlalchemy as sa

from api.parsing import MAX_DEPTH, MAX_STRING
from mall.identity.models import Address
from tests.catalog_helpers import assert_problem, scalar

ADDRESS = {"recipient": "Li Lei", "phone": "13800000000", "province": "Zhejiang", "city": "Hangzhou",
           "detail": "1 West Lake Road"}  # fmt: skip


def fields_of(resp) -> dict[tuple[str, str], str]:
    return {(e["location"], e["field"]): e["message"] for e in resp.json["errors"]}


# Headers ------------------------------------------------------------------------------------------------------


def test_every_answer_is_nosniff_and_an_authenticated_one_no_store(client, login):
    me = login("shopper", name="edge-headers")
    answers = {
        "me": client.get("/api/v1/me", headers=me),
        "my addresses": client.get("/api/v1/me/addresses", headers=me),
        "a 404 problem": client.get("/api/v1/nothing-here", headers=me),
        "a 422 problem": client.post("/api/v1/me/addresses", json={}, headers=me),
        "a 401 problem": client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}),
        "a token issued": client.post("/api/v1/auth/dev", json={"role": "shopper", "name": "x"}),
        "a public list": client.get("/api/v1/products"),
        "liveness": client.get("/livez"),
    }
    for what, resp in answers.items():
        assert resp.headers["X-Content-Type-Options"] == "nosniff", what
        assert resp.headers["Cache-Control"] == "no-store", what  # no view said otherwise
        assert "Server" not in resp.headers, what  # the app adds no banner (gunicorn's own: docs/operations.md)
    assert answers["me"].status_code == 200 and answers["a 401 problem"].status_code == 401


def test_a_views_own_cache_control_stands_only_without_credentials(client, login, monkeypatch):
    """The QR code says `private, max-age=300`: so it stays for anyone, but a request with a token gets no-store."""
    from api.live import links

    monkeypatch.setattr(links.links, "resolve", lambda *args, **kwargs: None)  # any token: the headers are the point
    anonymous = client.get("/api/v1/live/links/qr.png?t=abc")
    signed_in = client.get("/api/v1/live/links/qr.png?t=abc", headers=login("shopper", name="qr"))
    assert anonymous.status_code == signed_in.status_code == 200 and anonymous.mimetype == "image/png"
    assert anonymous.headers["Cache-Control"] == "private, max-age=300"
    assert signed_in.headers["Cache-Control"] == "no-store"
    assert anonymous.headers["X-Content-Type-Options"] == signed_in.headers["X-Content-Type-Options"] == "nosniff"


# Body size ----------------------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_problem_and_writes_nothing(app, client, login):
    me = login("shopper", name="big-body")
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 1024 * 1024  # the default (Settings.max_body_bytes)
    big = {**ADDRESS, "detail": "x" * limit}
    for path in ("/api/v1/me/addresses", "/api/v1/flash-sales/1/items/1/purchase", "/api/v1/nothing-here"):
        resp = client.post(path, data=json.dumps(big), content_type="application/json",
                           headers={**me, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        if path.endswith("nothing-here"):
            assert_problem(resp, 404, "route.not_found")  # no route: said before the body matters
            continue
        body = assert_problem(resp, 413, "request.too_large")
        assert body["max_bytes"] == limit and body["detail"] == "A request body may be at most 1,048,576 bytes."
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert scalar(app, sa.select(sa.func.count()).select_from(Address)) == 0


def test_a_body_sent_without_a_length_is_cut_off_at_the_limit(app, client, login):
    """Chunked: no Content-Length to refuse up front; reading stops at the limit with the same 413."""
    me = login("shopper", name="chunked")
    raw = json.dumps({**ADDRESS, "detail": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)}).encode()
    resp = client.post(
        "/api/v1/me/addresses",
        input_stream=io.BytesIO(raw),
        content_type="application/json",
        headers=me,
        environ_base={"wsgi.input_terminated": True},
    )  # as gunicorn hands a chunked body
    assert_problem(resp, 413, "request.too_large")
    assert scalar(app, sa.select(sa.func.count()).select_from(Address)) == 0


def test_a_body_at_the_limit_is_read(app, client, login):
    me = login("shopper", name="at-limit")
    app.config["MAX_CONTENT_LENGTH"] = 4096
    try:
        raw = json.dumps(ADDRESS).encode()
        padded = raw[:-1] + b" " * (4096 - len(raw)) + b"}"  # exactly 4096 bytes of valid JSON
        ok = client.post("/api/v1/me/addresses", data=padded, content_type="application/json", headers=me)
        over = client.post("/api/v1/me/addresses", data=padded + b" ", content_type="application/json", headers=me)
    finally:
        app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    assert ok.status_code == 201, ok.json
    assert assert_problem(over, 413, "request.too_large")["max_bytes"] == 4096


def test_a_10000_id_tag_upload_fits_the_default_limit():
    """The largest upload (10,000 user ids to tag: api/members/routes.py) is about a tenth of the limit."""
    body = json.dumps({"user_ids": [2**31 - 1] * 10_000}).encode()
    assert len(body) < 1024 * 1024 / 8


# Shape --------------------------------------------------------------------------------------------------------


def nested(depth: int) -> str:
    """An object nested `depth` deep: {"a": {"a": ... {} ...}}."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


@pytest.mark.parametrize("path", ["/api/v1/me/addresses", "/api/v1/flash-sales/1/items/1/purchase"])
def test_json_nested_deeper_than_the_limit_is_422_and_at_it_the_schemas_to_judge(client, login, path):
    me = {**login("shopper", name="deep"), "Idempotency-Key": uuid.uuid4().hex}
    deep = client.post(path, data=nested(MAX_DEPTH + 1), content_type="application/json", headers=me)
    assert_problem(deep, 422, "request.invalid")
    assert fields_of(deep) == {("json", "_schema"): "Nested deeper than 32 arrays and objects."}
    at_limit = client.post(path, data=nested(MAX_DEPTH), content_type="application/json", headers=me)
    assert_problem(at_limit, 422, "request.invalid")
    assert fields_of(at_limit)[("json", "a")] == "Unknown field."  # past the bound: the schema's answer


def test_arrays_count_as_nesting_too(client):
    deep = client.post("/api/v1/auth/dev", data="[" * 33 + "]" * 33, content_type="application/json")
    assert_problem(deep, 422, "request.invalid")
    assert fields_of(deep) == {("json", "_schema"): "Nested deeper than 32 arrays and objects."}


def test_a_string_without_a_declared_maximum_is_held_to_the_global_cap(client):
    """`role` declares a choice, not a length: one character over the cap is refused before the schema looks."""
    over = client.post("/api/v1/auth/dev", json={"role": "x" * (MAX_STRING + 1), "name": "n"})
    at = client.post("/api/v1/auth/dev", json={"role": "x" * MAX_STRING, "name": "n"})
    assert_problem(over, 422, "request.invalid")
    assert fields_of(over) == {("json", "role"): "Longer than 20,000 characters."}
    assert_problem(at, 422, "request.invalid")
    assert fields_of(at)[("json", "role")].startswith("Must be one of")


def test_long_strings_and_keys_are_named_wherever_they_are(client, login):
    me = login("shopper", name="long-strings")
    body = {**ADDRESS, "extra": [{"k": "y" * (MAX_STRING + 1)}], "z" * (MAX_STRING + 1): 1}
    resp = client.post("/api/v1/me/addresses", json=body, headers=me)
    assert_problem(resp, 422, "request.invalid")
    assert fields_of(resp) == {("json", "extra.0.k"): "Longer than 20,000 characters.",
                               ("json", "_schema"): "Has a key longer than 20,000 characters."}  # fmt: skip
    query = client.get("/api/v1/products", query_string={"q": "t" * (MAX_STRING + 1)}, headers=me)
    assert_problem(query, 422, "request.invalid")
    assert fields_of(query) == {("query", "q"): "Longer than 20,000 characters."}


def test_no_declared_maximum_length_exceeds_the_global_cap(client):
    """Else the cap would refuse what the document allows."""
    spec = client.get("/api/openapi.json").json
    lengths = []

    def walk(node):
        if isinstance(node, dict):
            lengths.extend(v for k, v in node.items() if k == "maxLength")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert lengths and max(lengths) <= MAX_STRING
