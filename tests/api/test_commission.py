"""The commission ledger over HTTP (ADR 0022): rate cards (most specific wins, grades, campaign lines, dated
changes that never move earned commission), earning on what a line actually paid, holds on self-purchase,
reversals from every refund path to the cent (a line refunded in three parts reverses exactly), settlement making
entries available only after the window, a refund after that going negative, and who may read what."""

from __future__ import annotations

import pytest

from tests.commission_helpers import T0, Commission, at
from tests.shop_helpers import Shop

pytestmark = pytest.mark.refund_audit


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.fixture
def world(shop) -> Commission:
    at(T0)
    return Commission(shop)


def test_a_paid_guided_line_earns_pending_commission_on_its_card_with_the_reason(world):
    sku, product = world.sku(3333)
    card = world.card(scope="brand", basis_points=1000)
    order = world.buy([(sku, 3)])
    line_id = order["line_ids"][sku]

    [entry] = world.entries(line_id)
    assert (entry.kind, entry.state, entry.amount, entry.rate_card_id) == ("earn", "pending", 999, card["id"])
    assert entry.reason["rule"] == "rate_card" and entry.reason["base"] == 9999 and entry.reason["basis_points"] == 1000
    assert world.balance() == (999, 0, 0) and world.audit() == []


def test_a_line_without_a_card_earns_nothing_and_says_why(world):
    sku, _ = world.sku(1000)
    order = world.buy([(sku, 1)])
    assert world.facts(order["line_ids"][sku]) == [("earn", "void", 0)]
    assert world.entries(order["line_ids"][sku])[0].reason["rule"] == "no_rate_card"
    assert world.balance() == (0, 0, 0)


def test_the_guides_own_purchase_through_a_linked_identity_is_held(world):
    sku, _ = world.sku(2000)
    world.card(scope="brand", basis_points=500)
    world.link_identity()
    order = world.buy([(sku, 1)])
    [entry] = world.entries(order["line_ids"][sku])
    assert (entry.state, entry.amount) == ("on_hold", 100)
    assert entry.reason["hold"] == {"rule": "self_purchase", "signal": "linked_identity", "buyer_id": world.shopper_id}
    assert world.balance() == (0, 0, 100) and world.audit() == []
