"""Flash and group-buy purchases keep the live or guide source the shopper came with (the signed link, else the
cart line of the SKU) beside the promotion's own: the order line carries both."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import attribution, clock
from mall.orders.models import OrderLine
from tests.api.test_cart import guide_token, live_token
from tests.api.test_flash_sales import START, buyer
from tests.api.test_flash_sales import sale as sale  # noqa: F401 (the fixture)
from tests.api.test_group_buy import NOW, campaign, group, key, shopper
from tests.shop_helpers import Shop
from workers.flash import gate

LIVE = {"type": "live", "room_id": 3, "host_id": 9}
GUIDE = {"type": "guide", "guide_id": 5}


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


def purchase(client, sale, headers, address, **extra):
    path = f"/api/v1/flash-sales/{sale['id']}/items/{sale['item']}/purchase"
    return client.post(
        path, json={"address_id": address, **extra}, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
    )


def stored_source(app, order_id: int) -> dict:
    with app.app_context():
        return db.session.scalar(sa.select(OrderLine.source).where(OrderLine.order_id == order_id))


def line_source(order: dict) -> dict:
    return order["sub_orders"][0]["lines"][0]["source"]


def test_flash_purchase_keeps_the_cart_lines_live_source_or_the_link_beside_the_sale(app, shop, client, sale):
    flash = {"type": "flash_sale", "sale_id": sale["id"], "item_id": sale["item"]}
    from_cart, address = buyer(shop)
    shop.add(from_cart, sale["sku"], source_token=live_token())  # watched the live room, added to the cart
    with_link, link_address = buyer(shop)
    organic, organic_address = buyer(shop)
    clock.freeze(START)

    order = purchase(client, sale, from_cart, address)
    assert order.status_code == 201, order.get_json()
    assert line_source(order.get_json()) == {**flash, "origin": LIVE}
    assert stored_source(app, order.get_json()["id"]) == {**flash, "origin": LIVE}
    assert attribution.credited(line_source(order.get_json())) == LIVE

    linked = purchase(client, sale, with_link, link_address, source_token=guide_token())
    assert linked.status_code == 201, linked.get_json()
    assert stored_source(app, linked.get_json()["id"]) == {**flash, "origin": GUIDE}

    forged = purchase(client, sale, organic, organic_address, source_token=guide_token()[:-2] + "xx")
    assert (forged.status_code, forged.get_json()["code"]) == (422, "attribution.invalid")
    assert gate().counters(sale["item"])[0] == 1  # the refused purchase took no unit
    plain = purchase(client, sale, organic, organic_address)
    assert stored_source(app, plain.get_json()["id"]) == flash  # no link, no cart line: the sale's own only


def test_group_buy_open_and_join_keep_the_shoppers_source_beside_the_group_buys(app, shop, client):
    clock.freeze(NOW)
    camp = campaign(shop, client, size=2)
    leader, address = shopper(shop)
    shop.add(leader, camp["sku"], source_token=guide_token())
    opened = client.post(f"/api/v1/group-campaigns/{camp['id']}/groups", json={"address_id": address},
                         headers=key(leader)).get_json()  # fmt: skip
    group_id = opened["group"]["id"]
    own = {"type": "group_buy", "campaign_id": camp["id"], "group_id": group_id}
    assert stored_source(app, opened["order"]["id"]) == {**own, "origin": GUIDE}
    assert shop.pay(leader, opened["order"]["id"]).status_code == 200

    member, member_address = shopper(shop)
    joined = client.post(f"/api/v1/groups/{group_id}/join",
                         json={"address_id": member_address, "source_token": live_token()}, headers=key(member))  # fmt: skip
    assert joined.status_code == 201, joined.get_json()
    assert line_source(joined.get_json()) == {**own, "origin": LIVE}
    assert shop.pay(member, joined.get_json()["id"]).status_code == 200
    assert group(client, group_id)["status"] == "succeeded"  # still counted as the group-buy's order
