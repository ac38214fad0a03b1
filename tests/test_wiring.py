"""The composition root: every entry point runs it, it installs what the settings say (once), and a process
that skipped it refuses to change anything rather than change it half (an order locking no coupon)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import events, wiring
from mall.orders.models import Order
from tests.shop_helpers import Shop
from workers import composition

ROOT = Path(__file__).resolve().parent.parent

# What an order's life needs plugged in; a missing one is a silent half-change, not an error.
ESSENTIAL = {
    ("reactions", "order.placed"): "mall.promotions.coupons.lifecycle.lock",
    ("reactions", "order.paid"): "mall.promotions.coupons.lifecycle.use",
    ("reactions", "order.cancelled"): "mall.promotions.flash_sale.wiring.install.<locals>.give_back",
    ("subscribers", "order.placed"): "workers.subscriptions._schedule_unpaid_timeout",
    ("subscribers", "message.queued"): "workers.subscriptions._dispatch_when_due",
    ("subscribers", "refund.claimed"): "workers.subscriptions._send_refund",
    ("pricing", "coupons"): "mall.promotions.coupons.checkout.apply_coupons",
    ("pricing", "promotion_price"): "mall.members.level_pricing.member_price",
    ("reactions", "refund_lines.written"): "mall.members.levels.on_refunded",
}


def _installed_by(entry_point: str, tmp_path, redis_url) -> dict:
    """Start a fresh interpreter that runs only `entry_point`, and read what it installed."""
    code = f"{entry_point}\nimport json\nfrom workers import composition\nprint(json.dumps(composition.describe()))"
    env = {k: v for k, v in os.environ.items() if k not in ("MALL_ENV", "SECRET_KEY")}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'entry.db'}", "REDIS_URL": redis_url}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


RQ_WORKER = (  # what `rq worker -w workers.worker.Worker` does before its first job
    "import os, redis\nfrom workers.worker import Worker\n"
    "Worker(['high'], connection=redis.Redis.from_url(os.environ['REDIS_URL']))"
)


@pytest.mark.parametrize(
    "entry_point", ["import wsgi", "import workers.cron", RQ_WORKER], ids=["api", "rq-cron", "rq-worker"]
)
def test_every_entry_point_runs_the_composition_root(entry_point, tmp_path, redis_url):
    installed = _installed_by(entry_point, tmp_path, redis_url)

    for (kind, name), handler in ESSENTIAL.items():
        assert handler in installed[kind][name], (kind, name)


def test_a_bare_import_of_the_domain_installs_nothing(tmp_path, redis_url):
    installed = _installed_by("import mall.models", tmp_path, redis_url)

    assert installed["reactions"] == {} and installed["subscribers"] == {}
    assert installed["pricing"]["coupons"] == []


def test_a_process_that_skipped_the_root_places_no_order(app, client, login, monkeypatch):
    shop = Shop(app, client, login)
    me = shop.shopper()
    line = shop.add(me, shop.sku(shop.brand(), price=1000))
    address = shop.address(me)
    monkeypatch.setattr(wiring, "_done", False)

    with app.app_context(), pytest.raises(wiring.NotWired, match="composition root"):
        events.record(db.session, "order.placed", aggregate="order", aggregate_id=1)
    placed = shop.place(me, [line], address)

    assert placed.status_code == 500

    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_running_the_root_again_installs_each_handler_once(app, settings):
    from workers import runtime

    before = composition.describe()
    runtime.configure(replace(settings, secret_key=settings.secret_key + "-again"))
    runtime.configure(settings)

    assert composition.describe() == before


def test_deployment_policies_decide_what_is_installed(app, rewire):
    assert "order.closed" not in composition.describe()["reactions"]  # refunded orders keep their coupons used

    rewire(coupon_return_on_full_refund=True)

    assert composition.describe()["reactions"]["order.closed"] == [
        "mall.promotions.coupons.lifecycle.return_after_full_refund"
    ]
