"""Conditions re-checked when a scheduled message fires: if its cause went away, it is skipped.

A guard is stored on the message as {"type": ..., ...}; capabilities register their own
(`register("coupon_unused", fn)`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

Guard = Callable[[Session, int, dict], bool]  # (session, user_id, guard) -> still holds?
_GUARDS: dict[str, Guard] = {}


def register(name: str, guard: Guard) -> None:
    _GUARDS[name] = guard


def installed() -> list[str]:
    return sorted(_GUARDS)


def holds(session: Session, user_id: int, guard: dict | None) -> bool:
    if not guard:
        return True
    check = _GUARDS.get(guard.get("type"))
    return bool(check and check(session, user_id, guard))


def _order_unpaid(session: Session, user_id: int, guard: dict) -> bool:
    from mall.orders.models import Order

    return session.scalar(sa.select(Order.status).where(Order.id == guard["order_id"])) == "pending_payment"


def _cart_unchanged(session: Session, user_id: int, guard: dict) -> bool:
    """The cart still has lines and has not changed since the nudge was decided."""
    from mall.cart.models import Cart

    row = session.execute(sa.select(Cart.version, Cart.line_count).where(Cart.id == guard["cart_id"])).first()
    return row is not None and row.version == guard["version"] and row.line_count > 0


def _no_order_since(session: Session, user_id: int, guard: dict) -> bool:
    from mall.orders.models import Order

    since = datetime.fromisoformat(guard["since"])
    query = sa.select(Order.id).where(Order.user_id == user_id, Order.created_at > since).limit(1)
    return session.scalar(query) is None


register("order_unpaid", _order_unpaid)
register("cart_unchanged", _cart_unchanged)
register("no_order_since", _no_order_since)
