"""Brands' shipping policies, as the platform and brand admins set them."""

from __future__ import annotations

import sqlalchemy as sa

from api.extensions import db
from mall.checkout.models import ShippingPolicy


def test_a_policy_for_a_brand_that_does_not_exist_is_404_and_writes_nothing(app, client, login):
    admin = login("platform_admin", name="ops")
    resp = client.put("/api/v1/admin/brands/424242/shipping", json={"fee": 800, "free_above": 9900}, headers=admin)
    assert resp.status_code == 404 and resp.get_json()["code"] == "brand.not_found"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ShippingPolicy)) == 0
