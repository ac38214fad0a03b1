"""Demo data for `make run`: three brands, a category tree, 36 products, a bundle, a user per role, a live room
with paid orders through its cart link, guides with their sales, and members with histories across the brands:
points earned, two nightly RFM runs (the members console shows a grid and who moved) and saved segments;
a shopper with points and a coupon offered for points; member levels with their benefits and shoppers at each level.

Development and test only: the demo platform admin's password is printed in the README, so a production
configuration refuses to load any of it (before anything is written)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.attribution import ORGANIC
from mall.cart import services as cart
from mall.catalog import bundles, services, taxonomy
from mall.catalog.models import Brand, Product
from mall.checkout.services import set_shipping_policy
from mall.config import ConfigError
from mall.guides import rates
from mall.guides import services as guides
from mall.guides.models import GuideLink
from mall.identity import services as identity
from mall.identity.models import User
from mall.identity.roles import Actor, Role
from mall.live import attribution as live_attribution
from mall.live import links, pinning, rooms
from mall.live.models import LiveLink
from mall.members import catalogue, grants, levels, nightly, rfm, segments
from mall.members.models import RfmScore
from mall.notifications import journeys
from mall.orders import services as orders
from mall.orders import settlement
from mall.orders.models import Order
from mall.orders.policy import OrderPolicy
from mall.payments import services as payments
from mall.payments.gateway import OfflineGateway
from mall.promotions.coupons import services as coupons

DEMO_ADMIN_EMAIL = "admin@demo.mall"
DEMO_ADMIN_PASSWORD = "demo-password-123"
DEMO_HOST_EMAIL = "host@demo.mall"  # demo-host signs in to the host console with the same password
DEMO_GUIDE_EMAIL = "guide@demo.mall"  # demo-guide-lin signs in to the guide workbench with the same password
# Members who bought across the brands over the last months: (name, days ago of each order, oldest first); order
# k of member i is of brand (i + k) % 3. The first nightly run was RUN_BEFORE ago, the second now: who bought since
# moved (or is new).
MEMBER_HISTORIES = [
    ("Zhou Xin", (160, 120, 75, 40, 9)), ("Wu Hao", (150, 95, 30, 3)), ("Xu Lan", (140, 60)), ("Sun Yue", (130,)),
    ("Ma Jun", (110, 80, 50, 20, 6, 1)), ("Zhu Ting", (100, 45)), ("Hu Bo", (90,)), ("Guo Mei", (70, 35, 12)),
    ("He Qian", (55, 25, 4)), ("Lin Feng", (48,)), ("Luo Yi", (33, 18)), ("Gao Rui", (28, 10, 2)),
    ("Liang Hua", (22,)), ("Song Jia", (11,)), ("Tang Bin", (6,)), ("Han Xue", (3, 1)),
]  # fmt: skip
RUN_BEFORE = timedelta(days=14)
WELCOME_POINTS = 500  # a brand's welcome-back grant to its drifting members (liability funded by the brand)
# The first brand's guide shoppers: (name, days ago they opened a guide's product link and paid, units, guide index)
GUIDE_SALES = [("Wang Fang", 26, 1, 0), ("Li Na", 21, 2, 0), ("Zhang Wei", 17, 1, 1), ("Liu Yang", 12, 1, 0),
               ("Chen Jing", 8, 3, 0), ("Yang Min", 5, 1, 1), ("Zhao Lei", 2, 2, 0), ("Huang Li", 0, 1, 0)]  # fmt: skip

BRANDS = [
    ("lumiere", "Lumière Beauty", "Beauty", ["Skincare", "Makeup"], ["Serum", "Cream", "Lipstick", "Cushion"]),
    ("peak", "Peak Outdoor", "Outdoor", ["Jackets", "Shoes"], ["Shell Jacket", "Down Vest", "Trail Shoe", "Hiker"]),
    ("chashe", "Chashe 茶舍", "Food", ["Tea", "Snacks"], ["Longjing", "Pu'er", "Oolong", "Almond Crisp"]),
]
TIERS = ["traffic", "hero", "profit", "identity"]
SPECS = {
    "Beauty": [{"volume": "30ml"}, {"volume": "50ml"}],
    "Outdoor": [{"colour": c, "size": s} for c in ("black", "olive") for s in ("M", "L")],
    "Food": [{"weight": "100g"}, {"weight": "250g"}],
}

TOKEN_HELP = [
    "Demo users (development only): get a token with",
    '  curl -s -X POST localhost:8000/api/v1/auth/dev -H "Content-Type: application/json" \\',
    '       -d \'{"role": "shopper", "name": "demo-shopper"}\'',
    '  roles: shopper, host, guide and brand_admin (add "brand_id": 1), platform_admin;',
    f"  or log in as the platform admin: POST /api/v1/auth/password {DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD}",
    "  a live room is on air: viewers GET /api/v1/live/rooms/<id>; its host (demo-host) lists it at GET /api/v1/admin/live/rooms",
    f"  host console: http://localhost:8000/console/live, signed in as {DEMO_HOST_EMAIL} / {DEMO_ADMIN_PASSWORD}",
    "  demo-shopper holds 5000 points: a quote takes `points` (100 = 1 yuan, up to half the items), and",
    "  GET /api/v1/me/points/catalogue offers a 10-yuan coupon for 1000 points (POST .../<id>/redeem)",
    "  guide workbench: http://localhost:8000/console/guide, signed in with a token of demo-guide (role guide,",
    f'  "brand_id": 1) or as {DEMO_GUIDE_EMAIL} / {DEMO_ADMIN_PASSWORD}; both have customers and paid orders',
    f"  members console: http://localhost:8000/console/members, signed in as {DEMO_ADMIN_EMAIL} (every brand) or",
    '  with a token of demo-brand-admin (role brand_admin, "brand_id": 1); two RFM runs, points and segments',
    "  member levels: GET /api/v1/admin/members/levels; shoppers demo-silver and demo-gold (dev tokens) paid their",
    "  way to Silver and Gold: GET /api/v1/me/level shows their growth, next level and benefits",
]
# The level table (ADR 0030): growth in fen of paid spend net of refunds this calendar year. Gold opens the
# identity products (min_member_level 2). Each level's birthday coupon is made by `_load_levels`.
LEVELS = [
    {"level": 1, "name": "Silver 银卡", "threshold": 30000, "discount_bp": 200, "multiplier_bp": 12_000,
     "free_shipping_above": 5900},
    {"level": 2, "name": "Gold 金卡", "threshold": 100000, "discount_bp": 500, "multiplier_bp": 15_000,
     "free_shipping_above": 0},
    {"level": 3, "name": "Black 黑金", "threshold": 300000, "discount_bp": 800, "multiplier_bp": 20_000,
     "free_shipping_above": 0},
]  # fmt: skip
LEVEL_SHOPPERS = [("demo-silver", 3), ("demo-gold", 9)]  # (name, units of the first brand's dearest product)


DEMO_SIGNING = "demo-only-signing-key"  # the demo's own link tokens; the app's secret is not known here


def load(session: Session, *, env: str) -> bool:
    """Create the demo data unless it is already there. Returns whether anything was created.
    Raises ConfigError, having written nothing, unless `env` is development or test."""
    if env not in ("development", "test"):
        raise ConfigError(f"demo data is for development only and is never loaded with MALL_ENV={env}")
    if session.scalar(sa.select(Brand.id).filter_by(slug=BRANDS[0][0])) is not None:
        return False
    admin = identity.bootstrap_platform_admin(
        session, email=DEMO_ADMIN_EMAIL, name="demo-platform-admin", password=DEMO_ADMIN_PASSWORD
    )
    actor = Actor(user_id=admin.id, role=Role.PLATFORM_ADMIN)
    for index, brand_spec in enumerate(BRANDS):
        _load_brand(session, actor, index, *brand_spec)
    journeys.seed(session)
    _load_levels(session, actor)
    _load_users(session, actor)
    _load_live_room(session, actor)
    _load_guides(session, actor)
    _load_members(session, actor)
    _load_points(session, actor)
    return True


def _load_brand(session, actor, index, slug, name, root_name, children, products):
    brand = taxonomy.create_brand(
        session,
        actor=actor,
        slug=slug,
        name=name,
        story=f"{name} sells in the mall since 2026.",
        logo_url=f"https://img.demo.mall/brands/{slug}.png",
    )
    root = taxonomy.create_category(session, actor=actor, name=f"{root_name} ({name})", position=index)
    categories = [taxonomy.create_category(session, actor=actor, name=c, parent_id=root.id) for c in children]
    made = []
    for n in range(12):
        made.append(_load_product(session, actor, brand, categories[n % 2], root_name, products[n % 4], n))
    skus = [made[0].skus[0], made[1].skus[0]]
    bundle = bundles.create_bundle(
        session,
        actor=actor,
        brand_id=brand.id,
        title=f"{name} starter set",
        price=skus[0].price + skus[1].price - 1000,
        items=[{"sku_id": s.id, "quantity": 1} for s in skus],
    )
    bundles.set_bundle_status(session, actor=actor, bundle_id=bundle.id, status="active")
    set_shipping_policy(session, actor=actor, brand_id=brand.id, fee=1000, free_above=9900)  # ¥10, free from ¥99


def _load_product(session, actor, brand, category, root_name, noun, n):
    tier = TIERS[n % 4]
    base = 1990 + 1000 * n
    product = services.create_product(
        session,
        actor=actor,
        brand_id=brand.id,
        currency="CNY",
        category_id=category.id,
        title=f"{brand.name} {noun} No.{n + 1}",
        subtitle=f"{tier} pick",
        tier=tier,
        min_member_level=2 if tier == "identity" else None,
        description=f"The {noun.lower()} our shoppers ask for.",
        selling_points=["Genuine", "Fast shipping"],
        images=[f"https://img.demo.mall/{brand.slug}/{n + 1}.jpg"],
        skus=[
            {"specs": spec, "price": base + 500 * i, "list_price": base + 500 * i + 1000, "stock": 50 if n != 5 else 0}
            for i, spec in enumerate(SPECS[root_name])
        ],
    )
    services.set_product_status(session, actor=actor, product_id=product.id, status="active")
    return product


def _load_users(session: Session, actor: Actor) -> None:
    first_brand = session.scalar(sa.select(Brand.id).order_by(Brand.id).limit(1))
    identity.create_staff(session, actor=actor, role=Role.HOST, name="demo-host", email=DEMO_HOST_EMAIL,
                          password=DEMO_ADMIN_PASSWORD, brand_id=None)  # fmt: skip
    for role, name, brand_id in [
        (Role.SHOPPER, "demo-shopper", None),
        (Role.HOST, "demo-host", None),
        (Role.GUIDE, "demo-guide", first_brand),
        (Role.BRAND_ADMIN, "demo-brand-admin", first_brand),
    ]:
        identity.dev_login(session, role=role, name=name, brand_id=brand_id)


def _load_levels(session: Session, actor: Actor) -> None:
    """The level table with a birthday coupon per level, and shoppers who paid their way up (upgraded at payment)."""
    table = []
    for spec in LEVELS:
        template = coupons.create_template(session, actor=actor, brand_id=None, name=f"{spec['name']} birthday gift",
                                           value_type="fixed", amount=500 * spec["level"], currency="CNY",
                                           valid_days=30, auto_grant=levels.BIRTHDAY_GRANT)  # fmt: skip
        table.append({**spec, "birthday_template_id": template.id})
    levels.replace(session, table)
    brand_id = session.scalar(sa.select(Brand.id).order_by(Brand.id).limit(1))
    dearest = session.scalar(sa.select(Product).filter_by(brand_id=brand_id, min_member_level=None)
                             .order_by(Product.price_min.desc()).limit(1))  # fmt: skip
    for name, units in LEVEL_SHOPPERS:
        shopper = identity.dev_login(session, role=Role.SHOPPER, name=name, brand_id=None)
        line = cart.add_line(session, user_id=shopper.id, sku_id=dearest.skus[0].id, quantity=units, source=ORGANIC)
        paid_order(session, shopper_id=shopper.id, line_ids=[line])


def _load_live_room(session: Session, actor: Actor) -> None:
    """The first brand's show, on air, hosted by demo-host with its first product pinned; the lineup holds an
    out-of-stock product (No.6) that "pin next" passes over."""
    brand = session.get(Brand, session.scalar(sa.select(Brand.id).order_by(Brand.id).limit(1)))
    host = session.scalar(sa.select(User).filter_by(role=Role.HOST, display_name="demo-host"))
    products = session.scalars(sa.select(Product).filter_by(brand_id=brand.id).order_by(Product.id).limit(6)).all()
    now = clock.now()
    room = rooms.create_room(
        session, actor=actor, brand_id=brand.id, title=f"{brand.name} spring live", host_user_id=host.id,
        scheduled_start=now, scheduled_end=now + timedelta(hours=2), stream_ref="https://live.demo.mall/1.m3u8",
        cover_url=f"https://img.demo.mall/{brand.slug}/live.jpg",
        lineup=[{"product_id": p.id, "live_price": p.price_min * 8 // 10, "live_quota": 20} for p in products],
    )  # fmt: skip
    on_air = Actor(user_id=host.id, role=Role.HOST)
    pinning.start(session, actor=on_air, room_id=room.id)
    pinning.pin(session, actor=on_air, room_id=room.id, product_id=products[0].id)
    link = links.create_link(session, actor=on_air, room_id=room.id, product_id=products[0].id,
                             sku_id=products[0].skus[0].id, expires_in=30 * 24 * 3600)  # fmt: skip
    # Three viewers bought through the link while it was pinned: the host's numbers have sales to show. (The
    # token is signed with a secret of the demo's own: opening checks it against the same one.)
    token = links.token(link, secret=DEMO_SIGNING)
    for n, quantity in enumerate((1, 2, 1), start=1):
        viewer = identity.dev_login(session, role=Role.SHOPPER, name=f"demo-viewer-{n}", brand_id=None)
        live_attribution.record_visit(session, user_id=viewer.id, room_id=room.id)  # watching when they tapped
        opened = links.open_link(session, actor=Actor(viewer.id, Role.SHOPPER), link_token=token,
                                 secret=DEMO_SIGNING, quantity=quantity)  # fmt: skip
        paid_order(session, shopper_id=viewer.id, line_ids=[opened.line_id])


def paid_order(session: Session, *, shopper_id: int, line_ids: list[int], address_id: int | None = None) -> Order:
    """A demo shopper's order of these cart lines, shipped to `address_id` (else a demo address) and paid offline."""
    if address_id is None:
        address_id = identity.save_address(session, user_id=shopper_id, recipient="Demo 收货人", phone="13800000000",
                                           province="上海市", city="上海市", district="黄浦区",
                                           detail="南京东路 1 号").id  # fmt: skip
    order = orders.place_order(session, shopper_id=shopper_id, line_ids=line_ids, address_id=address_id,
                               policy=OrderPolicy())  # fmt: skip
    payments.pay(session, gateway=OfflineGateway(), shopper_id=shopper_id, order_id=order.id)
    return order


def live_link_help(session: Session, *, secret: str) -> list[str]:
    """How to open the demo room's cart link (its token is signed with this app's secret, so it is printed, not
    stored)."""
    link = session.scalar(sa.select(LiveLink).order_by(LiveLink.id).limit(1))
    if link is None:
        return []
    token = links.token(link, secret=secret)
    return [
        f"  its cart link (pinned product, expires {link.expires_at:%Y-%m-%d}): {links.path(token)}",
        f"    QR code: GET /api/v1/live/links/qr.png?t={token}",
        f'    a shopper opens it: POST /api/v1/live/links/open {{"token": "{token}"}}',
    ]


def _load_guides(session: Session, actor: Actor) -> None:
    """The first brand's store and two guides (demo-guide, and demo-guide-lin who signs in with a password), each
    with a storefront link (its QR code) and product links; shoppers who opened those links over the last weeks, were
    bound and paid (the clock moved back for each, so the workbench's chart has days to show)."""
    brand_id = session.scalar(sa.select(Brand.id).order_by(Brand.id).limit(1))
    store = guides.create_store(session, actor=actor, brand_id=brand_id, name="West Lake store")
    users = [session.scalar(sa.select(User).filter_by(role=Role.GUIDE, display_name="demo-guide")),
             identity.create_staff(session, actor=actor, role=Role.GUIDE, name="demo-guide-lin", email=DEMO_GUIDE_EMAIL,
                                   password=DEMO_ADMIN_PASSWORD, brand_id=brand_id)]  # fmt: skip
    products = session.scalars(sa.select(Product).filter_by(brand_id=brand_id, min_member_level=None)
                               .order_by(Product.id).limit(3)).all()  # fmt: skip
    links = []
    for user in users:
        guide = guides.invite(session, actor=actor, brand_id=brand_id, user_id=user.id, store_id=store.id)
        guides.move(session, actor=actor, guide_id=guide.id, action="activate")
        as_guide = Actor(user_id=user.id, role=Role.GUIDE, brand_id=brand_id)
        guides.create_link(session, actor=as_guide, target="storefront")
        guides.create_link(session, actor=as_guide, target="store", store_id=store.id)
        links.append([guides.create_link(session, actor=as_guide, target="product", product_id=p.id,
                                         sku_id=p.skus[0].id) for p in products])  # fmt: skip
    with _ago(timedelta(days=30)):  # the brand's rate card, in force before the first sale: 8% of what a line paid
        rates.create(session, actor=actor, brand_id=brand_id, scope="brand", basis_points=800)
    for n, (name, days_ago, units, which) in enumerate(GUIDE_SALES):
        _guide_sale(session, actor, name, links[which][n % len(products)], units, timedelta(days=days_ago, hours=n % 5))
    settlement.settle_due(session)  # the older sales' return windows have closed: their commission is available


def _guide_sale(session: Session, actor: Actor, name: str, link: GuideLink, units: int, ago: timedelta) -> None:
    """A shopper opens the link (a visit, a binding, the product in the cart), places the order and pays, `ago`;
    sales older than ten days were shipped and received the next day (their return window has closed since)."""
    shopper = identity.dev_login(session, role=Role.SHOPPER, name=name, brand_id=None)
    address = identity.save_address(session, user_id=shopper.id, recipient=name, phone=f"1390000{shopper.id:04d}",
                                    province="Zhejiang", city="Hangzhou", detail=f"{shopper.id} West Lake Road")  # fmt: skip
    as_shopper = Actor(user_id=shopper.id, role=Role.SHOPPER)
    with _ago(ago):
        token = guides.token(link, secret="demo")
        opened = guides.open_link(session, actor=as_shopper, link_token=token, secret="demo", quantity=units)
        order = paid_order(session, shopper_id=shopper.id, line_ids=[opened.line_id], address_id=address.id)
        if ago > timedelta(days=10):
            _received_next_day(session, actor, order)


@contextmanager
def _ago(delta: timedelta) -> Iterator[None]:
    """What happens inside happened `delta` ago (the clock moved back, and on again after)."""
    clock.advance(-delta)
    try:
        yield
    finally:
        clock.advance(delta)


def _received_next_day(session: Session, actor: Actor, order: Order) -> None:
    """The order's first sub-order shipped and received a day later (its return window starts then)."""
    with _ago(-timedelta(days=1)):
        sub, policy = order.sub_orders[0], OrderPolicy()
        orders.ship(session, actor=actor, sub_order_id=sub.id, carrier="SF", tracking_number=f"SF{order.id:08d}",
                    policy=policy)  # fmt: skip
        orders.confirm_receipt(session, shopper_id=order.user_id, sub_order_id=sub.id, policy=policy)


def _load_members(session: Session, actor: Actor) -> None:
    """Members with histories (MEMBER_HISTORIES) bought through the cart and paid, earning points; orders older
    than ten days received and, their return windows closed, settled (points available). The nightly members run
    RUN_BEFORE ago and again now, so the console has a grid and movements; a welcome-back grant and saved segments."""
    brands = list(session.scalars(sa.select(Brand.id).order_by(Brand.id)))
    skus = {brand_id: [p.skus[0].id for p in session.scalars(
        sa.select(Product).filter_by(brand_id=brand_id, min_member_level=None).order_by(Product.id.desc()).limit(3))]
        for brand_id in brands}  # the last products: stock the live room and the guides do not use  # fmt: skip
    for i, (name, days) in enumerate(MEMBER_HISTORIES):
        shopper = identity.dev_login(session, role=Role.SHOPPER, name=name, brand_id=None)
        for k, day in enumerate(days):
            brand_id = brands[(i + k) % len(brands)]
            with _ago(timedelta(days=day, hours=i % 7)):
                line = cart.add_line(session, user_id=shopper.id, sku_id=skus[brand_id][(i + k) % 3], quantity=1,
                                     source=ORGANIC)  # fmt: skip
                order = paid_order(session, shopper_id=shopper.id, line_ids=[line])
                if day > 10:
                    _received_next_day(session, actor, order)
    settlement.settle_due(session)
    with _ago(RUN_BEFORE):
        nightly.run(lambda: nullcontext(session), side_by_side=False)  # one session: the demo's transaction
    nightly.run(lambda: nullcontext(session), side_by_side=False)
    drifting = session.scalars(sa.select(RfmScore.user_id).where(
        RfmScore.run_id == rfm.latest_run_id(session), RfmScore.scope == brands[0],
        RfmScore.grp.in_(("at_risk", "cannot_lose", "hibernating")))).all()  # fmt: skip
    for user_id in drifting:
        grants.adjust(session, actor=actor, user_id=user_id, points=WELCOME_POINTS, reason="welcome back",
                      key=f"demo-welcome-{user_id}", brand_id=brands[0])  # fmt: skip
    segments.create(session, actor=actor, brand_id=None, name="Champions and loyal",
                    definition={"rfm_groups": ["champions", "loyal"]})  # fmt: skip
    segments.create(session, actor=actor, brand_id=brands[0], name="Drifting away",
                    definition={"rfm_groups": ["about_to_sleep", "at_risk", "cannot_lose", "hibernating"]})  # fmt: skip


def _load_points(session: Session, actor: Actor) -> None:
    """demo-shopper's points (two operator credits, so a redemption walks two lots oldest first) and a catalogue
    item: a platform coupon of 10 yuan off 100 for 1000 points, twice per member (ADR 0029)."""
    shopper_id = session.scalar(sa.select(User.id).filter_by(display_name="demo-shopper", role=Role.SHOPPER))
    for points, note in ((2000, "welcome to the demo"), (3000, "a birthday gift")):
        grants.adjust(session, actor=actor, user_id=shopper_id, points=points, reason=note, key=f"demo:{note}")
    template = coupons.create_template(session, actor=actor, brand_id=None, name="满100减10 (points)", currency="CNY",
                                       value_type="threshold", threshold=10000, amount=1000, valid_days=30,
                                       per_shopper_limit=5)  # fmt: skip
    catalogue.create_item(session, actor=actor, template_id=template.id, points_price=1000, per_member_limit=2,
                          stock=500)  # fmt: skip
