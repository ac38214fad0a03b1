"""The soak's shop, seeded through the domain services before gunicorn starts (as the benches seed theirs).

Four brands' products (bench/checkout.py's seeder), a flash sale live by the real clock, a live room with its
lineup pinned and one cart link per product, a guide with a commission rate and a storefront link, a claimable
coupon with a small total, and one shopper per client: an address, points to redeem, a WeChat account and
enough accepted 'paid' subscriptions for every order it can pay (the messages go to tests/fakes/wechat.py).
Bearer tokens are minted with the run's SECRET_KEY (production hides /auth/dev).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from bench import harness
from bench.checkout import Shopper, _Seeder

WECHAT_APP, WECHAT_SECRET, PAID_TEMPLATE = "wx-soak", "soak-app-secret", "TMPL-PAID-SOAK"
TOKEN_TTL = 6 * 3600
POINTS_EACH = 50_000  # points per shopper, in 5 lots
GRANTS_EACH = 400  # accepted 'paid' subscriptions per shopper: one per paid order
FLASH_QUOTA, FLASH_LIMIT = 20, 2  # fewer than the shoppers' limits add up to: it sells out, cancellations free units
COUPON_TOTAL, COUPON_LIMIT = 30, 3  # runs out too
LINEUP = 4


@dataclass
class Shop:
    shoppers: list[Shopper]
    skus: list[int]
    products: list[int]
    admin_token: str
    host_token: str
    room_id: int
    room_products: list[int]
    link_tokens: list[str]
    guide_link: str
    flash_sale_id: int
    flash_item_id: int
    coupon_template_id: int
    stock_baseline: dict[int, int] = field(default_factory=dict)

    @property
    def admin(self) -> dict:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def host(self) -> dict:
        return {"Authorization": f"Bearer {self.host_token}"}


def seed(database_url: str, redis_url: str, *, shoppers: int) -> Shop:
    import redis
    import sqlalchemy as sa

    from api.extensions import db
    from mall import clock, events
    from mall.catalog.models import Sku
    from mall.guides import rates
    from mall.guides import services as guides
    from mall.identity import services as identity
    from mall.identity import tokens
    from mall.identity.models import User, WeChatAccount
    from mall.identity.roles import Actor, Role
    from mall.live import links, pinning, rooms
    from mall.members import ledger
    from mall.notifications.models import SubscriptionGrant
    from mall.promotions.coupons import services as coupons
    from mall.promotions.flash_sale import services as flash
    from mall.promotions.flash_sale.admission import Gate

    with harness.app_engine(database_url, redis_url):
        s = db.session
        seeder = _Seeder(s, harness.SECRET_KEY)
        seeder.staff()
        platform = seeder.platform

        def commit():
            s.commit()
            events.discard(s)  # seeding queues nothing for the workers

        def token(user_id: int) -> str:
            return tokens.issue(s.get(User, user_id), secret=harness.SECRET_KEY, ttl_seconds=TOKEN_TTL)[0]

        products, skus = [], []
        for brand in range(4):
            product_id, ids = seeder.product(brand, skus=3, price=3900 + 1000 * brand)
            products.append(product_id)
            skus += ids
        room_products = [seeder.product(1, skus=1, price=12900 + 100 * n)[0] for n in range(LINEUP)]
        flash_product, flash_skus = seeder.product(0, skus=1, price=19900)
        commit()

        now = clock.now()
        people = []
        for n in range(shoppers):
            shopper = seeder.shopper(f"soak-{n}")
            s.add(WeChatAccount(user_id=shopper.user_id, app_id=WECHAT_APP, openid=f"openid-soak-{n}",
                                session_key="sk", last_login_at=now))  # fmt: skip
            s.execute(sa.insert(SubscriptionGrant.__table__),  # what GRANTS_EACH accepted requests record
                      [{"user_id": shopper.user_id, "template_key": "order.paid", "granted_at": now}] * GRANTS_EACH)  # fmt: skip
            for lot in range(5):
                ledger.grant(s, user_id=shopper.user_id, amount=POINTS_EACH // 5, kind="adjust",
                             key=f"soak:{shopper.user_id}:{lot}", now=now, expires_at=now + timedelta(days=60 + lot),
                             reason={"rule": "soak"})  # fmt: skip
            people.append(shopper)
            commit()

        brand_id, brand_admin = seeder.brands[0], seeder.admins[0]
        guide_user = identity.create_staff(s, actor=brand_admin, role=Role.GUIDE, name="Soak guide",
                                           email="guide@soak.invalid", password=secrets.token_hex(16),
                                           brand_id=brand_id)  # fmt: skip
        guide = guides.invite(s, actor=brand_admin, brand_id=brand_id, user_id=guide_user.id)
        guides.move(s, actor=brand_admin, guide_id=guide.id, action="activate")
        guide_link = guides.create_link(s, actor=Actor(guide_user.id, Role.GUIDE, brand_id), target="storefront")
        rates.create(s, actor=brand_admin, brand_id=brand_id, scope="brand", basis_points=500)

        template = coupons.create_template(s, actor=platform, brand_id=None, currency="CNY", valid_days=30,
                                           name="立减5", value_type="fixed", amount=500,
                                           total_quantity=COUPON_TOTAL, per_shopper_limit=COUPON_LIMIT)  # fmt: skip

        host = identity.dev_login(s, role=Role.HOST, name="Soak host", brand_id=None)
        room = rooms.create_room(s, actor=platform, brand_id=seeder.brands[1], title="Soak show 直播间",
                                 host_user_id=host.id, scheduled_start=now, scheduled_end=now + timedelta(hours=6),
                                 lineup=[{"product_id": p, "live_price": 9900} for p in room_products])  # fmt: skip
        commit()
        pinning.start(s, actor=platform, room_id=room.id)
        pinning.pin(s, actor=platform, room_id=room.id, product_id=room_products[0])
        made = [links.create_link(s, actor=platform, room_id=room.id, product_id=p) for p in room_products]
        sale = flash.schedule(s, actor=brand_admin, brand_id=brand_id, name="Soak 秒杀",
                              starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=6),
                              payment_minutes=15, items=[{"sku_id": flash_skus[0], "flash_price": 9900,
                                                          "quota": FLASH_QUOTA, "per_shopper_limit": FLASH_LIMIT}])  # fmt: skip
        item = sale.items[0]
        commit()
        gate = Gate(redis.Redis.from_url(redis_url))
        gate.load(item_id=item.id, remaining=item.quota, buyers={}, only_if_missing=True)
        gate.client.close()
        baseline = dict(s.execute(sa.select(Sku.id, Sku.stock)).all())
        shop = Shop(
            shoppers=people, skus=skus, products=products + room_products + [flash_product],
            admin_token=token(platform.user_id), host_token=token(host.id), room_id=room.id,
            room_products=room_products, link_tokens=[links.token(link, secret=harness.SECRET_KEY) for link in made],
            guide_link=guides.token(guide_link, secret=harness.SECRET_KEY), flash_sale_id=sale.id,
            flash_item_id=item.id, coupon_template_id=template.id, stock_baseline=baseline,
        )  # fmt: skip
        commit()
    return shop
