"""Message templates: what each message is, which channel carries it, and whether it is marketing.

Marketing messages obey the frequency cap and quiet hours; transactional ones (paid, shipped,
refund) do not. WeChat subscribe-message template ids are deployment settings
(`WECHAT_TEMPLATE_IDS=key:tmplId,...`), since each mini-program registers its own.
"""

from __future__ import annotations

from dataclasses import dataclass

TRANSACTIONAL, MARKETING = "transactional", "marketing"


@dataclass(frozen=True)
class Template:
    key: str
    kind: str
    title: str
    page: str  # mini-program page the message opens, formatted with the payload
    channel: str = "wechat"


ORDER_PAGE = "pages/order/detail?id={order_id}"

TEMPLATES = {
    t.key: t
    for t in (
        Template("order.unpaid_reminder", TRANSACTIONAL, "Your order is waiting for payment", ORDER_PAGE),
        Template("order.paid", TRANSACTIONAL, "Payment received", ORDER_PAGE),
        Template("order.shipped", TRANSACTIONAL, "Your parcel is on its way", ORDER_PAGE),
        Template("order.refunded", TRANSACTIONAL, "Refund issued", ORDER_PAGE),
        Template("coupon.expiring", MARKETING, "A coupon expires soon", "pages/coupons/index"),
        Template("points.expiring", MARKETING, "Points expire soon", "pages/member/points"),
        Template("member.level_at_risk", TRANSACTIONAL, "Keep your member level", "pages/member/level"),
        Template("member.level_lowered", TRANSACTIONAL, "Your member level changed", "pages/member/level"),
        Template("cart.abandoned", MARKETING, "Still thinking it over?", "pages/cart/index"),
        Template("flash_sale.starting", TRANSACTIONAL, "A flash sale starts soon", "pages/flash/detail?id={sale_id}"),
        Template("group_buy.closing", TRANSACTIONAL, "Your group closes in 1 hour", "pages/group/detail?id={group_id}"),
        Template("group_buy.joined", TRANSACTIONAL, "Someone joined your group", "pages/group/detail?id={group_id}"),
        Template("group_buy.succeeded", TRANSACTIONAL, "Your group is complete", "pages/group/detail?id={group_id}"),
        Template("group_buy.failed", TRANSACTIONAL, "Your group did not fill: refunded", "pages/group/detail?id={group_id}"),
        Template("journey.welcome", MARKETING, "Welcome to the mall", "pages/index/index"),
        Template("journey.recommendation", MARKETING, "Picked for you", "pages/index/index"),
        Template("journey.usage_tips", MARKETING, "Getting the most from your purchase", "pages/order/list"),
        Template("journey.member_benefits", MARKETING, "Your member benefits", "pages/member/index"),
        Template("journey.win_back", MARKETING, "We miss you: a coupon inside", "pages/coupons/index"),
    )
}  # fmt: skip


def get(key: str) -> Template:
    from mall.errors import Invalid

    if key not in TEMPLATES:
        raise Invalid("notification.unknown_template", f"No template {key!r}.", field="template_key")
    return TEMPLATES[key]
