"""Who may call what: every protected route, every role, other brands' and other shoppers' things.

The route table below must name every route of the app, either as public or with the roles
that may call it: a new route without an entry fails `test_every_route_is_in_the_table`.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.extensions import db
from mall import clock
from mall.catalog.models import Bundle, Product, Sku
from mall.identity.models import Address

SHOPPER, HOST, GUIDE, BRAND_ADMIN, PLATFORM_ADMIN = "shopper", "host", "guide", "brand_admin", "platform_admin"
ROLES = (SHOPPER, HOST, GUIDE, BRAND_ADMIN, PLATFORM_ADMIN)
ANY = frozenset(ROLES)
PLATFORM = frozenset({PLATFORM_ADMIN})
MERCHANT = frozenset({BRAND_ADMIN, PLATFORM_ADMIN})
SHOPPERS = frozenset({SHOPPER})
GUIDES = frozenset({GUIDE})
HOSTS = frozenset({HOST, BRAND_ADMIN, PLATFORM_ADMIN})  # a room's host or its brand's admin

# (method, rule) -> the roles allowed in.
PROTECTED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/auth/logout-all"): ANY,
    ("POST", "/api/v1/auth/logout"): ANY,
    ("POST", "/api/v1/admin/users/<int:user_id>/disable"): MERCHANT,  # a brand admin: its brand's hosts and guides
    ("POST", "/api/v1/admin/users/<int:user_id>/enable"): MERCHANT,
    ("GET", "/api/v1/me"): ANY,
    ("GET", "/api/v1/me/addresses"): SHOPPERS,
    ("POST", "/api/v1/me/addresses"): SHOPPERS,
    ("GET", "/api/v1/me/addresses/<int:address_id>"): SHOPPERS,
    ("PATCH", "/api/v1/me/addresses/<int:address_id>"): SHOPPERS,
    ("DELETE", "/api/v1/me/addresses/<int:address_id>"): SHOPPERS,
    # points (ADR 0027)
    ("GET", "/api/v1/me/points"): SHOPPERS,
    ("GET", "/api/v1/me/member"): SHOPPERS,
    ("GET", "/api/v1/me/points/entries"): SHOPPERS,
    ("POST", "/api/v1/me/points/check-in"): SHOPPERS,
    ("POST", "/api/v1/admin/points/adjustments"): PLATFORM,
    ("GET", "/api/v1/admin/points/liability"): MERCHANT,
    # the points catalogue (ADR 0029)
    ("GET", "/api/v1/me/points/catalogue"): SHOPPERS,
    ("POST", "/api/v1/me/points/catalogue/<int:item_id>/redeem"): SHOPPERS,
    ("GET", "/api/v1/admin/points/catalogue"): MERCHANT,
    ("POST", "/api/v1/admin/points/catalogue"): MERCHANT,
    ("PATCH", "/api/v1/admin/points/catalogue/<int:item_id>"): MERCHANT,
    # member levels (ADR 0030): platform-wide, brand admins read the table
    ("GET", "/api/v1/me/level"): SHOPPERS,
    ("GET", "/api/v1/admin/members/levels"): MERCHANT,
    ("PUT", "/api/v1/admin/members/levels"): PLATFORM,
    ("POST", "/api/v1/admin/members/levels/dry-run"): PLATFORM,
    ("POST", "/api/v1/admin/members/levels/apply"): PLATFORM,
    ("POST", "/api/v1/admin/staff"): MERCHANT,
    ("POST", "/api/v1/admin/brands"): PLATFORM,
    ("GET", "/api/v1/admin/brands"): PLATFORM,
    ("PATCH", "/api/v1/admin/brands/<int:brand_id>"): PLATFORM,
    ("POST", "/api/v1/admin/categories"): PLATFORM,
    ("PATCH", "/api/v1/admin/categories/<int:category_id>"): PLATFORM,
    ("GET", "/api/v1/admin/brands/<int:brand_id>/products"): MERCHANT,
    ("POST", "/api/v1/admin/products"): MERCHANT,
    ("GET", "/api/v1/admin/products/<int:product_id>"): MERCHANT,
    ("PATCH", "/api/v1/admin/products/<int:product_id>"): MERCHANT,
    ("POST", "/api/v1/admin/products/<int:product_id>/publish"): MERCHANT,
    ("POST", "/api/v1/admin/products/<int:product_id>/archive"): MERCHANT,
    ("POST", "/api/v1/admin/products/<int:product_id>/skus"): MERCHANT,
    ("PATCH", "/api/v1/admin/skus/<int:sku_id>"): MERCHANT,
    ("POST", "/api/v1/admin/skus/<int:sku_id>/stock"): MERCHANT,
    ("POST", "/api/v1/admin/bundles"): MERCHANT,
    ("POST", "/api/v1/admin/bundles/<int:bundle_id>/publish"): MERCHANT,
    ("POST", "/api/v1/admin/bundles/<int:bundle_id>/archive"): MERCHANT,
    # cart, checkout, orders
    ("GET", "/api/v1/cart"): SHOPPERS,
    ("DELETE", "/api/v1/cart"): SHOPPERS,
    ("POST", "/api/v1/cart/lines"): SHOPPERS,
    ("POST", "/api/v1/cart/bundles"): SHOPPERS,
    ("PATCH", "/api/v1/cart/lines/<int:line_id>"): SHOPPERS,
    ("DELETE", "/api/v1/cart/lines/<int:line_id>"): SHOPPERS,
    ("POST", "/api/v1/checkout/quote"): SHOPPERS,
    ("PUT", "/api/v1/admin/brands/<int:brand_id>/shipping"): MERCHANT,
    ("POST", "/api/v1/orders"): SHOPPERS,
    ("GET", "/api/v1/orders"): SHOPPERS,
    ("GET", "/api/v1/orders/<int:order_id>"): SHOPPERS,
    ("GET", "/api/v1/orders/<int:order_id>/events"): SHOPPERS,
    ("POST", "/api/v1/orders/<int:order_id>/cancel"): SHOPPERS,
    ("POST", "/api/v1/orders/<int:order_id>/pay"): SHOPPERS,
    ("POST", "/api/v1/sub-orders/<int:sub_order_id>/confirm-receipt"): SHOPPERS,
    ("POST", "/api/v1/sub-orders/<int:sub_order_id>/after-sales"): SHOPPERS,
    ("GET", "/api/v1/admin/brands/<int:brand_id>/sub-orders"): MERCHANT,
    ("GET", "/api/v1/admin/sub-orders/<int:sub_order_id>"): MERCHANT,
    ("POST", "/api/v1/admin/sub-orders/<int:sub_order_id>/ship"): MERCHANT,
    ("POST", "/api/v1/admin/sub-orders/<int:sub_order_id>/deliver"): MERCHANT,
    ("GET", "/api/v1/admin/brands/<int:brand_id>/after-sales"): MERCHANT,
    ("POST", "/api/v1/admin/after-sales/<int:after_sale_id>/approve"): MERCHANT,
    ("POST", "/api/v1/admin/after-sales/<int:after_sale_id>/reject"): MERCHANT,
    ("GET", "/api/v1/admin/payment-anomalies"): PLATFORM,
    ("GET", "/api/v1/admin/unassigned-refunds"): PLATFORM,
    ("POST", "/api/v1/admin/unassigned-refunds/<int:unassigned_refund_id>/assign"): PLATFORM,
    # notifications
    ("POST", "/api/v1/notifications/subscriptions"): SHOPPERS,
    ("GET", "/api/v1/admin/notifications"): PLATFORM,
    ("GET", "/api/v1/admin/journeys"): PLATFORM,
    ("POST", "/api/v1/admin/journeys"): PLATFORM,
    # coupons
    ("POST", "/api/v1/admin/coupon-templates"): MERCHANT,
    ("GET", "/api/v1/admin/coupon-templates"): MERCHANT,
    ("POST", "/api/v1/admin/coupon-templates/<int:template_id>/status"): MERCHANT,
    ("POST", "/api/v1/admin/coupon-templates/<int:template_id>/bulk-grants"): MERCHANT,
    ("GET", "/api/v1/admin/coupon-bulk-grants/<int:bulk_id>"): MERCHANT,
    ("POST", "/api/v1/coupons/<int:template_id>/claim"): SHOPPERS,
    ("POST", "/api/v1/coupon-templates/<int:template_id>/grants"): frozenset(
        {HOST, GUIDE, BRAND_ADMIN, PLATFORM_ADMIN}
    ),
    ("GET", "/api/v1/me/coupons"): SHOPPERS,
    # flash sales
    ("POST", "/api/v1/admin/flash-sales"): MERCHANT,
    ("POST", "/api/v1/flash-sales/<int:sale_id>/items/<int:item_id>/purchase"): SHOPPERS,
    ("POST", "/api/v1/flash-sales/<int:sale_id>/items/<int:item_id>/quote"): SHOPPERS,
    ("POST", "/api/v1/flash-sales/<int:sale_id>/remind-me"): SHOPPERS,
    ("POST", "/api/v1/admin/flash-sales/<int:sale_id>/reconcile"): MERCHANT,
    # group-buy
    ("POST", "/api/v1/admin/group-campaigns"): MERCHANT,
    ("POST", "/api/v1/group-campaigns/<int:campaign_id>/groups"): SHOPPERS,
    ("POST", "/api/v1/groups/<int:group_id>/join"): SHOPPERS,
    ("POST", "/api/v1/group-campaigns/<int:campaign_id>/quote"): SHOPPERS,
    ("POST", "/api/v1/groups/<int:group_id>/quote"): SHOPPERS,
    ("POST", "/api/v1/groups/<int:group_id>/leave"): SHOPPERS,
    # live rooms
    ("POST", "/api/v1/admin/live/rooms"): MERCHANT,
    ("GET", "/api/v1/admin/live/rooms"): HOSTS,
    ("GET", "/api/v1/admin/live/rooms/<int:room_id>"): MERCHANT,
    ("PATCH", "/api/v1/admin/live/rooms/<int:room_id>"): MERCHANT,
    ("POST", "/api/v1/admin/live/rooms/<int:room_id>/cancel"): MERCHANT,
    ("POST", "/api/v1/admin/live/rooms/<int:room_id>/lineup"): MERCHANT,
    ("PATCH", "/api/v1/admin/live/rooms/<int:room_id>/lineup/<int:item_id>"): MERCHANT,
    ("DELETE", "/api/v1/admin/live/rooms/<int:room_id>/lineup/<int:item_id>"): MERCHANT,
    ("POST", "/api/v1/live/rooms/<int:room_id>/start"): HOSTS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/end"): HOSTS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/pin"): HOSTS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/pin/next"): HOSTS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/unpin"): HOSTS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/links"): HOSTS,
    ("GET", "/api/v1/live/rooms/<int:room_id>/links"): HOSTS,
    ("POST", "/api/v1/live/links/share"): SHOPPERS,
    ("POST", "/api/v1/live/links/open"): SHOPPERS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/visits"): SHOPPERS,
    ("GET", "/api/v1/admin/live/settings"): MERCHANT,
    ("PUT", "/api/v1/admin/live/settings"): MERCHANT,
    ("GET", "/api/v1/live/rooms/<int:room_id>/numbers"): HOSTS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/lucky-bags"): HOSTS,
    ("POST", "/api/v1/live/lucky-bags/<int:bag_id>/draw"): HOSTS,
    ("POST", "/api/v1/live/lucky-bags/<int:bag_id>/cancel"): HOSTS,
    ("POST", "/api/v1/live/lucky-bags/<int:bag_id>/enter"): SHOPPERS,
    ("GET", "/api/v1/live/lucky-bags/<int:bag_id>/prize"): SHOPPERS,
    ("POST", "/api/v1/live/lucky-bags/<int:bag_id>/claim"): SHOPPERS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/deals"): HOSTS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/coupons"): HOSTS,
    ("POST", "/api/v1/live/rooms/<int:room_id>/coupons/<int:template_id>/claim"): SHOPPERS,
    # guides
    ("POST", "/api/v1/admin/guides/stores"): MERCHANT,
    ("POST", "/api/v1/admin/guides"): MERCHANT,
    ("POST", "/api/v1/admin/guides/<int:guide_id>/activate"): MERCHANT,
    ("POST", "/api/v1/admin/guides/<int:guide_id>/suspend"): MERCHANT,
    ("POST", "/api/v1/admin/guides/<int:guide_id>/remove"): MERCHANT,
    ("POST", "/api/v1/admin/guides/<int:guide_id>/hand-over"): MERCHANT,
    ("POST", "/api/v1/admin/guides/binding-rule"): MERCHANT,
    ("GET", "/api/v1/admin/guides/customers/<int:shopper_id>/why"): MERCHANT,
    ("GET", "/api/v1/guide/customers/<int:shopper_id>/why"): GUIDES,
    ("POST", "/api/v1/guide/links"): GUIDES,
    ("GET", "/api/v1/guide/links"): GUIDES,
    ("POST", "/api/v1/guide/links/open"): SHOPPERS,
    ("POST", "/api/v1/admin/guides/rate-cards"): MERCHANT,
    ("GET", "/api/v1/admin/guides/rate-cards"): MERCHANT,
    ("POST", "/api/v1/admin/guides/rate-cards/<int:card_id>/close"): MERCHANT,
    ("GET", "/api/v1/admin/guides/commission"): MERCHANT,
    ("GET", "/api/v1/admin/guides/commission/why"): MERCHANT,
    ("GET", "/api/v1/guide/commission"): GUIDES,
    ("GET", "/api/v1/guide/commission/balance"): GUIDES,
    ("GET", "/api/v1/guide/commission/why"): GUIDES,
    ("POST", "/api/v1/guide/payouts"): GUIDES,
    ("GET", "/api/v1/guide/payouts"): GUIDES,
    ("POST", "/api/v1/guide/payouts/<int:payout_id>/cancel"): GUIDES,
    ("GET", "/api/v1/admin/guides/payout-terms"): MERCHANT,
    ("PUT", "/api/v1/admin/guides/payout-terms"): MERCHANT,
    ("PUT", "/api/v1/admin/guides/<int:guide_id>/payout-account"): MERCHANT,
    ("GET", "/api/v1/admin/guides/payouts"): MERCHANT,
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/approve"): MERCHANT,
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/reject"): MERCHANT,
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/cancel"): MERCHANT,
    ("POST", "/api/v1/admin/guides/payouts/process"): MERCHANT,
    ("GET", "/api/v1/admin/guides/payouts/export.csv"): MERCHANT,
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/mark-paid"): MERCHANT,
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/mark-failed"): MERCHANT,
    ("GET", "/api/v1/admin/guides/payouts/reconciliation"): MERCHANT,
    ("GET", "/api/v1/guide/visits"): GUIDES,
    ("GET", "/api/v1/guide/customers"): GUIDES,
    ("GET", "/api/v1/guide/orders"): GUIDES,
    ("GET", "/api/v1/guide/summary"): GUIDES,
    ("GET", "/api/v1/admin/guides"): MERCHANT,
    ("GET", "/api/v1/admin/guides/binding-rule"): MERCHANT,
    ("GET", "/api/v1/admin/guides/report"): MERCHANT,
    ("GET", "/api/v1/admin/guides/commission/hold-settings"): MERCHANT,
    ("PUT", "/api/v1/admin/guides/commission/hold-settings"): MERCHANT,
    ("POST", "/api/v1/admin/guides/<int:guide_id>/coupons"): MERCHANT,
    ("GET", "/api/v1/admin/guides/<int:guide_id>/coupons"): MERCHANT,
    ("GET", "/api/v1/admin/guides/commission/holds"): MERCHANT,
    ("POST", "/api/v1/admin/guides/commission/holds/release"): MERCHANT,
    ("POST", "/api/v1/admin/guides/commission/holds/void"): MERCHANT,
    ("GET", "/api/v1/guide/commission/holds"): GUIDES,
    # members
    ("GET", "/api/v1/admin/members/tags"): MERCHANT,
    ("POST", "/api/v1/admin/members/tags"): MERCHANT,
    ("PATCH", "/api/v1/admin/members/tags/<int:tag_id>"): MERCHANT,
    ("DELETE", "/api/v1/admin/members/tags/<int:tag_id>"): MERCHANT,
    ("POST", "/api/v1/admin/members/tags/<int:tag_id>/assign"): MERCHANT,
    ("POST", "/api/v1/admin/members/tags/<int:tag_id>/unassign"): MERCHANT,
    ("POST", "/api/v1/admin/members/tags/<int:tag_id>/assign-segment"): MERCHANT,
    ("GET", "/api/v1/admin/members/segments"): MERCHANT,
    ("POST", "/api/v1/admin/members/segments"): MERCHANT,
    ("POST", "/api/v1/admin/members/segments/count"): MERCHANT,
    ("GET", "/api/v1/admin/members/segments/<int:segment_id>"): MERCHANT,
    ("PATCH", "/api/v1/admin/members/segments/<int:segment_id>"): MERCHANT,
    ("DELETE", "/api/v1/admin/members/segments/<int:segment_id>"): MERCHANT,
    ("GET", "/api/v1/admin/members/segments/<int:segment_id>/count"): MERCHANT,
    ("GET", "/api/v1/admin/members/segments/<int:segment_id>/members"): MERCHANT,
    ("GET", "/api/v1/admin/members/rfm/grid"): MERCHANT,
    ("GET", "/api/v1/admin/members/rfm/heatmap"): MERCHANT,
    ("GET", "/api/v1/admin/members/scopes"): MERCHANT,
    ("GET", "/api/v1/admin/members/rfm/movements"): MERCHANT,
    ("GET", "/api/v1/admin/members/lifecycle"): MERCHANT,
    ("GET", "/api/v1/admin/members/cross-brand"): MERCHANT,
    ("POST", "/api/v1/admin/members/runs"): PLATFORM,
    ("GET", "/api/v1/admin/audit-log"): MERCHANT,
}

# Routes anyone may call without a token.
PUBLIC: set[tuple[str, str]] = {
    ("POST", "/api/v1/auth/wechat"),
    ("POST", "/api/v1/auth/password"),
    ("POST", "/api/v1/auth/dev"),
    ("POST", "/api/v1/auth/refresh"),  # authenticated by the refresh token in its body instead
    ("GET", "/api/v1/brands"),
    ("GET", "/api/v1/brands/<int:brand_id>"),
    ("GET", "/api/v1/categories"),
    ("GET", "/api/v1/products"),
    ("GET", "/api/v1/products/<int:product_id>"),
    ("GET", "/api/v1/bundles"),
    ("GET", "/api/v1/bundles/<int:bundle_id>"),
    ("POST", "/api/v1/payments/stripe/webhook"),  # authenticated by the Stripe-Signature instead
    ("GET", "/api/v1/coupon-templates"),
    ("GET", "/api/v1/flash-sales"),
    ("GET", "/api/v1/flash-sales/<int:sale_id>"),
    ("GET", "/api/v1/groups/<int:group_id>"),
    ("GET", "/api/v1/live/rooms/<int:room_id>"),
    ("GET", "/api/v1/live/rooms/<int:room_id>/replay"),
    ("GET", "/api/v1/live/links/qr.png"),  # needs a valid link token instead
    ("GET", "/api/v1/guide/links/qr.png"),  # needs a valid guide link token instead
    ("GET", "/api/v1/live/rooms/<int:room_id>/lucky-bags"),
    ("GET", "/api/v1/live/lucky-bags/<int:bag_id>"),
    ("GET", "/healthz"),
    ("GET", "/livez"),
    ("GET", "/metrics"),  # its own METRICS_TOKEN instead (404 without one): tests/api/test_observability.py
    ("GET", "/api/openapi.json"),
    ("GET", "/api/docs"),
    ("GET", "/api/docs/swagger-ui/<name>"),
    ("GET", "/api/docs/static/<path:filename>"),
    ("GET", "/static/<path:filename>"),
    ("GET", "/console/live"),  # the page signs in itself and calls the API with the token
    ("GET", "/console/guide"),  # likewise
    ("GET", "/console/members"),  # likewise
    ("GET", "/console/static/<path:filename>"),
}

ROUTE_IDS = [f"{m} {r}" for m, r in PROTECTED]
WRONG_ROLES = [((m, r), role) for (m, r), allowed in PROTECTED.items() for role in ROLES if role not in allowed]
RIGHT_ROLES = [((m, r), role) for (m, r), allowed in PROTECTED.items() for role in ROLES if role in allowed]


def url(rule: str) -> str:
    """A concrete URL for a rule: every path parameter becomes 1 (auth is checked before lookups)."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "x.css" if m.group(1) == "filename" else "1", rule)


def call(client, method: str, rule: str, headers=None):
    return client.open(url(rule), method=method, headers=headers or {})


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def app_routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}


@pytest.fixture
def brand_ids(client, login) -> list[int]:
    admin = login(PLATFORM_ADMIN, name="root")
    ids = []
    for slug in ("brand-a", "brand-b"):
        resp = client.post("/api/v1/admin/brands", json={"slug": slug, "name": slug.upper()}, headers=admin)
        assert resp.status_code == 201, resp.get_json()
        ids.append(resp.get_json()["id"])
    return ids


@pytest.fixture
def as_role(login, brand_ids):
    """Headers for a user of `role` (brand-scoped roles act for the first brand)."""

    def headers(role: str) -> dict:
        return login(role, name=f"boundary-{role}", brand_id=brand_ids[0] if role in (GUIDE, BRAND_ADMIN) else None)

    return headers


# ---- the table covers the app ------------------------------------------------------------------


def test_every_route_is_in_the_table(app):
    routes = app_routes(app)

    assert not set(PROTECTED) & PUBLIC
    missing = routes - set(PROTECTED) - PUBLIC
    assert not missing, f"routes without a role-boundary entry (add them to PROTECTED or PUBLIC): {sorted(missing)}"
    assert set(PROTECTED) | PUBLIC == routes, (
        f"entries for routes that no longer exist: {(set(PROTECTED) | PUBLIC) - routes}"
    )


@pytest.mark.parametrize(("method", "rule"), sorted(PUBLIC))
def test_public_routes_need_no_token(client, method, rule):
    resp = call(client, method, rule)

    assert resp.status_code != 401, resp.get_json()
    assert resp.status_code != 403, resp.get_json()


# ---- every protected route ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "rule"), list(PROTECTED), ids=ROUTE_IDS)
def test_no_token_is_401(client, method, rule):
    resp = call(client, method, rule)

    body = assert_problem(resp, 401, "auth.token_missing")
    assert body["instance"] == url(rule)
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="mall"'


@pytest.mark.parametrize(("method", "rule"), list(PROTECTED), ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "authorization",
    ["Bearer garbage", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "Token abc"],
    ids=["garbage", "bad-signature", "wrong-scheme"],
)
def test_a_garbage_token_is_401(client, method, rule, authorization):
    resp = call(client, method, rule, headers={"Authorization": authorization})

    if authorization.startswith("Token"):
        assert_problem(resp, 401, "auth.token_missing")
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="mall"'
    else:
        assert_problem(resp, 401, "auth.token_invalid")
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="mall", error="invalid_token"'


@pytest.mark.parametrize(("method", "rule"), list(PROTECTED), ids=ROUTE_IDS)
def test_an_expired_token_is_401(client, as_role, method, rule):
    role = sorted(PROTECTED[(method, rule)])[0]
    headers = as_role(role)
    clock.advance(timedelta(days=8))

    resp = call(client, method, rule, headers=headers)

    assert_problem(resp, 401, "auth.token_expired")
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


@pytest.mark.parametrize(("route", "role"), WRONG_ROLES, ids=[f"{m} {r} as {role}" for (m, r), role in WRONG_ROLES])
def test_a_wrong_role_is_403(client, as_role, route, role):
    resp = call(client, *route, headers=as_role(role))

    body = assert_problem(resp, 403, "auth.role_forbidden")
    assert all(r in body["detail"] for r in PROTECTED[route])


@pytest.mark.parametrize(("route", "role"), RIGHT_ROLES, ids=[f"{m} {r} as {role}" for (m, r), role in RIGHT_ROLES])
def test_an_allowed_role_gets_past_the_role_check(client, as_role, route, role):
    """The table is not stricter than the app: allowed roles reach the route (it may still say 404 or 422)."""
    resp = call(client, *route, headers=as_role(role))

    assert resp.status_code not in (401, 500), resp.get_data(as_text=True)
    assert b"auth.role_forbidden" not in resp.data


# ---- brand scoping ---------------------------------------------------------------------------------


@pytest.fixture
def brand_a_catalog(client, login, brand_ids) -> dict:
    """Brand A's draft product with one SKU, and a bundle of it, made by brand A's admin."""
    root = login(PLATFORM_ADMIN, name="root")
    category = client.post("/api/v1/admin/categories", json={"name": "Tea"}, headers=root).get_json()
    admin_a = login(BRAND_ADMIN, name="admin-a", brand_id=brand_ids[0])
    product = client.post(
        "/api/v1/admin/products",
        json={
            "category_id": category["id"],
            "title": "Longjing",
            "skus": [{"specs": {"weight": "100g"}, "price": 9900, "stock": 10}],
        },
        headers=admin_a,
    )
    assert product.status_code == 201, product.get_json()
    product = product.get_json()
    sku_id = product["skus"][0]["id"]
    bundle = client.post(
        "/api/v1/admin/bundles",
        json={"title": "Tea for two", "price": 18000, "items": [{"sku_id": sku_id, "quantity": 2}]},
        headers=admin_a,
    )
    assert bundle.status_code == 201, bundle.get_json()
    return {
        "brand_a": brand_ids[0],
        "brand_b": brand_ids[1],
        "category": category["id"],
        "product": product["id"],
        "sku": sku_id,
        "bundle": bundle.get_json()["id"],
        "admin_a": admin_a,
    }


def _other_brand_requests(c: dict) -> list[tuple[str, str, dict | None]]:
    product, sku, bundle = c["product"], c["sku"], c["bundle"]
    new_product = {"brand_id": c["brand_a"], "category_id": c["category"], "title": "Fake"}
    new_bundle = {"brand_id": c["brand_a"], "title": "Fake", "price": 1, "items": [{"sku_id": sku, "quantity": 2}]}
    return [
        ("GET", f"/api/v1/admin/brands/{c['brand_a']}/products", None),
        ("GET", f"/api/v1/admin/products/{product}", None),
        ("POST", "/api/v1/admin/products", new_product),
        ("PATCH", f"/api/v1/admin/products/{product}", {"title": "Hijacked"}),
        ("POST", f"/api/v1/admin/products/{product}/publish", None),
        ("POST", f"/api/v1/admin/products/{product}/archive", None),
        ("POST", f"/api/v1/admin/products/{product}/skus", {"specs": {"weight": "1kg"}, "price": 1}),
        ("PATCH", f"/api/v1/admin/skus/{sku}", {"price": 1}),
        ("POST", f"/api/v1/admin/skus/{sku}/stock", {"delta": -10}),
        ("POST", "/api/v1/admin/bundles", new_bundle),
        ("POST", f"/api/v1/admin/bundles/{bundle}/publish", None),
        ("POST", f"/api/v1/admin/bundles/{bundle}/archive", None),
    ]


OTHER_BRAND_IDS = [
    "list-products",
    "get-product",
    "create-product",
    "update-product",
    "publish-product",
    "archive-product",
    "add-sku",
    "update-sku",
    "adjust-stock",
    "create-bundle",
    "publish-bundle",
    "archive-bundle",
]


def _catalog_state(app, c: dict) -> dict:
    with app.app_context():
        product = db.session.get(Product, c["product"])
        sku = db.session.get(Sku, c["sku"])
        return {
            "product": (product.title, product.status, product.updated_at),
            "sku": (sku.price, sku.stock, sku.status),
            "skus": db.session.scalar(sa.select(sa.func.count()).select_from(Sku)),
            "products": db.session.scalar(sa.select(sa.func.count()).select_from(Product)),
            "bundles": db.session.execute(sa.select(Bundle.id, Bundle.status).order_by(Bundle.id)).all(),
        }


@pytest.mark.parametrize("index", range(len(OTHER_BRAND_IDS)), ids=OTHER_BRAND_IDS)
def test_a_brand_admin_cannot_touch_another_brands_catalog(client, app, login, brand_a_catalog, index):
    method, path, body = _other_brand_requests(brand_a_catalog)[index]
    admin_b = login(BRAND_ADMIN, name="admin-b", brand_id=brand_a_catalog["brand_b"])
    before = _catalog_state(app, brand_a_catalog)

    resp = client.open(path, method=method, json=body, headers=admin_b)

    assert_problem(resp, 403, "catalog.other_brand")
    assert _catalog_state(app, brand_a_catalog) == before


@pytest.mark.parametrize("index", range(len(OTHER_BRAND_IDS)), ids=OTHER_BRAND_IDS)
def test_the_brands_own_admin_may_do_the_same(client, brand_a_catalog, index):
    """The control for the test above: the same requests by brand A's admin are not refused."""
    method, path, body = _other_brand_requests(brand_a_catalog)[index]

    resp = client.open(path, method=method, json=body, headers=brand_a_catalog["admin_a"])

    assert resp.status_code in (200, 201), resp.get_json()


def test_a_brand_admin_cannot_create_staff_for_another_brand(client, app, login, brand_ids):
    admin_b = login(BRAND_ADMIN, name="admin-b", brand_id=brand_ids[1])

    resp = client.post(
        "/api/v1/admin/staff",
        json={
            "role": GUIDE,
            "name": "g",
            "email": "g@example.com",
            "password": "long-enough-1",
            "brand_id": brand_ids[0],
        },
        headers=admin_b,
    )

    assert_problem(resp, 403, "staff.forbidden")


# ---- another shopper's addresses ------------------------------------------------------------------

ADDRESS = {
    "recipient": "Amy",
    "phone": "13800138000",
    "province": "Zhejiang",
    "city": "Hangzhou",
    "detail": "1 West Lake Rd",
}


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("PATCH", {"recipient": "Mallory", "detail": "elsewhere"}), ("DELETE", None)],
)
def test_another_shoppers_address_is_404_and_unchanged(client, app, login, method, body):
    amy, mallory = login(SHOPPER, name="amy"), login(SHOPPER, name="mallory")
    created = client.post("/api/v1/me/addresses", json=ADDRESS, headers=amy)
    assert created.status_code == 201
    address_id = created.get_json()["id"]

    resp = client.open(f"/api/v1/me/addresses/{address_id}", method=method, json=body, headers=mallory)

    body = assert_problem(resp, 404, "address.not_found")
    assert "Amy" not in resp.get_data(as_text=True)
    assert client.get(f"/api/v1/me/addresses/{address_id}", headers=amy).get_json() == created.get_json()
    assert client.get("/api/v1/me/addresses", headers=mallory).get_json() == []
    with app.app_context():
        assert db.session.get(Address, address_id).recipient == "Amy"


def test_a_missing_address_and_another_shoppers_look_the_same(client, login):
    amy, mallory = login(SHOPPER, name="amy"), login(SHOPPER, name="mallory")
    address_id = client.post("/api/v1/me/addresses", json=ADDRESS, headers=amy).get_json()["id"]

    theirs = client.get(f"/api/v1/me/addresses/{address_id}", headers=mallory)
    missing = client.get(f"/api/v1/me/addresses/{address_id + 1000}", headers=mallory)

    assert (theirs.status_code, theirs.get_json()["code"]) == (missing.status_code, missing.get_json()["code"])
