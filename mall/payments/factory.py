"""Build the configured gateway (the domain picks by settings; only stripe_gateway imports the SDK)."""

from __future__ import annotations

from mall.config import Settings
from mall.payments.gateway import OfflineGateway, PaymentGateway


def gateway_for(settings: Settings) -> PaymentGateway:
    if settings.payment_gateway == "stripe":
        return _stripe(settings)
    return OfflineGateway()


def stripe_for(settings: Settings):
    """The Stripe client wrapper whatever gateway takes payments (guide payouts transfer with it, ADR 0023), or
    None when no Stripe key is configured."""
    return _stripe(settings) if settings.stripe_api_key else None


def _stripe(settings: Settings):
    from mall.payments.stripe_gateway import StripeGateway

    return StripeGateway(
        api_key=settings.stripe_api_key, webhook_secret=settings.stripe_webhook_secret,
        payment_method_types=list(settings.stripe_payment_method_types), api_base=settings.stripe_api_base or None,
    )  # fmt: skip
