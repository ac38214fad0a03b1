"""Guide distribution over HTTP: guides managed by their brand's admin, share links and their QR codes, the
brand's binding rule in all four modes (take-overs refused with their reason), self-binding refused, dated rule
versions applying to new bindings only, hand-over of a leaving guide's customers, the binding in force snapshotted
on order lines, and the "why" history readable by the guide and the brand admin and by no one of another brand."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.orders.models import OrderLine
from tests.guide_helpers import ADMIN, Guides
from tests.live_helpers import Live
from tests.shop_helpers import Shop

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def guides(shop) -> Guides:
    return Guides(shop)


@pytest.fixture
def brand(shop, guides):
    """A brand with a product, its admin, two active guides and a shopper."""
    brand_id = shop.brand()
    admin = guides.login("brand_admin", brand_id)
    product = Live(shop).product(brand_id, price=5000)
    shopper = guides.login()
    return {"id": brand_id, "admin": admin, "product": product, "a": guides.guide(admin, brand_id),
            "b": guides.guide(admin, brand_id), "shopper": shopper, "shopper_id": shop.user_id(shopper)}  # fmt: skip


def test_a_product_link_has_a_path_and_qr_code_and_opening_it_binds_and_adds_a_guide_line(client, guides, brand):
    link = guides.link(brand["a"], "product", product_id=brand["product"])
    assert link["path"] == f"pages/guide/link?t={link['token']}" and len(link["token"]) < 60
    png = client.get(link["qr_url"])
    assert png.status_code == 200 and png.data.startswith(PNG_MAGIC)
    assert client.get("/api/v1/guide/links/qr.png", query_string={"t": link["token"] + "x"}).status_code == 422

    resp = guides.open(brand["shopper"], link)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["binding"]["kind"] == "bound" and body["binding"]["guide_id"] == brand["a"]["id"]
    reason = body["binding"]["reason"]
    assert reason["link_id"] == link["id"] and reason["rule"] == "protected" and reason["days"] == 15
    assert reason["setting_version"] == 0 and reason["window"]["until"] is not None
    lines = client.get("/api/v1/cart", headers=brand["shopper"]).get_json()["lines"]
    line = next(ln for ln in lines if ln["id"] == body["line_id"])
    assert line["source"]["type"] == "guide" and line["source"]["guide_id"] == brand["a"]["id"]
    assert [b.guide_id for b in guides.active(brand["shopper_id"], brand["id"])] == [brand["a"]["id"]]


def test_protected_refuses_a_take_over_inside_the_period_with_its_reason_and_allows_it_after(guides, brand):
    a_link, b_link = guides.link(brand["a"]), guides.link(brand["b"])
    bound = guides.opened(brand["shopper"], a_link)
    guides.later(timedelta(days=14))
    refused = guides.opened(brand["shopper"], b_link)
    assert refused["kind"] == "refused" and refused["guide_id"] == brand["b"]["id"]
    assert refused["reason"]["why"] == "protection_period" and refused["reason"]["bound_guide_id"] == brand["a"]["id"]
    assert refused["binding_id"] == bound["binding_id"] is not None and refused["reason"]["link_id"] == b_link["id"]
    assert refused["reason"]["window"]["until"] == bound["reason"]["window"]["until"]

    guides.later(timedelta(days=2))  # the 15 days are over
    taken = guides.opened(brand["shopper"], b_link)
    assert taken["kind"] == "bound" and taken["guide_id"] == brand["b"]["id"]
    assert [b.guide_id for b in guides.active(brand["shopper_id"], brand["id"])] == [brand["b"]["id"]]
    kinds = [(e["kind"], e["guide_id"]) for e in guides.why(brand["admin"], brand["shopper_id"])]
    a, b = brand["a"]["id"], brand["b"]["id"]
    assert kinds == [("bound", a), ("refused", b), ("ended", a), ("bound", b)]


def test_permanent_keeps_the_first_guide(guides, brand):
    guides.rule(brand["admin"], "permanent")
    guides.opened(brand["shopper"], guides.link(brand["a"]))
    guides.later(timedelta(days=400))
    refused = guides.opened(brand["shopper"], guides.link(brand["b"]))
    assert refused["kind"] == "refused" and refused["reason"]["why"] == "permanent_binding"
    assert [b.guide_id for b in guides.active(brand["shopper_id"], brand["id"])] == [brand["a"]["id"]]


def test_last_click_switches_to_the_latest_guide(guides, brand):
    guides.rule(brand["admin"], "last_click")
    first = guides.opened(brand["shopper"], guides.link(brand["a"]))
    assert first["reason"]["window"]["until"] is None
    second = guides.opened(brand["shopper"], guides.link(brand["b"]))
    assert second["kind"] == "bound" and second["reason"]["replaced_guide_id"] == brand["a"]["id"]
    back = guides.opened(brand["shopper"], guides.link(brand["a"]))
    assert back["kind"] == "bound" and back["guide_id"] == brand["a"]["id"]
    assert [b.guide_id for b in guides.active(brand["shopper_id"], brand["id"])] == [brand["a"]["id"]]


def test_click_lock_is_extended_by_an_order_and_by_the_same_guides_click(shop, guides, brand):
    guides.rule(brand["admin"], "click_lock", days=3, order_days=10)
    a_link = guides.link(brand["a"], "product", product_id=brand["product"])
    b_link = guides.link(brand["b"])
    resp = guides.open(brand["shopper"], a_link)
    line_id = resp.get_json()["line_id"]
    guides.later(timedelta(days=2))
    assert guides.opened(brand["shopper"], b_link)["reason"]["why"] == "click_lock"
    placed = shop.place(brand["shopper"], [line_id], shop.address(brand["shopper"]))
    assert placed.status_code == 201, placed.get_json()
    guides.later(timedelta(days=9))  # 11 days after the click, 9 after the order: still locked by the order
    refused = guides.opened(brand["shopper"], b_link)
    assert refused["kind"] == "refused" and refused["reason"]["why"] == "click_lock"
    events = guides.why(brand["admin"], brand["shopper_id"])
    assert any(e["kind"] == "extended" and e["reason"]["why"] == "order" for e in events)
    guides.later(timedelta(days=2))
    assert guides.opened(brand["shopper"], b_link)["kind"] == "bound"

    # The same guide's click extends the lock by N days.
    c_link = guides.link(brand["a"])
    guides.later(timedelta(days=2))
    assert guides.opened(brand["shopper"], b_link)["kind"] == "extended"
    guides.later(timedelta(days=2))  # 4 days after binding, 2 after the extending click
    assert guides.opened(brand["shopper"], c_link)["kind"] == "refused"


def test_a_guide_cannot_bind_themselves(shop, guides, brand):
    own = guides.login()
    own_id = shop.user_id(own)
    me = guides.guide(brand["admin"], brand["id"], shopper_user_id=own_id)
    refused = guides.opened(own, guides.link(me))
    assert refused["kind"] == "refused" and refused["reason"]["why"] == "self_binding"
    assert guides.active(own_id, brand["id"]) == []
    # ... while another guide may bind the same person as a customer
    assert guides.opened(own, guides.link(brand["a"]))["kind"] == "bound"


def test_a_rule_change_applies_to_new_bindings_only(guides, brand):
    guides.opened(brand["shopper"], guides.link(brand["a"]))  # protected, 15 days (the default, version 0)
    assert guides.rule(brand["admin"], "last_click")["version"] == 1
    refused = guides.opened(brand["shopper"], guides.link(brand["b"]))
    assert refused["reason"]["why"] == "protection_period" and refused["reason"]["setting_version"] == 0
    other = guides.link(brand["b"])
    guides.later(timedelta(days=16))
    bound = guides.opened(brand["shopper"], other)
    assert bound["reason"]["rule"] == "last_click" and bound["reason"]["setting_version"] == 1


def test_handing_a_leaving_guides_customers_over_keeps_their_history(shop, client, guides, brand):
    second = guides.login()
    second_id = shop.user_id(second)
    link = guides.link(brand["a"])
    guides.opened(brand["shopper"], link)
    guides.opened(second, link)
    resp = client.post(f"{ADMIN}/{brand['a']['id']}/remove", json={"hand_to": brand["b"]["id"]},
                       headers=brand["admin"])  # fmt: skip
    assert resp.status_code == 200 and resp.get_json()["status"] == "removed", resp.get_json()
    for shopper_id in (brand["shopper_id"], second_id):
        assert [b.guide_id for b in guides.active(shopper_id, brand["id"])] == [brand["b"]["id"]]
    events = guides.why(brand["admin"], brand["shopper_id"])
    assert [e["kind"] for e in events] == ["bound", "ended", "handed_over"]
    assert (
        events[1]["reason"]["why"] == "handed_over"
        and events[2]["reason"]["handover_from_guide_id"] == brand["a"]["id"]
    )
    assert guides.open(brand["shopper"], link).get_json()["code"] == "guides.link_inactive"
    # the new guide reads why the customer is theirs
    assert [e["kind"] for e in guides.why(brand["b"]["headers"], brand["shopper_id"], admin=False)] == ["handed_over"]


def test_a_suspended_guides_link_is_gone_and_records_no_visit(client, guides, brand):
    link = guides.link(brand["a"])
    assert client.post(f"{ADMIN}/{brand['a']['id']}/suspend", headers=brand["admin"]).status_code == 200
    resp = guides.open(brand["shopper"], link)
    assert resp.status_code == 410 and resp.get_json()["code"] == "guides.link_inactive"
    assert guides.why(brand["admin"], brand["shopper_id"]) == []


def test_another_brands_guide_and_admin_see_nothing(shop, client, guides, brand):
    guides.opened(brand["shopper"], guides.link(brand["a"]))
    other = shop.brand()
    other_admin = guides.login("brand_admin", other)
    stranger = guides.guide(other_admin, other)
    assert guides.why(stranger["headers"], brand["shopper_id"], admin=False) == []
    assert guides.why(other_admin, brand["shopper_id"]) == []
    resp = client.get(f"{ADMIN}/customers/{brand['shopper_id']}/why", query_string={"brand_id": brand["id"]},
                      headers=other_admin)  # fmt: skip
    assert resp.status_code == 403, resp.get_json().get("errors", resp.get_json())
    assert client.post(f"{ADMIN}/{brand['a']['id']}/suspend", headers=other_admin).status_code == 404
    # the bound guide's own view, and the other guide of the brand sees only what concerns them
    assert [e["kind"] for e in guides.why(brand["a"]["headers"], brand["shopper_id"], admin=False)] == ["bound"]
    assert guides.why(brand["b"]["headers"], brand["shopper_id"], admin=False) == []
    # a guide cannot share another brand's product
    resp = client.post("/api/v1/guide/links", json={"target": "product", "product_id": brand["product"]},
                       headers=stranger["headers"])  # fmt: skip
    assert resp.status_code == 422 and resp.get_json()["code"] == "guides.product_unknown"


def test_the_binding_in_force_is_snapshotted_on_that_brands_order_lines(shop, app, guides, brand):
    other_brand = shop.brand()
    other_sku = shop.sku(other_brand, price=700)
    resp = guides.open(brand["shopper"], guides.link(brand["a"], "product", product_id=brand["product"]))
    line_id = resp.get_json()["line_id"]
    other_line = shop.add(brand["shopper"], other_sku)
    placed = shop.place(brand["shopper"], [line_id, other_line], shop.address(brand["shopper"]))
    assert placed.status_code == 201, placed.get_json()
    binding_id = guides.active(brand["shopper_id"], brand["id"])[0].id
    with app.app_context():
        rows = db.session.execute(sa.select(OrderLine.sku_id, OrderLine.guide_id, OrderLine.guide_binding_id)
                                  .where(OrderLine.order_id == placed.get_json()["id"])).all()  # fmt: skip
    got = {sku: (guide, b) for sku, guide, b in rows}
    assert got[other_sku] == (None, None)
    assert [v for k, v in got.items() if k != other_sku] == [(brand["a"]["id"], binding_id)]


def test_a_binding_loop_between_two_guides_identities_is_refused(shop, guides, brand):
    identities = [guides.login() for _ in range(2)]
    ids = [shop.user_id(h) for h in identities]
    first, second = (guides.guide(brand["admin"], brand["id"], shopper_user_id=i) for i in ids)
    assert guides.opened(identities[0], guides.link(second))["kind"] == "bound"  # first's identity is second's customer
    refused = guides.opened(identities[1], guides.link(first))
    assert refused["kind"] == "refused" and refused["reason"]["why"] == "binding_loop"
    assert guides.active(ids[1], brand["id"]) == []


def test_hand_over_needs_an_active_guide_of_the_same_brand(shop, client, guides, brand):
    guides.opened(brand["shopper"], guides.link(brand["a"]))
    other = shop.brand()
    stranger = guides.guide(guides.login("brand_admin", other), other)
    url = f"{ADMIN}/{brand['a']['id']}/hand-over"
    resp = client.post(url, json={"to_guide_id": stranger["id"]}, headers=brand["admin"])
    assert resp.status_code == 422 and resp.get_json()["code"] == "guides.handover_target"
    assert client.post(f"{ADMIN}/{brand['b']['id']}/suspend", headers=brand["admin"]).status_code == 200
    resp = client.post(url, json={"to_guide_id": brand["b"]["id"]}, headers=brand["admin"])
    assert resp.status_code == 409 and resp.get_json()["code"] == "guides.handover_target_inactive"
    assert [b.guide_id for b in guides.active(brand["shopper_id"], brand["id"])] == [brand["a"]["id"]]
    assert client.post(f"{ADMIN}/{brand['b']['id']}/activate", headers=brand["admin"]).status_code == 200
    resp = client.post(url, json={"to_guide_id": brand["b"]["id"]}, headers=brand["admin"])
    assert resp.status_code == 200 and resp.get_json() == {"customers": 1}
    assert [b.guide_id for b in guides.active(brand["shopper_id"], brand["id"])] == [brand["b"]["id"]]
    assert guides.opened(brand["shopper"], guides.link(brand["a"]))["kind"] == "refused"  # a is active, b protected


def test_a_shopper_may_have_different_guides_in_different_brands(shop, guides, brand):
    other = shop.brand()
    there = guides.guide(guides.login("brand_admin", other), other)
    assert guides.opened(brand["shopper"], guides.link(brand["a"]))["kind"] == "bound"
    assert guides.opened(brand["shopper"], guides.link(there))["kind"] == "bound"
    assert [b.guide_id for b in guides.active(brand["shopper_id"], brand["id"])] == [brand["a"]["id"]]
    assert [b.guide_id for b in guides.active(brand["shopper_id"], other)] == [there["id"]]


def test_store_and_live_room_links_bind_without_adding_to_the_cart(shop, client, guides, brand):
    live = Live(shop)
    _, host_id = live.host()
    room = live.room(brand["admin"], host_id, [brand["product"]])
    store = client.post(f"{ADMIN}/stores", json={"name": "West Lake"}, headers=brand["admin"])
    assert store.status_code == 201, store.get_json()
    store_link = guides.link(brand["a"], "store", store_id=store.get_json()["id"])
    room_link = guides.link(brand["a"], "live_room", room_id=room["id"])
    for link in (store_link, room_link):
        body = guides.open(brand["shopper"], link).get_json()
        assert body["line_id"] is None and body["target"] == link["target"]
    assert [e["kind"] for e in guides.why(brand["admin"], brand["shopper_id"])] == ["bound", "kept"]
    assert client.get("/api/v1/cart", headers=brand["shopper"]).get_json()["lines"] == []
    listed = client.get("/api/v1/guide/links", headers=brand["a"]["headers"]).get_json()
    assert [ln["id"] for ln in listed] == [room_link["id"], store_link["id"]]

    other = shop.brand()
    stranger = guides.guide(guides.login("brand_admin", other), other)
    for body in (
        {"target": "live_room", "room_id": room["id"]},
        {"target": "store", "store_id": store_link["store_id"]},
    ):
        resp = client.post("/api/v1/guide/links", json=body, headers=stranger["headers"])
        assert resp.status_code == 422, resp.get_json()


def test_a_shopper_no_guide_bound_is_placed_without_looking_bindings_up(shop, brand):
    """The quote reads "bound to any guide?" with the shopper's row; only a bound shopper's placement then reads
    their bindings (the snapshot test above shows what a bound one gets)."""
    me = shop.shopper()
    sku = shop.sku(brand["id"], price=900)
    line, address = shop.add(me, sku), shop.address(me)
    seen: list[str] = []

    def watch(conn, cursor, statement, *args):
        if "guide_bindings" in statement:
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", watch)
    try:
        placed = shop.place(me, [line], address)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", watch)

    assert placed.status_code == 201, placed.get_json()
    assert len(seen) == 1 and "EXISTS" in seen[0].upper()  # the quote's fact only; no read of the bindings
