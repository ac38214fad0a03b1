"""`mall.demo.load`: a catalogue worth browsing and a user per role, loaded once."""

from __future__ import annotations

import sqlalchemy as sa

from api.tx import commit
from mall import demo
from mall.catalog import bundles, queries
from mall.catalog.models import Brand, Bundle, Category, Product, Sku
from mall.catalog.rules import Tier
from mall.db import Base
from mall.identity import services as identity
from mall.identity.models import User
from mall.identity.roles import Role


def _count(session, model) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def _all_counts(session) -> dict[str, int]:
    return {t.name: session.scalar(sa.select(sa.func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_demo_loads_a_browsable_catalogue(session):
    assert demo.load(session, env="test") is True
    commit()

    assert _count(session, Brand) >= 3
    products = session.scalars(sa.select(Product)).all()
    assert len(products) >= 30
    assert all(p.skus for p in products)
    assert all(p.status == "active" for p in products)
    assert {p.tier for p in products} == {t.value for t in Tier}
    assert all(p.min_member_level is not None for p in products if p.tier == Tier.IDENTITY)
    used = {p.category_id for p in products}
    assert len(used) >= 3 and used <= set(session.scalars(sa.select(Category.id)))
    assert len({p.brand_id for p in products}) >= 3
    assert all(p.price_min == min(s.price for s in p.skus) for p in products)

    demo_bundles = bundles.list_bundles(session)
    assert demo_bundles and all(bundles.available_quantity(b) > 0 for b in demo_bundles)


def test_demo_products_are_listed_to_shoppers(session):
    demo.load(session, env="test")
    commit()
    seen, cursor = [], None
    while True:
        page, cursor = queries.list_products(session, filters=queries.ListFilters(), cursor=cursor, limit=100)
        seen += page
        if cursor is None:
            break
    assert sorted(p["id"] for p in seen) == sorted(session.scalars(sa.select(Product.id)))
    assert any(p["in_stock"] for p in seen)


def test_demo_has_a_user_for_each_role(session):
    demo.load(session, env="test")
    commit()
    roles = set(session.scalars(sa.select(User.role)))
    assert roles == {r.value for r in Role}
    admin = identity.password_login(session, email=demo.DEMO_ADMIN_EMAIL, password=demo.DEMO_ADMIN_PASSWORD)
    assert admin.role == Role.PLATFORM_ADMIN
    scoped = session.scalars(sa.select(User).where(User.role.in_([Role.GUIDE, Role.BRAND_ADMIN]))).all()
    assert scoped and all(u.brand_id is not None for u in scoped)


def test_demo_has_a_live_room_on_air_with_a_lineup_and_its_host(session):
    from mall.live import queries
    from mall.live.models import LiveRoom

    demo.load(session, env="test")
    commit()
    room = session.scalars(sa.select(LiveRoom)).one()
    view = queries.room_view(session, room.id)[1]
    assert view["status"] == "live" and view["host"]["name"] == "demo-host"
    assert session.get(User, room.host_user_id).role == Role.HOST
    host = identity.password_login(session, email=demo.DEMO_HOST_EMAIL, password=demo.DEMO_ADMIN_PASSWORD)
    assert host.id == room.host_user_id  # the host console's sign-in
    assert len(view["lineup"]) == 6 and all(i["live_price"] < i["price"] for i in view["lineup"])
    assert view["pinned"]["item"]["product_id"] == view["lineup"][0]["product_id"]
    assert [i["remaining"] for i in view["lineup"]].count(0) == 1  # No.6 is out of stock

    # Viewers bought through its cart link: the host's numbers show the pinned segment's sales.
    from mall.identity.roles import Actor
    from mall.live import numbers

    figures = numbers.room_numbers(session, actor=Actor(host.id, Role.HOST), room_id=room.id)
    pinned = next(s for s in figures["segments"] if s["segment_id"] == view["pinned"]["segment_id"])
    assert (pinned["orders"], pinned["cart_adds"], figures["totals"]["viewers"]) == (3, 3, 3)
    assert pinned["paid_gmv"] == 4 * view["lineup"][0]["live_price"] == figures["totals"]["net_gmv"]


def test_demo_prints_a_cart_link_for_the_pinned_product_that_opens(session):
    from mall.identity.roles import Actor
    from mall.live import links
    from mall.live import queries as live_queries
    from mall.live.models import LiveRoom

    demo.load(session, env="test")
    commit()
    room = session.scalars(sa.select(LiveRoom)).one()
    printed = demo.live_link_help(session, secret="s" * 32)
    path = next(line for line in printed if "pages/live/link?t=" in line).split(": ", 1)[1]
    shopper = session.scalar(sa.select(User).filter_by(role=Role.SHOPPER))
    opened = links.open_link(session, actor=Actor(user_id=shopper.id, role=Role.SHOPPER),
                             link_token=path.split("?t=", 1)[1], secret="s" * 32, room_id=room.id)  # fmt: skip
    pinned = live_queries.room_view(session, room.id)[1]["pinned"]
    assert opened.link.product_id == pinned["item"]["product_id"]
    assert opened.source.refs["segment_id"] == pinned["segment_id"]


def test_loading_twice_adds_nothing(session):
    assert demo.load(session, env="test") is True
    commit()
    before = _all_counts(session)
    assert before["products"] and before["skus"] and before["bundles"] and before["users"]

    assert demo.load(session, env="test") is False
    commit()

    assert _all_counts(session) == before
    assert _count(session, Bundle) == before["bundles"] and _count(session, Sku) == before["skus"]


def _cli_app(settings, env: str):
    from api import create_app
    from mall.config import Settings

    return create_app(Settings.from_env({}, env=env, secret_key="p" * 40, database_url=settings.database_url,
                                        redis_url=settings.redis_url))  # fmt: skip


def test_production_refuses_the_demo_data_and_writes_nothing(app, settings):
    production = _cli_app(settings, "production")

    result = production.test_cli_runner().invoke(args=["mall", "demo"])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: demo data is for development only and is never loaded with MALL_ENV=production"
    ]
    with app.app_context():
        from api.extensions import db

        assert {name: n for name, n in _all_counts(db.session).items() if n} == {}


def test_development_loads_the_demo_data_with_the_documented_admin(app, settings, session):
    result = _cli_app(settings, "development").test_cli_runner().invoke(args=["mall", "demo"])

    assert result.exit_code == 0, result.output
    assert "demo data: loaded" in result.output and demo.DEMO_ADMIN_PASSWORD in result.output
    assert "pages/live/link?t=" in result.output  # the live room's cart link
    admin = identity.password_login(session, email=demo.DEMO_ADMIN_EMAIL, password=demo.DEMO_ADMIN_PASSWORD)
    assert admin.role == Role.PLATFORM_ADMIN


def test_a_demo_bundle_can_be_bought(app, client, login):
    from api.extensions import db
    from tests.shop_helpers import Shop

    with app.app_context():
        demo.load(db.session, env="test")
        commit()
        bundle = bundles.list_bundles(db.session)[0]
        bundle_id, price = bundle.id, bundle.price
    shop = Shop(app, client, login)
    me = shop.shopper()
    cart = client.post("/api/v1/cart/bundles", json={"bundle_id": bundle_id}, headers=me).get_json()
    (line,) = cart["lines"]
    assert (line["bundle_id"], line["unit_price"], line["problem"]) == (bundle_id, price, None)
    order = shop.place(me, [line["id"]], shop.address(me))
    assert order.status_code == 201, order.get_json()
    assert order.get_json()["items_total"] - order.get_json()["discount_total"] == price


def test_demo_guides_have_stores_links_bound_shoppers_and_paid_orders(session):
    from mall.guides import workbench
    from mall.guides.models import Binding, Guide, GuideLink, Store
    from mall.orders.models import Order, OrderLine

    demo.load(session, env="test")
    commit()
    guides = session.scalars(sa.select(Guide).order_by(Guide.id)).all()
    assert len(guides) == 2 and all(g.status == "active" and g.store_id for g in guides)
    assert {g.store_id for g in guides} <= set(session.scalars(sa.select(Store.id)))
    targets = set(session.execute(sa.select(GuideLink.guide_id, GuideLink.target)))
    assert targets == {(g.id, t) for g in guides for t in ("storefront", "store", "product")}
    bound = session.scalars(sa.select(Binding.shopper_id).where(Binding.ended_at.is_(None))).all()
    assert len(bound) == len(demo.GUIDE_SALES)
    guided = session.execute(sa.select(OrderLine.guide_id, Order.paid_at).join(Order)
                             .where(OrderLine.guide_id.is_not(None))).all()  # fmt: skip
    assert len(guided) == len(demo.GUIDE_SALES) and all(paid_at is not None for _, paid_at in guided)
    assert {g for g, _ in guided} == {g.id for g in guides}
    first = workbench.orders(session, guides[0], limit=100).items
    assert [o["paid_at"] for o in first] == sorted((o["paid_at"] for o in first), reverse=True)  # spread over days
    assert (first[0]["paid_at"] - first[-1]["paid_at"]).days >= 20
    lin = identity.password_login(session, email=demo.DEMO_GUIDE_EMAIL, password=demo.DEMO_ADMIN_PASSWORD)
    assert lin.role == Role.GUIDE and lin.id == guides[1].user_id


def test_demo_guides_have_commission_pending_and_available_and_a_month_to_chart(session):
    from mall import clock
    from mall.guides import ledger, workbench
    from mall.guides.models import Guide

    demo.load(session, env="test")
    commit()
    guide = session.scalars(sa.select(Guide).order_by(Guide.id)).first()
    balance = ledger.balance(session, guide.id, "CNY")
    assert balance.pending > 0 and balance.available > 0 and balance.on_hold == 0
    assert ledger.audit(session) == []
    summary = workbench.summary(session, guide, now=clock.now(), tz="Asia/Shanghai", days=30)
    assert summary["earnings"] == balance._asdict()
    assert len([d for d in summary["days"] if d["earned"]]) >= 4


def test_demo_members_have_points_two_rfm_runs_with_movement_and_saved_segments(session):
    from mall.identity.roles import Actor
    from mall.members import queries, reports
    from mall.members import segments as member_segments
    from mall.members.models import RfmRun, Segment

    demo.load(session, env="test")
    commit()
    runs = session.scalars(sa.select(RfmRun).order_by(RfmRun.id)).all()
    assert [r.status for r in runs] == ["done", "done"] and runs[1].as_of - runs[0].as_of >= demo.RUN_BEFORE
    first_brand = session.scalar(sa.select(Brand.id).order_by(Brand.id).limit(1))
    for scope in (0, first_brand):
        heat = reports.heatmap(session, scope=scope)
        assert heat["members"] >= 8 and len({c["group"] for c in heat["cells"] if c["members"]}) >= 4
        moved = reports.movements(session, scope=scope)["moves"]
        assert any(m["from"] for m in moved) and any(not m["from"] for m in moved)  # moved, and new since
    liability = queries.liability(session)
    assert liability["total"]["available"] > 0 and liability["total"]["pending"] > 0
    assert any(f["brand_id"] == first_brand and f["available"] >= demo.WELCOME_POINTS for f in liability["funders"])
    admin = session.scalar(sa.select(User).filter_by(role=Role.PLATFORM_ADMIN))
    for segment in session.scalars(sa.select(Segment)):
        got = member_segments.get(session, actor=Actor(admin.id, Role.PLATFORM_ADMIN), segment_id=segment.id)
        assert member_segments.count(session, segment=got) > 0, segment.name


def test_demo_shopper_can_pay_with_points_and_buy_a_coupon_with_them(session):
    from mall.members import catalogue, ledger

    demo.load(session, env="test")
    commit()
    shopper = session.scalar(sa.select(User.id).filter_by(display_name="demo-shopper", role=Role.SHOPPER))
    assert ledger.balance(session, shopper).available == 5000
    [offered] = catalogue.available(session, user_id=shopper)
    assert offered["item"].points_price == 1000 and offered["left_for_me"] == 2
    redemption, coupon = catalogue.redeem(session, user_id=shopper, item_id=offered["item"].id, key="demo-test")
    assert coupon.user_id == shopper and ledger.balance(session, shopper).available == 4000
    assert ledger.audit(session) == []


def test_demo_has_levels_and_shoppers_at_them(session):
    from mall.members import levels

    demo.load(session, env="test")
    commit()

    table = levels.table(session)
    assert [lv.level for lv in table] == [1, 2, 3] and all(lv.birthday_template_id for lv in table)
    by_name = dict(session.execute(sa.select(User.display_name, User.member_level).where(
        User.display_name.in_(["demo-shopper", "demo-silver", "demo-gold"]))).all())  # fmt: skip
    assert by_name == {"demo-shopper": 0, "demo-silver": 1, "demo-gold": 2}
    gold = session.scalar(sa.select(User.id).filter_by(display_name="demo-gold"))
    assert levels.progress(session, user_id=gold)["next"]["name"].startswith("Black")
