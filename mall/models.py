"""Imports every model module so the metadata (and Alembic autogenerate) sees all tables."""

from mall import audit, events  # noqa: F401
from mall.cart import models as cart_models  # noqa: F401
from mall.catalog import models as catalog_models  # noqa: F401
from mall.checkout import models as checkout_models  # noqa: F401
from mall.guides import hold_models, ledger_models, payout_models  # noqa: F401
from mall.guides import models as guide_models  # noqa: F401
from mall.identity import models as identity_models  # noqa: F401
from mall.live import lucky_bag_models  # noqa: F401
from mall.live import models as live_models  # noqa: F401
from mall.live import tracking as live_tracking  # noqa: F401
from mall.members import level_models, points_models  # noqa: F401
from mall.members import models as member_models  # noqa: F401
from mall.notifications import journeys, nudges  # noqa: F401
from mall.orders import after_sale  # noqa: F401
from mall.payments import models as payment_models  # noqa: F401
from mall.promotions.coupons import models as coupon_models  # noqa: F401
from mall.promotions.flash_sale import models as flash_sale_models  # noqa: F401
from mall.promotions.group_buy import models as group_buy_models  # noqa: F401
