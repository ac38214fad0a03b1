"""The composition root: the one place where the capabilities are plugged into each other.

Every entry point runs it before its first unit of work: the API (`api.create_app`), the RQ worker
(`workers.worker`), `rq cron` (`workers/cron.py`) and the `flask` commands (through the app). It starts
from empty registries and installs, from the settings:

- in-transaction reactions to domain events: the outbox messages (`mall.notifications.reactions`), coupon
  lock / use / release and the sign-up grant, group-buy on payment and cancellation, flash-sale units given
  back on cancellation, coupons returned on a full refund (only if COUPON_RETURN_ON_FULL_REFUND), the uses of
  guide-owned coupons noted at payment (commission holds, ADR 0024);
- points (ADR 0027): earned at payment, reversed per refunded part of a line (`refund_lines.written`), the
  sign-up grant, available when a settlement batch settles their sub-orders (`settlement.ON_SETTLED`), the
  `points_left` outbox guard of the expiry reminder;
- after-commit subscribers: the jobs a commit schedules (`workers.subscriptions`), batched per release;
- member levels (ADR 0030): growth and upgrades at payment, growth taken back per refunded part, the
  `member_price` provider (after live prices) and the level's benefits as shopper facts;
- members: the sign-up channel as first touch, tag and segment coupon audiences, the `in_segment` journey guard;
- pricing steps: live prices (and the live quota counted at placement, given back on cancellation), coupons
  (and the shopper fact that lets a quote skip them);
- outbox guards (`coupon_unused`, `group_forming`, besides the built-in ones) and hooks: the coupon expiry
  reminder at COUPON_EXPIRY_REMINDER_HOURS, the recovery coupon of abandoned-cart nudges;
- the bearer-token cache on this process's Redis (switched on here, nowhere else);
- live room announcements (`mall.live.announce`) published on this process's Redis.

`describe()` lists what is installed; `flask mall wiring` prints it. Until the root has run, recording an
event or pricing a quote raises `mall.wiring.NotWired` instead of silently skipping what is not plugged in.
"""

from __future__ import annotations

from mall import events, wiring
from mall.checkout import pricing
from mall.config import Settings
from mall.guides import binding, commission, holds, payouts
from mall.identity import tokens
from mall.live import announce
from mall.live import wiring as live
from mall.members import earning
from mall.members import levels_wiring as levels
from mall.members import points_wiring as points
from mall.members import wiring as members
from mall.notifications import guards, nudges, reactions
from mall.orders import settlement
from mall.payments import services as payment_services
from mall.promotions.coupons import services as coupon_services
from mall.promotions.coupons import wiring as coupons
from mall.promotions.flash_sale import wiring as flash_sales
from mall.promotions.group_buy import wiring as group_buy


def install(settings: Settings) -> None:
    from workers import flash, subscriptions

    events.reset()
    pricing.reset()
    subscriptions.register()
    reactions.install()
    flash_sales.install(flash.gate)
    group_buy.install()
    live.install()
    members.install()
    pricing.register_shopper_fact("guide_bound", binding.bound)  # placements skip the binding read without one
    events.react("order.paid", holds.note_coupon_uses)  # a guide-owned coupon's uses, for the spread hold rule
    events.react("order.paid", commission.earn)  # guided lines earn, in the payment's transaction
    events.react("refund_lines.written", commission.reverse)  # every refund path, per refunded part of a line
    settlement.ON_SETTLED[:] = [commission.settle]  # pending entries become available; points below
    payment_services.handle_webhooks(payouts.WEBHOOKS)  # transfer.* of guide payouts, verified like payments'
    points.install(settings.points_policy)  # earn at payment, reversed per refunded part of a line
    settlement.ON_SETTLED.append(earning.settle)  # a settled batch's pending lots become available
    levels.install(settings.level_programme)  # after live prices and points: member price last, upgrade at payment
    coupons.install(remind_before_hours=settings.coupon_expiry_reminder_hours,
                    return_on_full_refund=settings.coupon_return_on_full_refund)  # fmt: skip
    tokens.use_cache(flash.token_cache)
    announce.use_redis(_redis)
    wiring.mark_installed()


def _redis():
    from workers import runtime
    from workers.connection import get_redis

    return get_redis(runtime.settings())


def describe() -> dict:
    """What the root installed, by kind: for the operator (`flask mall wiring`) and the tests."""
    hooks = {
        "coupon issued": [wiring.name_of(h) for h in coupon_services.ON_ISSUED],
        "nudge recovery coupon": [wiring.name_of(h) for h in (nudges.recovery_coupon,) if h],
        "token cache": [wiring.name_of(h) for h in (tokens.cache_factory(),) if h],
        "sub-orders settled": [wiring.name_of(h) for h in settlement.ON_SETTLED],
        "payment webhooks": payment_services.webhook_types(),
    }
    return {**events.installed(), "pricing": pricing.installed(), "guards": guards.installed(), "hooks": hooks}
