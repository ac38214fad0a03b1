"""The document's promises about input hold: a boolean is `true` or `false`, a required body is required, and
a field the operation does not know is a 422, also for operations that take no body at all."""

from __future__ import annotations

import uuid

import marshmallow as ma
import pytest
import sqlalchemy as sa

from api.fields import Bool, QueryBool
from mall.catalog.models import Brand
from mall.identity.models import Address
from mall.payments.models import Payment
from tests.catalog_helpers import assert_problem, scalar
from tests.shop_helpers import Shop

ADDRESSES = "/api/v1/me/addresses"
HOME = {"recipient": "Li Lei", "phone": "13800000000", "province": "Zhejiang", "city": "Hangzhou",
        "detail": "1 West Lake Road"}  # fmt: skip


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def fields_of(resp) -> set[tuple[str, str | None]]:
    return {(e["location"], e["field"]) for e in resp.json["errors"]}


def count(app, model) -> int:
    return scalar(app, sa.select(sa.func.count()).select_from(model))


# ---- booleans ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, "true", "yes", 1.0])
def test_a_boolean_field_takes_only_true_or_false(app, client, shop, value):
    me = shop.shopper()

    resp = client.post(ADDRESSES, json=HOME | {"is_default": value}, headers=me)

    assert_problem(resp, 422, "request.invalid")
    assert fields_of(resp) == {("json", "is_default")}
    assert count(app, Address) == 0
    assert client.post(ADDRESSES, json=HOME | {"is_default": True}, headers=me).json["is_default"] is True


@pytest.mark.parametrize("value", ["1", "yes", "True", "on"])
def test_a_boolean_in_a_query_string_is_true_or_false(client, value):
    resp = client.get("/api/v1/products", query_string={"in_stock": value})

    assert_problem(resp, 422, "request.invalid")
    assert fields_of(resp) == {("query", "in_stock")}
    assert client.get("/api/v1/products", query_string={"in_stock": "false"}).status_code == 200


def _fields_clients_send(app):
    """(where, field) for every field of every schema a route parses (nested schemas and list items included)."""
    todo = [p["schema"] for view in app.view_functions.values()
            for p in getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])]  # fmt: skip
    seen = set()
    while todo:
        schema = todo.pop()
        schema = schema() if isinstance(schema, type) else schema
        if type(schema) in seen:
            continue
        seen.add(type(schema))
        for name, field in schema.fields.items():
            if field.dump_only:
                continue
            field = getattr(field, "inner", field)
            if isinstance(field, ma.fields.Nested):
                todo.append(field.schema)
            yield f"{type(schema).__name__}.{name}", field


def test_every_boolean_a_client_sends_is_strict(app):
    booleans = {where: field for where, field in _fields_clients_send(app) if isinstance(field, ma.fields.Boolean)}
    assert {"AddressSchema.is_default", "ProductListArgs.in_stock", "AfterSaleRequestSchema.return_goods"} <= set(
        booleans
    )
    assert [where for where, field in booleans.items() if not isinstance(field, Bool | QueryBool)] == []


# ---- required bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["none", "form", "text"])
def test_a_patch_without_a_json_body_is_422_not_a_silent_no_op(app, client, shop, login, body):
    me = shop.shopper()
    address = client.post(ADDRESSES, json=HOME, headers=me).json["id"]
    brand = shop.brand()
    admin = login("platform_admin")
    sent = {"none": {}, "form": {"data": {"city": "Ningbo"}}, "text": {"data": "city=Ningbo"}}[body]

    for path, headers in ((f"{ADDRESSES}/{address}", me), (f"/api/v1/admin/brands/{brand}", admin)):
        resp = client.patch(path, headers=headers, **sent)

        assert_problem(resp, 422, "request.invalid")
        assert resp.json["errors"] == [{"location": "json", "field": "_schema", "message": "A JSON body is required."}]
    assert client.get(f"{ADDRESSES}/{address}", headers=me).json["city"] == "Hangzhou"
    assert client.patch(f"{ADDRESSES}/{address}", json={"city": "Ningbo"}, headers=me).json["city"] == "Ningbo"


def test_the_document_marks_every_json_body_required(client):
    spec = client.get("/api/openapi.json").json
    bodies = {(path, method): op["requestBody"] for path, ops in spec["paths"].items() for method, op in ops.items()
              if "requestBody" in op}  # fmt: skip
    assert bodies and all(body.get("required") is True for body in bodies.values())


# ---- unknown fields where no body is taken ------------------------------------------------------


def _order(shop) -> tuple[dict, int]:
    me = shop.shopper()
    line = shop.add(me, shop.sku(shop.brand(), price=5000))
    resp = shop.place(me, [line], shop.address(me))
    assert resp.status_code == 201, resp.json
    return me, resp.json["id"]


def test_paying_with_an_amount_is_422_and_pays_nothing(app, client, shop):
    me, order = _order(shop)
    path = f"/api/v1/orders/{order}/pay"

    resp = client.post(path, json={"amount": 1}, headers={**me, "Idempotency-Key": uuid.uuid4().hex})

    assert_problem(resp, 422, "request.invalid")
    assert fields_of(resp) == {("json", "amount")}
    assert resp.json["errors"][0]["message"] == "Unknown field."
    assert count(app, Payment) == 0
    for empty in ({}, {"json": {}}, {"json": None}):
        paid = client.post(path, headers={**me, "Idempotency-Key": uuid.uuid4().hex}, **empty)
        assert paid.status_code == 200, paid.json


@pytest.mark.parametrize("case", ["cancel", "logout-all", "delete-address", "not-json"])
def test_an_operation_without_a_body_refuses_one(app, client, shop, case):
    me, order = _order(shop)
    address = client.get(ADDRESSES, headers=me).json[0]["id"]
    path, method = {"cancel": (f"/api/v1/orders/{order}/cancel", "POST"), "logout-all": ("/api/v1/auth/logout-all",
                    "POST"), "delete-address": (f"{ADDRESSES}/{address}", "DELETE"),
                    "not-json": (f"/api/v1/orders/{order}/cancel", "POST")}[case]  # fmt: skip
    sent = {"data": "reason=changed my mind"} if case == "not-json" else {"json": {"reason": "changed my mind"}}

    resp = client.open(path, method=method, headers=me, **sent)

    assert_problem(resp, 422, "request.invalid")
    expected = {("json", "_schema")} if case == "not-json" else {("json", "reason")}
    assert fields_of(resp) == expected
    assert client.get(f"/api/v1/orders/{order}", headers=me).json["status"] == "pending_payment"
    assert count(app, Address) == 1 and count(app, Brand) == 1
