"""Set-up for guide payout tests: a brand, its admin and an active guide (tests/guide_helpers.py), money made
available in the guide's ledger, the brand's payout terms and the guide's accounts, and the payout endpoints."""

from __future__ import annotations

import itertools

import sqlalchemy as sa

from api.extensions import db
from mall.guides import ledger
from mall.guides.ledger_models import CommissionEntry
from mall.guides.payout_models import Payout
from tests.guide_helpers import Guides
from tests.shop_helpers import Shop

MINE, ADMIN = "/api/v1/guide/payouts", "/api/v1/admin/guides/payouts"
TERMS = "/api/v1/admin/guides/payout-terms"
_KEYS = itertools.count(1)


class Payouts:
    """One brand with its admin and guide `guide`; `fund` makes money available, `ask` requests a payout."""

    def __init__(self, shop: Shop, *, gateway: str = "manual", min_days_between: int = 0, guides: Guides | None = None,
                 brand: int | None = None, admin: dict | None = None):  # fmt: skip
        self.shop, self.client, self.app = shop, shop.client, shop.app
        self.guides = guides or Guides(shop)
        self.brand = brand or shop.brand()
        self.admin = admin or self.guides.login("brand_admin", self.brand)
        self.guide = self.guides.guide(self.admin, self.brand)
        self.terms(gateway=gateway, min_days_between=min_days_between)
        self.account(stripe_account_id=f"acct_{self.guide['id']:04d}", bank_account=f"CN-BANK-{self.guide['id']}")

    def own_client(self):
        """A client of its own (for another thread)."""
        return self.app.test_client()

    def terms(self, **body) -> dict:
        resp = self.client.put(TERMS, json=body, headers=self.admin)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def account(self, **body) -> dict:
        resp = self.client.put(f"/api/v1/admin/guides/{self.guide['id']}/payout-account", json=body, headers=self.admin)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def fund(self, amount: int, currency: str = "CNY") -> None:
        """Commission made available (an 'adjust' entry, as a settled earn would be)."""
        with self.app.app_context():
            ledger.post(db.session, guide_id=self.guide["id"], brand_id=self.brand, currency=currency, amount=amount,
                        kind="adjust", state="available", key=f"test-fund:{next(_KEYS)}",
                        reason={"rule": "test"})  # fmt: skip
            db.session.commit()

    def ask(self, amount: int, **extra):
        return self.client.post(MINE, json={"amount": amount, **extra}, headers=self.guide["headers"])

    def asked(self, amount: int, **extra) -> dict:
        resp = self.ask(amount, **extra)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def act(self, payout_id: int, action: str, headers: dict | None = None, **body):
        sends = body or action in ("reject", "cancel", "mark-paid", "mark-failed")  # those take a body ({} at least)
        return self.client.post(f"{ADMIN}/{payout_id}/{action}", json=body if sends else None,
                                headers=headers or self.admin)  # fmt: skip

    def approved(self, amount: int) -> dict:
        payout = self.asked(amount)
        resp = self.act(payout["id"], "approve")
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def process(self, payout_ids: list[int] | None = None, headers: dict | None = None):
        body = {"payout_ids": payout_ids} if payout_ids else {}
        return self.client.post(f"{ADMIN}/process", json=body, headers=headers or self.admin)

    def available(self, currency: str = "CNY") -> int:
        with self.app.app_context():
            return ledger.balance(db.session, self.guide["id"], currency).available

    def row(self, payout_id: int) -> Payout:
        with self.app.app_context():
            payout = db.session.get(Payout, payout_id)
            db.session.expunge(payout)
            return payout

    def entries(self, payout_id: int) -> list[tuple[str, int]]:
        with self.app.app_context():
            rows = db.session.execute(sa.select(CommissionEntry.kind, CommissionEntry.amount)
                                      .where(CommissionEntry.payout_id == payout_id).order_by(CommissionEntry.id))  # fmt: skip
            return [tuple(row) for row in rows]

    def audit(self) -> list:
        with self.app.app_context():
            db.session.remove()
            return ledger.audit(db.session)
