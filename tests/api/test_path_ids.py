"""Path ids beyond the 32-bit id columns match no route, never reach the database (a 500 on PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.shop_helpers import Shop

BIG = 2**40


@pytest.fixture
def shop(app, client, login) -> Shop:
    return Shop(app, client, login)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", f"/api/v1/products/{BIG}"),
        ("GET", f"/api/v1/orders/{BIG}"),
        ("POST", f"/api/v1/orders/{BIG}/cancel"),
        ("PATCH", f"/api/v1/cart/lines/{BIG}"),
        ("DELETE", f"/api/v1/cart/lines/{BIG}"),
    ],
)
def test_a_path_id_beyond_the_id_columns_is_404(shop, client, method, path):
    me = shop.shopper()
    resp = client.open(path, method=method, json={"quantity": 1} if method == "PATCH" else None, headers=me)
    # 404; werkzeug says 405 where another method's rule shares the path (DELETE /cart/lines/<id>).
    assert resp.status_code in (404, 405) and resp.get_json()["status"] == resp.status_code, resp.get_json()


def test_ids_beyond_the_id_columns_in_bodies_and_queries_are_422(client, login):
    admin = login("platform_admin", name="ops")
    cases = [
        client.get("/api/v1/admin/notifications", query_string={"user_id": BIG}, headers=admin),
        client.get("/api/v1/admin/notifications", query_string={"before": BIG}, headers=admin),
        client.post("/api/v1/auth/dev", json={"role": "brand_admin", "name": "far", "brand_id": BIG}),
        client.post("/api/v1/admin/staff", headers=admin, json={"role": "brand_admin", "name": "Far", "brand_id": BIG,
                                                                 "email": "far@example.com", "password": "long-enough-1"}),
    ]  # fmt: skip
    assert [resp.status_code for resp in cases] == [422] * len(cases), [resp.get_json() for resp in cases]
