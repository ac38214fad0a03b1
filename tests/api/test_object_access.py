"""Object-level authorisation, generated from the URL map: every route with an id in its path, called by an owner
B of the role the route lets in on owner A's object, is a 403 or a 404 and changes nothing.

A is the demo data (mall/demo.py: its brands, shoppers, host, guides, rooms, orders, points...); B is a fresh user
of each role allowed in (tests/api/test_role_boundaries.py's table) who owns nothing of it: a new shopper, a new
host, a brand admin and a guide of a new brand. A route with an id in its path must be in OWNED (whose object the
id names) or in NOT_OWNED (why anyone of the role may name any id): a new route in neither fails
`test_every_route_with_an_id_is_classified` until someone says which.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase

from api.extensions import db
from mall import clock
from mall.db import Base
from tests.api.test_after_sale import ask, paid_line
from tests.api.test_role_boundaries import PLATFORM_ADMIN, PROTECTED
from tests.coupon_helpers import Coupons
from tests.fuzz_helpers import seed
from tests.live_helpers import Live
from tests.lucky_bag_helpers import Bags
from tests.payout_helpers import Payouts
from tests.shop_helpers import Shop

# Routes whose path ids name owner A's objects: B must be refused (403/404) and nothing may change.
OWNED: set[tuple[str, str]] = {
    ("POST", "/api/v1/admin/after-sales/<int:after_sale_id>/approve"),
    ("POST", "/api/v1/admin/after-sales/<int:after_sale_id>/reject"),
    ("GET", "/api/v1/admin/brands/<int:brand_id>/after-sales"),
    ("GET", "/api/v1/admin/brands/<int:brand_id>/products"),
    ("PUT", "/api/v1/admin/brands/<int:brand_id>/shipping"),
    ("GET", "/api/v1/admin/brands/<int:brand_id>/sub-orders"),
    ("POST", "/api/v1/admin/bundles/<int:bundle_id>/archive"),
    ("POST", "/api/v1/admin/bundles/<int:bundle_id>/publish"),
    ("GET", "/api/v1/admin/coupon-bulk-grants/<int:bulk_id>"),
    ("POST", "/api/v1/admin/coupon-templates/<int:template_id>/bulk-grants"),
    ("POST", "/api/v1/admin/coupon-templates/<int:template_id>/status"),
    ("POST", "/api/v1/admin/flash-sales/<int:sale_id>/reconcile"),
    ("POST", "/api/v1/admin/guides/<int:guide_id>/activate"),
    ("GET", "/api/v1/admin/guides/<int:guide_id>/coupons"),
    ("POST", "/api/v1/admin/guides/<int:guide_id>/coupons"),
    ("POST", "/api/v1/admin/guides/<int:guide_id>/hand-over"),
    ("PUT", "/api/v1/admin/guides/<int:guide_id>/payout-account"),
    ("POST", "/api/v1/admin/guides/<int:guide_id>/remove"),
    ("POST", "/api/v1/admin/guides/<int:guide_id>/suspend"),
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/approve"),
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/cancel"),
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/mark-failed"),
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/mark-paid"),
    ("POST", "/api/v1/admin/guides/payouts/<int:payout_id>/reject"),
    ("POST", "/api/v1/admin/guides/rate-cards/<int:card_id>/close"),
    ("GET", "/api/v1/admin/live/rooms/<int:room_id>"),
    ("PATCH", "/api/v1/admin/live/rooms/<int:room_id>"),
    ("POST", "/api/v1/admin/live/rooms/<int:room_id>/cancel"),
    ("POST", "/api/v1/admin/live/rooms/<int:room_id>/lineup"),
    ("DELETE", "/api/v1/admin/live/rooms/<int:room_id>/lineup/<int:item_id>"),
    ("PATCH", "/api/v1/admin/live/rooms/<int:room_id>/lineup/<int:item_id>"),
    ("DELETE", "/api/v1/admin/members/segments/<int:segment_id>"),
    ("GET", "/api/v1/admin/members/segments/<int:segment_id>"),
    ("PATCH", "/api/v1/admin/members/segments/<int:segment_id>"),
    ("GET", "/api/v1/admin/members/segments/<int:segment_id>/count"),
    ("GET", "/api/v1/admin/members/segments/<int:segment_id>/members"),
    ("DELETE", "/api/v1/admin/members/tags/<int:tag_id>"),
    ("PATCH", "/api/v1/admin/members/tags/<int:tag_id>"),
    ("POST", "/api/v1/admin/members/tags/<int:tag_id>/assign"),
    ("POST", "/api/v1/admin/members/tags/<int:tag_id>/assign-segment"),
    ("POST", "/api/v1/admin/members/tags/<int:tag_id>/unassign"),
    ("PATCH", "/api/v1/admin/points/catalogue/<int:item_id>"),
    ("GET", "/api/v1/admin/products/<int:product_id>"),
    ("PATCH", "/api/v1/admin/products/<int:product_id>"),
    ("POST", "/api/v1/admin/products/<int:product_id>/archive"),
    ("POST", "/api/v1/admin/products/<int:product_id>/publish"),
    ("POST", "/api/v1/admin/products/<int:product_id>/skus"),
    ("PATCH", "/api/v1/admin/skus/<int:sku_id>"),
    ("POST", "/api/v1/admin/skus/<int:sku_id>/stock"),
    ("GET", "/api/v1/admin/sub-orders/<int:sub_order_id>"),
    ("POST", "/api/v1/admin/sub-orders/<int:sub_order_id>/deliver"),
    ("POST", "/api/v1/admin/sub-orders/<int:sub_order_id>/ship"),
    ("DELETE", "/api/v1/cart/lines/<int:line_id>"),
    ("PATCH", "/api/v1/cart/lines/<int:line_id>"),
    ("POST", "/api/v1/coupon-templates/<int:template_id>/grants"),
    ("POST", "/api/v1/groups/<int:group_id>/leave"),
    ("GET", "/api/v1/guide/customers/<int:shopper_id>/why"),
    ("POST", "/api/v1/guide/payouts/<int:payout_id>/cancel"),
    ("POST", "/api/v1/live/lucky-bags/<int:bag_id>/cancel"),
    ("POST", "/api/v1/live/lucky-bags/<int:bag_id>/claim"),
    ("POST", "/api/v1/live/lucky-bags/<int:bag_id>/draw"),
    ("GET", "/api/v1/live/lucky-bags/<int:bag_id>/prize"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/coupons"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/deals"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/end"),
    ("GET", "/api/v1/live/rooms/<int:room_id>/links"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/links"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/lucky-bags"),
    ("GET", "/api/v1/live/rooms/<int:room_id>/numbers"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/pin"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/pin/next"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/start"),
    ("POST", "/api/v1/live/rooms/<int:room_id>/unpin"),
    ("DELETE", "/api/v1/me/addresses/<int:address_id>"),
    ("GET", "/api/v1/me/addresses/<int:address_id>"),
    ("PATCH", "/api/v1/me/addresses/<int:address_id>"),
    ("GET", "/api/v1/orders/<int:order_id>"),
    ("POST", "/api/v1/orders/<int:order_id>/cancel"),
    ("GET", "/api/v1/orders/<int:order_id>/events"),
    ("POST", "/api/v1/orders/<int:order_id>/pay"),
    ("POST", "/api/v1/sub-orders/<int:sub_order_id>/after-sales"),
    ("POST", "/api/v1/sub-orders/<int:sub_order_id>/confirm-receipt"),
    ("POST", "/api/v1/admin/users/<int:user_id>/disable"),
    ("POST", "/api/v1/admin/users/<int:user_id>/enable"),
}


# Routes with an id in the path whose object anyone the role table lets in may name, and why.
PUBLIC_READ = "public: anyone reads it"
PLATFORM_ONLY = "platform admins only: there is no other owner"
OWN_BRAND_VIEW = "answers from the caller's own brand only (another brand's customer: an empty list)"
OFFER = "a shopper takes up an offer open to every shopper (its own rules decide who may)"
NOT_OWNED: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/admin/guides/customers/<int:shopper_id>/why"): OWN_BRAND_VIEW,
    ("GET", "/api/v1/brands/<int:brand_id>"): PUBLIC_READ,
    ("GET", "/api/v1/bundles/<int:bundle_id>"): PUBLIC_READ,
    ("GET", "/api/v1/flash-sales/<int:sale_id>"): PUBLIC_READ,
    ("GET", "/api/v1/groups/<int:group_id>"): PUBLIC_READ,
    ("GET", "/api/v1/live/lucky-bags/<int:bag_id>"): PUBLIC_READ,
    ("GET", "/api/v1/live/rooms/<int:room_id>"): PUBLIC_READ,
    ("GET", "/api/v1/live/rooms/<int:room_id>/lucky-bags"): PUBLIC_READ,
    ("GET", "/api/v1/live/rooms/<int:room_id>/replay"): PUBLIC_READ,
    ("GET", "/api/v1/products/<int:product_id>"): PUBLIC_READ,
    ("PATCH", "/api/v1/admin/brands/<int:brand_id>"): PLATFORM_ONLY,
    ("PATCH", "/api/v1/admin/categories/<int:category_id>"): PLATFORM_ONLY,
    ("POST", "/api/v1/admin/unassigned-refunds/<int:unassigned_refund_id>/assign"): PLATFORM_ONLY,
    ("POST", "/api/v1/coupons/<int:template_id>/claim"): OFFER,
    ("POST", "/api/v1/flash-sales/<int:sale_id>/items/<int:item_id>/purchase"): OFFER,
    ("POST", "/api/v1/flash-sales/<int:sale_id>/items/<int:item_id>/quote"): OFFER,
    ("POST", "/api/v1/flash-sales/<int:sale_id>/remind-me"): OFFER,
    ("POST", "/api/v1/group-campaigns/<int:campaign_id>/groups"): OFFER,
    ("POST", "/api/v1/group-campaigns/<int:campaign_id>/quote"): OFFER,
    ("POST", "/api/v1/groups/<int:group_id>/join"): OFFER,
    ("POST", "/api/v1/groups/<int:group_id>/quote"): OFFER,
    ("POST", "/api/v1/live/lucky-bags/<int:bag_id>/enter"): OFFER,
    ("POST", "/api/v1/live/rooms/<int:room_id>/visits"): OFFER,
    ("POST", "/api/v1/live/rooms/<int:room_id>/coupons/<int:template_id>/claim"): OFFER,
    ("POST", "/api/v1/me/points/catalogue/<int:item_id>/redeem"): OFFER,
}

# What each path parameter names.
PARAM_TABLES = {
    "address_id": "addresses", "after_sale_id": "after_sales", "bag_id": "live_lucky_bags", "brand_id": "brands",
    "bulk_id": "coupon_bulk_grants", "bundle_id": "bundles", "campaign_id": "group_campaigns",
    "card_id": "guide_rate_cards", "category_id": "categories", "group_id": "groups", "guide_id": "guides",
    "line_id": "cart_lines", "order_id": "orders", "payout_id": "guide_payouts", "product_id": "products",
    "room_id": "live_rooms", "sale_id": "flash_sales", "segment_id": "member_segments", "shopper_id": "users",
    "sku_id": "skus", "sub_order_id": "sub_orders", "tag_id": "member_tags", "template_id": "coupon_templates",
    "unassigned_refund_id": "unassigned_refunds",
    "user_id": "users",
}  # fmt: skip
ITEM_TABLES = {"/admin/live/rooms/": "live_lineup_items", "/flash-sales/": "flash_items",
               "/points/catalogue/": "points_catalogue_items"}  # fmt: skip


def id_routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if "<int:" in rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_with_an_id_is_classified(app):
    routes = id_routes(app)

    missing = routes - set(OWNED) - set(NOT_OWNED)
    assert not missing, f"routes with an id in the path that say nothing of whose object it is: {sorted(missing)}"
    assert not set(OWNED) & set(NOT_OWNED)
    assert set(OWNED) | set(NOT_OWNED) <= routes, (set(OWNED) | set(NOT_OWNED)) - routes


# ---- the sweep ---------------------------------------------------------------------------------------------

B_ROLES = ("shopper", "host", "guide", "brand_admin")
# Tables a refused request may still write to: none.
PATH = re.compile(r"<int:(\w+)>")


def _table(param: str, rule: str) -> str:
    if param == "item_id":
        return next(table for part, table in ITEM_TABLES.items() if part in rule)
    return PARAM_TABLES[param]


def _a_ids(rule: str) -> dict[str, int]:
    """An object of A's for each path parameter (a lineup item of the room named, a shopper a guide has)."""
    room, item = db.session.execute(sa.text("SELECT room_id, id FROM live_lineup_items ORDER BY id")).first()
    sku = db.session.scalar(sa.text("SELECT id FROM skus ORDER BY id"))
    ids = {"room_id": room, "item_id": item, "lineup_item": item, "sku": sku}
    for param in PATH.findall(rule):
        if param in ("room_id", "item_id") and "/rooms/" in rule:
            continue
        table = _table(param, rule)
        query = {"shopper_id": "SELECT shopper_id FROM guide_bindings ORDER BY id",  # a shopper a guide has
                 "user_id": "SELECT id FROM users WHERE role = 'host' ORDER BY id",  # a brand's staff member
                 }.get(param, f"SELECT id FROM {table} ORDER BY id")  # fmt: skip
        ids[param] = db.session.scalar(sa.text(query))
        assert ids[param] is not None, f"the demo data has no {table} row for {rule}: seed one"
    return ids


def _digest() -> dict[str, str]:
    found = {}
    for table in Base.metadata.sorted_tables:
        rows = db.session.execute(sa.select(table)).all()
        found[table.name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    return found


# Bodies for the routes that check their body before whose object it is (the smallest valid one would be refused
# for its values first): {lineup_item} and {sku} stand for A's.
BODIES = {
    ("POST", "/api/v1/live/rooms/<int:room_id>/deals"): {"item_id": "{lineup_item}", "flash_price": 100, "quota": 1,
                                                         "countdown_seconds": 30, "duration_minutes": 10},
    ("POST", "/api/v1/live/rooms/<int:room_id>/links"): {"item_id": "{lineup_item}"},
    ("POST", "/api/v1/admin/coupon-templates/<int:template_id>/bulk-grants"): {"min_level": 1},
    ("POST", "/api/v1/live/rooms/<int:room_id>/pin"): {"item_id": "{lineup_item}"},
    ("POST", "/api/v1/live/rooms/<int:room_id>/lucky-bags"): {
        "title": "bag", "winner_count": 1, "prize_type": "gift", "gift_sku_id": "{sku}",
        "opens_at": "2030-01-01T00:00:00Z", "closes_at": "2030-01-01T00:05:00Z"},
}  # fmt: skip


def _body(schema, method: str, rule: str, ids: dict):
    if (method, rule) in BODIES:
        return {k: ids[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v
                for k, v in BODIES[(method, rule)].items()}  # fmt: skip
    return _minimal_body(schema, method, rule)


def _minimal_body(schema, method: str, rule: str):
    """The smallest body the document accepts for the operation (None when it takes none)."""
    operation = schema[PATH.sub(r"{\1}", rule)][method]
    if not operation.body:
        return None
    settings = hypothesis.settings(database=None, derandomize=True, max_examples=50, deadline=None,
                                   phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))  # fmt: skip
    case = hypothesis.find(operation.as_strategy(), lambda c: True, settings=settings)
    return case.body


def _seed_more(app, client, login) -> None:
    """A's objects the demo data has none of: a cart line, a lucky bag, a guide's payout, a bulk grant, an open
    after-sale request, a flash sale and a group."""
    shop = Shop(app, client, login)
    brand = shop.brand()
    owner = shop.shopper("owner-a")
    shop.add(owner, shop.sku(brand, price=1000))
    buyer, _, sub_id, line_id = paid_line(shop)
    assert ask(client, buyer, sub_id, line_id, 1).status_code == 201
    now = clock.now()
    window = {"starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(days=3)).isoformat()}
    flash = {"name": "sweep", **window, "items": [{"sku_id": shop.sku(brand, price=5000, stock=10), "flash_price": 3900,
                                                   "quota": 3, "per_shopper_limit": 1}]}  # fmt: skip
    assert client.post("/api/v1/admin/flash-sales", json=flash, headers=shop.merchant(brand)).status_code == 201
    group = {"sku_id": shop.sku(brand, price=9900, stock=10), "name": "sweep", "group_price": 5900, "group_size": 3,
             **window}  # fmt: skip
    camp = client.post("/api/v1/admin/group-campaigns", json=group, headers=shop.merchant(brand)).get_json()
    leader = shop.shopper("group-leader-a")
    opened = client.post(f"/api/v1/group-campaigns/{camp['id']}/groups", json={"address_id": shop.address(leader)},
                         headers={**leader, "Idempotency-Key": "sweep-group"})  # fmt: skip
    assert opened.status_code == 201, opened.get_json()
    bags = Bags(Live(shop))
    show = bags.show()
    bags.create(show["host"], show["room"]["id"], prize_type="gift", gift_sku_id=show["gift_sku"])
    payouts = Payouts(shop)
    payouts.fund(5000)
    payouts.asked(1000)
    coupons = Coupons(shop)
    started = client.post(f"/api/v1/admin/coupon-templates/{coupons.template()}/bulk-grants", json={"min_level": 3},
                          headers=coupons.platform())  # fmt: skip
    assert started.status_code == 202, started.get_json()


def _b_headers(client, login, role: str) -> dict:
    root = login(PLATFORM_ADMIN, name="sweep-root")
    brand = client.post("/api/v1/admin/brands", json={"slug": "brand-b", "name": "B"}, headers=root).get_json()["id"]
    return login(role, name=f"owner-b-{role}", brand_id=brand if role in ("guide", "brand_admin") else None)


@pytest.mark.parametrize("role", B_ROLES)
def test_no_one_reaches_anothers_objects(app, client, login, role):
    seed(app, client)
    _seed_more(app, client, login)
    b = _b_headers(client, login, role)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    routes = sorted(route for route in OWNED if role in PROTECTED[route])
    wrong = []
    for method, rule in routes:
        with app.app_context():
            ids = _a_ids(rule)
            before = _digest()
        path = PATH.sub(lambda m, ids=ids: str(ids[m.group(1)]), rule)
        body = _body(schema, method, rule, ids)
        resp = client.open(path, method=method, json=body, headers={**b, "Idempotency-Key": f"sweep-{method}-{path}"})
        with app.app_context():
            changed = [name for name, digest in _digest().items() if before[name] != digest]
            db.session.remove()
        if resp.status_code not in (403, 404) or changed:
            wrong.append(f"{method} {path} {body!r}: {resp.status_code} {resp.get_data(as_text=True)[:300]} "
                         f"changed {changed}")  # fmt: skip
    assert routes
    assert wrong == [], "\n".join(wrong)
