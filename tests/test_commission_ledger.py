"""The commission ledger's core (mall/guides/ledger.py): idempotent posting, the cached balance kept equal to the
sum of entries through posts and state moves, `audit` finding a cache that disagrees, and the balance lock."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall.guides import ledger
from tests.commission_helpers import Commission
from tests.shop_helpers import Shop


@pytest.fixture
def world(app, client, login) -> Commission:
    return Commission(Shop(app, client, login))


def _post(world, key, amount, state="pending", kind="earn", **refs):
    return ledger.post(db.session, guide_id=world.guide["id"], brand_id=world.brand, currency="CNY", amount=amount,
                       kind=kind, state=state, key=key, reason={"rule": "test"}, **refs)  # fmt: skip


def test_post_is_idempotent_on_its_key_and_the_cache_is_the_sum(app, world):
    with app.app_context():
        first = _post(world, "earn:1", 500, sub_order_id=7)
        assert first is not None
        assert _post(world, "earn:1", 500, sub_order_id=7) is None  # a retry changes nothing
        _post(world, "earn:2", 300, state="on_hold", sub_order_id=8)
        _post(world, "earn:3", 0, state="void", sub_order_id=8)
        db.session.commit()
        assert ledger.balance(db.session, world.guide["id"], "CNY") == ledger.Balance(500, 0, 300)
        assert ledger.balance(db.session, world.guide["id"], "USD") == ledger.Balance()
        assert ledger.audit(db.session) == []


def test_move_moves_the_sums_between_states_once(app, world):
    with app.app_context():
        _post(world, "earn:1", 500, sub_order_id=7)
        _post(world, "reverse:1", -120, kind="reverse", sub_order_id=7)
        _post(world, "earn:2", 300, sub_order_id=8)
        assert ledger.move(db.session, from_state="pending", to_state="available", sub_order_ids=[7]) == 2
        assert ledger.move(db.session, from_state="pending", to_state="available", sub_order_ids=[7]) == 0
        db.session.commit()
        assert ledger.balance(db.session, world.guide["id"], "CNY") == ledger.Balance(300, 380, 0)
        held = _post(world, "earn:3", 200, state="on_hold", sub_order_id=9)
        assert ledger.move(db.session, from_state="on_hold", to_state="void", entry_ids=[held]) == 1
        db.session.commit()
        assert ledger.balance(db.session, world.guide["id"], "CNY") == ledger.Balance(300, 380, 0)
        assert ledger.audit(db.session) == []


def test_audit_names_a_cache_that_is_not_the_sum(app, world):
    with app.app_context():
        _post(world, "earn:1", 500)
        db.session.commit()
        db.session.execute(sa.text("UPDATE guide_balances SET pending = 499"))
        assert ledger.audit(db.session) == [(world.guide["id"], "CNY")]
        db.session.execute(sa.text("DELETE FROM guide_commission_entries"))
        assert ledger.audit(db.session) == [(world.guide["id"], "CNY")]  # a cache with no entries at all
        db.session.rollback()


def test_lock_balance_creates_the_row_and_reads_it(app, world):
    with app.app_context():
        assert ledger.lock_balance(db.session, world.guide["id"], "CNY") == ledger.Balance()
        _post(world, "adjust:1", 700, state="available", kind="adjust")
        assert ledger.lock_balance(db.session, world.guide["id"], "CNY") == ledger.Balance(0, 700, 0)
        db.session.commit()
        assert ledger.audit(db.session) == []


def test_the_audit_command_says_whether_every_cache_holds(app, world):
    with app.app_context():
        _post(world, "earn:1", 500)
        db.session.commit()
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["mall", "commission-audit"])
    assert ok.exit_code == 0 and "every cache equals" in ok.output
    with app.app_context():
        db.session.execute(sa.text("UPDATE guide_balances SET pending = 1"))
        db.session.commit()
    bad = runner.invoke(args=["mall", "commission-audit"])
    assert bad.exit_code == 1 and f"guide {world.guide['id']} CNY" in bad.output


def test_campaign_lines_are_flash_group_buy_and_live_priced_ones():
    from mall.guides.rates import is_campaign
    from mall.orders.models import OrderLine

    assert is_campaign(OrderLine(source={"type": "flash_sale", "sale_id": 1, "item_id": 2}, discounts={}))
    assert is_campaign(OrderLine(source={"type": "group_buy", "campaign_id": 1}, discounts={}))
    assert is_campaign(OrderLine(source={"type": "live", "room_id": 1, "host_id": 2}, discounts={"live:7": 300}))
    assert not is_campaign(OrderLine(source={"type": "live", "room_id": 1, "host_id": 2}, discounts={}))  # a visit
    assert not is_campaign(OrderLine(source={"type": "guide", "guide_id": 1}, discounts={"coupon:3": 100}))


def test_a_fixed_card_in_another_currency_does_not_apply():
    from datetime import UTC, datetime

    from mall.guides.ledger_models import RateCard
    from mall.guides.rates import decide
    from mall.orders.models import OrderLine

    when = datetime(2026, 12, 1, tzinfo=UTC)
    usd = RateCard(id=1, brand_id=5, scope="brand", amount_per_unit=100, currency="USD", includes_campaign_lines=False,
                   valid_from=when)  # fmt: skip
    bp = RateCard(id=2, brand_id=5, scope="brand", basis_points=250, includes_campaign_lines=False, valid_from=when)
    line = OrderLine(id=9, product_id=3, quantity=2, payable=1999, source={}, discounts={})
    chosen = decide([usd, bp], line=line, brand_id=5, currency="CNY", category_path="/4/", grade=None)
    assert (chosen.card, chosen.amount) == (bp, 1999 * 250 // 10000)
    nothing = decide([usd], line=line, brand_id=5, currency="CNY", category_path="/4/", grade=None)
    assert (nothing.card, nothing.amount, nothing.reason["rule"]) == (None, 0, "no_rate_card")
