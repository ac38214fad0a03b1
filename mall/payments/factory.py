"""Build the configured gateway (the domain picks by settings; only stripe_gateway imports the SDK)."""

from __future__ import annotations

from mall.config import Settings
from mall.payments.gateway import OfflineGateway, PaymentGateway


def gateway_for(settings: Settings) -> PaymentGateway:
    if settings.payment_gateway == "stripe":
        from mall.payments.stripe_gateway import StripeGateway

        return StripeGateway(
            api_key=settings.stripe_api_key, webhook_secret=settings.stripe_webhook_secret,
            payment_method_types=list(settings.stripe_payment_method_types), api_base=settings.stripe_api_base or None,
        )  # fmt: skip
    return OfflineGateway()
