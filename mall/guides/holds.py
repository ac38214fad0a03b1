"""Fraud holds at earn time (ADR 0022): an entry whose line looks like self-dealing is created `on_hold` for a brand
admin's review instead of `pending`.

`hold_reason` is the one question the ledger asks; this first version recognises only the linked identity: the
buyer is the shopper account the guide buys with (`guides.shopper_user_id`). Same openid/unionid, phone or
address, throwaway-account clusters and coupon spread come with the holds work of issue 16."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mall.guides.models import Guide
from mall.orders.models import Order, OrderLine


def hold_reason(session: Session, *, guide: Guide, order: Order, lines: list[OrderLine]) -> dict | None:
    """Why the guide's commission on these lines of `order` is held, or None to earn it normally."""
    if guide.shopper_user_id is not None and guide.shopper_user_id == order.user_id:
        return {"rule": "self_purchase", "signal": "linked_identity", "buyer_id": order.user_id}
    return None
