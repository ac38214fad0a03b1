"""Text no column can hold (a lone UTF-16 surrogate, a NUL) is bad input: 422 naming the field, before any
view reads it, whichever route and however it parses its body. Before, it reached the database driver (or the
JSON encoder of an error naming it) and answered 500."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from mall.catalog.models import Brand
from mall.identity.models import Address, User
from tests.catalog_helpers import assert_problem, scalar
from tests.shop_helpers import Shop

LONE = "\ud800"


def send(client, method: str, path: str, body, headers: dict):
    """`body` as JSON, a lone surrogate written as the \\ud800 escape a client would send."""
    return client.open(path, method=method, data=json.dumps(body), content_type="application/json",
                       headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip


def fields_of(resp) -> set[str]:
    return {(e["location"], e["field"]) for e in resp.json["errors"]}


ADDRESS = {"recipient": "Li Lei", "phone": "13800000000", "province": "Zhejiang", "city": "Hangzhou",
           "detail": "1 West Lake Road"}  # fmt: skip


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.mark.parametrize(
    "case", ["address", "address-patch", "brand", "staff", "dev-login", "cart-key", "purchase-key", "nested"]
)
def test_a_lone_surrogate_is_422_naming_the_field_and_writes_nothing(app, client, login, shop, case):
    me, admin = shop.shopper("surrogate"), login("platform_admin")
    address = shop.address(me)
    addresses, users, brands = (scalar(app, sa.select(sa.func.count()).select_from(m)) for m in (Address, User, Brand))
    method, path, body, headers, field = {
        "address": ("POST", "/api/v1/me/addresses", ADDRESS | {"recipient": f"Li{LONE}"}, me, "recipient"),
        "address-patch": ("PATCH", f"/api/v1/me/addresses/{address}", {"detail": LONE}, me, "detail"),
        "brand": ("POST", "/api/v1/admin/brands", {"slug": "tea", "name": f"Tea {LONE}"}, admin, "name"),
        "staff": ("POST", "/api/v1/admin/staff", {"role": "host", "name": LONE, "email": "h@example.com",
                                                   "password": "long-enough-password"}, admin, "name"),
        "dev-login": ("POST", "/api/v1/auth/dev", {"role": "shopper", "name": f"x{LONE}y"}, {}, "name"),
        "cart-key": ("POST", "/api/v1/cart/lines", {"sku_id": 1, "quantity": 1, f"note{LONE}": 1}, me,
                     "note\\ud800"),
        "purchase-key": ("POST", "/api/v1/flash-sales/1/items/1/purchase", {"address_id": address, LONE: 1}, me,
                         "\\ud800"),  # past the WSGI fast path (it answers only bodies of plain integers)
        "nested": ("POST", "/api/v1/me/addresses", {**ADDRESS, "extra": [{"k": "\udfff"}]}, me, "extra.0.k"),
    }[case]  # fmt: skip

    resp = send(client, method, path, body, headers)

    assert_problem(resp, 422, "request.invalid")
    assert fields_of(resp) == {("json", field)}
    assert resp.json["errors"][0]["message"] == "Must not contain a lone UTF-16 surrogate."
    after = (scalar(app, sa.select(sa.func.count()).select_from(m)) for m in (Address, User, Brand))
    assert tuple(after) == (addresses, users, brands)
    assert client.get(f"/api/v1/me/addresses/{address}", headers=me).json["detail"] == ADDRESS["detail"]


def test_a_surrogate_pair_is_text_like_any_other(client, shop):
    me = shop.shopper()
    body = ADDRESS | {"recipient": "Li \U0001f375"}  # json.dumps writes it as the pair \ud83c\udf75

    resp = send(client, "POST", "/api/v1/me/addresses", body, me)

    assert resp.status_code == 201, resp.json
    assert resp.json["recipient"] == "Li \U0001f375"


def test_every_bad_string_is_named_at_once_nul_included(client, shop):
    me = shop.shopper()
    body = ADDRESS | {"recipient": "\x00", "city": LONE}

    resp = send(client, "POST", "/api/v1/me/addresses?x=%00", body, me)

    assert_problem(resp, 422, "request.invalid")
    assert {(e["location"], e["field"], e["message"]) for e in resp.json["errors"]} == {
        ("json", "recipient", "Must not contain a NUL character."),
        ("json", "city", "Must not contain a lone UTF-16 surrogate."),
        ("query", "x", "Must not contain a NUL character."),
    }


def test_json_in_utf_16_is_checked_too(client, shop):
    """Flask's JSON decoder reads UTF-16 too (the flash purchase view uses it): no escape needed there."""
    me = shop.shopper()
    raw = json.dumps({"address_id": 1, LONE: 1}).encode("utf-16")

    resp = client.post("/api/v1/flash-sales/1/items/1/purchase", data=raw, content_type="application/json",
                       headers={**me, "Idempotency-Key": "k"})  # fmt: skip

    assert_problem(resp, 422, "request.invalid")
    assert fields_of(resp) == {("json", "\\ud800")}
