"""A shopper's delivery addresses under /api/v1/me/addresses: CRUD, validation, one default."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.identity.models import Address

ADDRESSES = "/api/v1/me/addresses"
HOME = {
    "recipient": "Amy Wang",
    "phone": "+86 138-0013-8000",
    "province": "Zhejiang",
    "city": "Hangzhou",
    "district": "Xihu",
    "detail": "1 West Lake Road, flat 502",
    "postal_code": "310000",
}
OFFICE = HOME | {"recipient": "Amy at work", "detail": "88 Tech Park", "district": ""}
SHOP = HOME | {"recipient": "Amy's shop", "detail": "5 Market St"}


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def stored(app) -> list[Address]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Address).order_by(Address.id)).all()
        db.session.expunge_all()
        return rows


def defaults(client, headers) -> list[int]:
    return [a["id"] for a in client.get(ADDRESSES, headers=headers).get_json() if a["is_default"]]


@pytest.fixture
def amy(login) -> dict:
    return login("shopper", name="amy")


def add(client, headers, body) -> dict:
    resp = client.post(ADDRESSES, json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


# ---- CRUD ---------------------------------------------------------------------------------------


def test_a_new_shoppers_first_address_is_the_default(client, app, amy):
    resp = client.post(ADDRESSES, json=HOME, headers=amy)

    assert resp.status_code == 201, resp.get_json()
    created = resp.get_json()
    assert created == HOME | {"id": created["id"], "is_default": True}
    assert client.get(ADDRESSES, headers=amy).get_json() == [created]
    assert client.get(f"{ADDRESSES}/{created['id']}", headers=amy).get_json() == created
    [row] = stored(app)
    assert (row.recipient, row.phone, row.is_default) == ("Amy Wang", "+86 138-0013-8000", True)


def test_optional_fields_default_to_empty(client, amy):
    body = {k: v for k, v in HOME.items() if k not in ("district", "postal_code")}

    created = add(client, amy, body)

    assert (created["district"], created["postal_code"]) == ("", "")


def test_surrounding_spaces_are_dropped(client, app, amy):
    created = add(client, amy, HOME | {"recipient": "  Amy Wang ", "phone": "13800138000 ", "city": "Hangzhou\n"})

    assert (created["recipient"], created["phone"], created["city"]) == ("Amy Wang", "13800138000", "Hangzhou")
    [row] = stored(app)
    assert (row.recipient, row.phone, row.city) == ("Amy Wang", "13800138000", "Hangzhou")


def test_a_later_address_asked_to_be_default_takes_over(client, app, amy):
    home = add(client, amy, HOME)
    office = add(client, amy, OFFICE)
    assert office["is_default"] is False

    shop = add(client, amy, SHOP | {"is_default": True})

    assert shop["is_default"] is True
    assert defaults(client, amy) == [shop["id"]]
    assert [a.is_default for a in stored(app)] == [False, False, True]
    # The default comes first in the list, then the rest in the order they were added.
    assert [a["id"] for a in client.get(ADDRESSES, headers=amy).get_json()] == [shop["id"], home["id"], office["id"]]


def test_patch_changes_only_the_given_fields(client, app, amy):
    home = add(client, amy, HOME)

    resp = client.patch(f"{ADDRESSES}/{home['id']}", json={"detail": "2 West Lake Road"}, headers=amy)

    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == home | {"detail": "2 West Lake Road"}
    [row] = stored(app)
    assert (row.detail, row.recipient, row.is_default) == ("2 West Lake Road", "Amy Wang", True)


def test_making_another_address_the_default_moves_the_default(client, amy):
    home = add(client, amy, HOME)
    office = add(client, amy, OFFICE)

    resp = client.patch(f"{ADDRESSES}/{office['id']}", json={"is_default": True}, headers=amy)

    assert resp.status_code == 200
    assert defaults(client, amy) == [office["id"]]
    assert client.get(f"{ADDRESSES}/{home['id']}", headers=amy).get_json()["is_default"] is False


def test_the_only_default_cannot_be_switched_off(client, app, amy):
    home = add(client, amy, HOME)
    add(client, amy, OFFICE)

    resp = client.patch(f"{ADDRESSES}/{home['id']}", json={"is_default": False}, headers=amy)

    assert resp.status_code == 200
    assert resp.get_json()["is_default"] is True
    assert defaults(client, amy) == [home["id"]]


def test_deleting_an_address(client, app, amy):
    home = add(client, amy, HOME)
    office = add(client, amy, OFFICE)

    resp = client.delete(f"{ADDRESSES}/{office['id']}", headers=amy)

    assert resp.status_code == 204
    assert resp.get_data() == b""
    assert [a.id for a in stored(app)] == [home["id"]]
    assert_problem(client.get(f"{ADDRESSES}/{office['id']}", headers=amy), 404, "address.not_found")
    assert_problem(client.delete(f"{ADDRESSES}/{office['id']}", headers=amy), 404, "address.not_found")


def test_deleting_the_default_makes_another_address_the_default(client, amy):
    home = add(client, amy, HOME)
    office = add(client, amy, OFFICE)
    shop = add(client, amy, SHOP)

    assert client.delete(f"{ADDRESSES}/{home['id']}", headers=amy).status_code == 204

    assert defaults(client, amy) == [office["id"]]
    assert client.delete(f"{ADDRESSES}/{office['id']}", headers=amy).status_code == 204
    assert defaults(client, amy) == [shop["id"]]
    assert client.delete(f"{ADDRESSES}/{shop['id']}", headers=amy).status_code == 204
    assert client.get(ADDRESSES, headers=amy).get_json() == []


def test_each_shopper_has_their_own_default(client, app, login, amy):
    bob = login("shopper", name="bob")
    amy_home = add(client, amy, HOME)
    bob_home = add(client, bob, HOME | {"recipient": "Bob"})

    bob_office = add(client, bob, OFFICE | {"recipient": "Bob", "is_default": True})

    assert defaults(client, amy) == [amy_home["id"]]
    assert defaults(client, bob) == [bob_office["id"]]
    assert bob_home["id"] not in defaults(client, bob)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_an_unknown_address_is_404(client, amy, method):
    body = {"city": "Ningbo"} if method == "PATCH" else None  # a DELETE with a body is a 422 (it takes none)
    resp = client.open(f"{ADDRESSES}/987654", method=method, json=body, headers=amy)

    assert_problem(resp, 404, "address.not_found")


# ---- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"recipient", "phone", "province", "city", "detail"}),
        (HOME | {"phone": "call me"}, {"phone"}),
        (HOME | {"phone": "12"}, {"phone"}),
        (HOME | {"recipient": ""}, {"recipient"}),
        (HOME | {"recipient": "x" * 61}, {"recipient"}),
        (HOME | {"detail": "x" * 201}, {"detail"}),
        (HOME | {"postal_code": "1" * 13}, {"postal_code"}),
        (HOME | {"city": None}, {"city"}),
        (HOME | {"recipient": "   ", "detail": "\t", "province": " "}, {"recipient", "detail", "province"}),
        (HOME | {"is_default": "maybe"}, {"is_default"}),
        (HOME | {"user_id": 2}, {"user_id"}),
        (HOME | {"id": 5}, {"id"}),
        (HOME | {"phone": "", "nickname": "A"}, {"phone", "nickname"}),
    ],
    ids=[
        "empty",
        "phone-words",
        "phone-short",
        "recipient-empty",
        "recipient-long",
        "detail-long",
        "postal-code-long",
        "city-null",
        "blank-text",
        "is-default-not-bool",
        "user-id-unknown-field",
        "id-read-only",
        "two-problems",
    ],
)
def test_an_invalid_address_is_422_listing_the_fields_and_nothing_is_written(client, app, amy, body, fields):
    resp = client.post(ADDRESSES, json=body, headers=amy)

    problem = assert_problem(resp, 422, "request.invalid")
    assert {e["field"] for e in problem["errors"]} == fields
    assert all(e["location"] == "json" and e["message"] for e in problem["errors"])
    assert stored(app) == []


@pytest.mark.parametrize(
    "body",
    [{"phone": "nope"}, {"recipient": ""}, {"detail": "  "}, {"city": None}, {"owner": "bob"}, {"id": 99}],
    ids=["phone", "recipient", "detail-blank", "city-null", "unknown-field", "id"],
)
def test_an_invalid_patch_is_422_and_changes_nothing(client, app, amy, body):
    home = add(client, amy, HOME)

    resp = client.patch(f"{ADDRESSES}/{home['id']}", json=body, headers=amy)

    problem = assert_problem(resp, 422, "request.invalid")
    assert {e["field"] for e in problem["errors"]} == set(body)
    assert client.get(f"{ADDRESSES}/{home['id']}", headers=amy).get_json() == home


def test_a_body_that_is_not_json_is_rejected(client, app, amy):
    resp = client.post(ADDRESSES, data="recipient=Amy", headers=amy | {"Content-Type": "text/plain"})

    assert 400 <= resp.status_code < 500
    assert resp.mimetype == "application/problem+json"
    assert stored(app) == []


def _at_once(app, requests: list) -> list:
    """Send the requests from as many threads at the same moment; return the responses in order."""
    import threading

    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def send(i, request):
        client = app.test_client()
        barrier.wait()
        responses[i] = request(client)

    threads = [threading.Thread(target=send, args=(i, r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return responses


@pytest.mark.parametrize("is_default", [False, True], ids=["none-asked", "all-asked"])
def test_concurrent_saves_leave_exactly_one_default(client, app, amy, is_default):
    bodies = [HOME | {"detail": f"{n} West Lake Road", "is_default": is_default} for n in range(6)]

    responses = _at_once(app, [lambda c, body=body: c.post(ADDRESSES, json=body, headers=amy) for body in bodies])

    assert [r.status_code for r in responses] == [201] * len(bodies), [r.get_json() for r in responses]
    assert len(stored(app)) == len(bodies)
    assert len(defaults(client, amy)) == 1
