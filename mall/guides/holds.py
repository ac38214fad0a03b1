"""Commission fraud holds (ADR 0024): at earn time, is this guide's commission on this order suspicious enough to
hold it for a brand admin's review? `hold_reason` answers with the rule and its evidence, or None.

Rules, in the order they are tried (the first that matches is the reason):
- `self_purchase`: the buyer is the guide: the guide's own or linked shopper account, a WeChat account sharing an
  openid or unionid with one of them, or an order shipped to a phone or (normalised) address of their address book;
- `fresh_cluster`: the buyer's account is fresh (younger than N days, at most M other paid orders) and, with them,
  at least K fresh shoppers paid orders through this guide within the window;
- `address_cluster`: at least K different shoppers under this guide shipped to this (normalised) address within
  the window;
- `coupon_spread`: the order used a coupon template the guide owns, and at least K shoppers not bound to the guide
  have used it.

It runs in the payment's transaction for each attributed order: every statement is an indexed lookup, every count
stops at its threshold (a LIMIT), and none reads all of a guide's or shopper's orders. See ADR 0024 for the cost."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import audit, clock
from mall.db import insert_on_conflict
from mall.events import DomainEvent
from mall.guides.hold_models import CouponUse, GuideCoupon, HoldSettings, OrderSignal
from mall.guides.models import Guide
from mall.identity.models import Address, User, WeChatAccount
from mall.orders.models import Order, OrderLine
from mall.promotions.coupons.models import Coupon

NEUTRAL = {"code": "under_review", "text": "Under review"}  # all a guide is told about a hold
REVIEWED = {"code": "reviewed", "text": "Reviewed"}  # ... and about one decided


def for_guide(state: str, reason: dict | None) -> dict:
    """An entry's reason as its guide reads it: a hold's rule and evidence are replaced by a neutral word (telling a
    fraudster which signal caught them teaches them to avoid it)."""
    reason = dict(reason or {})
    if "hold" in reason:
        reason["hold"] = NEUTRAL if state == "on_hold" else REVIEWED
    return reason


@dataclass(frozen=True, slots=True)
class Thresholds:
    fresh_account_days: int = 7
    fresh_max_orders: int = 1
    fresh_cluster_size: int = 5
    fresh_cluster_days: int = 7
    address_cluster_size: int = 3
    address_cluster_days: int = 30
    coupon_spread_size: int = 10


DEFAULTS = Thresholds()
NAMES = tuple(f.name for f in fields(Thresholds))


def thresholds(session: Session, brand_id: int) -> Thresholds:
    return of_row(session.get(HoldSettings, brand_id))


def of_row(row: HoldSettings | None) -> Thresholds:
    """A brand's thresholds from its settings row (None: the defaults)."""
    return DEFAULTS if row is None else Thresholds(**{name: getattr(row, name) for name in NAMES})


def set_thresholds(session: Session, *, brand_id: int, by: int | None, **changes) -> Thresholds:
    """The brand's thresholds, the ones not named kept (or the defaults); in force for orders paid from now."""
    was = asdict(thresholds(session, brand_id))
    values = {**was, **changes, "updated_by": by, "updated_at": clock.now()}
    insert_on_conflict(session, HoldSettings.__table__, values={"brand_id": brand_id, **values},
                       index_elements=["brand_id"], update=values)  # fmt: skip
    session.get(HoldSettings, brand_id, populate_existing=True)
    now = thresholds(session, brand_id)
    before, after = audit.diff(was, asdict(now))
    if after:
        audit.record(session, action="hold_settings.updated", object_type="hold_settings", object_id=brand_id,
                     brand_id=brand_id, before=before, after=after)  # fmt: skip
    return now


def hold_reason(session: Session, *, guide: Guide, order: Order, lines: list[OrderLine],
                limits: Thresholds | None = None, buyer_since: datetime | None = None) -> dict | None:  # fmt: skip
    """Why the guide's commission on `order` (its `lines` attributed to them) should be held, or None. Records the
    order's signal for the cluster rules (once per order and guide: safe to call again). `limits` (the brand's
    thresholds) and `buyer_since` (when the buyer's account was made) are read here unless the caller has them."""
    limits, now = limits or thresholds(session, guide.brand_id), clock.now()
    fresh = _freshness(session, order, limits, now, buyer_since)
    key = address_key(order.address)
    insert_on_conflict(session, OrderSignal.__table__, index_elements=["order_id", "guide_id"], values={
        "guide_id": guide.id, "brand_id": guide.brand_id, "order_id": order.id, "shopper_id": order.user_id,
        "fresh": fresh is not None, "address_key": key, "paid_at": order.paid_at or now})  # fmt: skip
    found = self_purchase(session, guide=guide, order=order) or _cluster(session, guide, order, fresh, key, limits, now)
    found = found or _coupon_spread(session, guide, order, limits)
    return None if found is None else {**found, "detected_at": now.isoformat()}


# self-purchase ------------------------------------------------------------------------------------------------


def self_purchase(session: Session, *, guide: Guide, order: Order) -> dict | None:
    """The buyer is the guide: one of their accounts, a WeChat identity of theirs, or their phone or address."""
    own = [uid for uid in (guide.user_id, guide.shopper_user_id) if uid is not None]
    if order.user_id in own:
        match = "guide_account" if order.user_id == guide.user_id else "linked_identity"
        return _self(match, shopper_id=order.user_id)
    return _same_wechat(session, order.user_id, own) or _same_address_book(session, order, own)


def _self(match: str, **evidence) -> dict:
    return {"rule": "self_purchase", "match": match, "evidence": evidence}


def _same_wechat(session: Session, buyer_id: int, own: list[int]) -> dict | None:
    """A WeChat account of the buyer sharing its unionid (same person across apps) or openid with one of the
    guide's accounts. Both sides are read by `user_id` (indexed): a handful of rows."""
    row = session.execute(_wechat_match(), {"buyer": buyer_id, "own": own}).first()
    if row is None:
        return None
    field, value = ("unionid", row.unionid) if row.by_union else ("openid", row.openid)
    return _self(f"wechat_{field}", field=field, value=mask(value), guide_user_id=row.user_id)


@functools.cache
def _wechat_match() -> sa.Select:
    """Built once (a fresh pair of aliases per call cost more Python than the query): :buyer, :own (a list)."""
    mine, theirs = sa.orm.aliased(WeChatAccount), sa.orm.aliased(WeChatAccount)
    same_union = sa.and_(mine.unionid.is_not(None), mine.unionid == theirs.unionid)
    return (
        sa.select(theirs.user_id, mine.unionid, mine.openid, same_union.label("by_union"))
        .join(theirs, sa.or_(same_union, mine.openid == theirs.openid))
        .where(mine.user_id == sa.bindparam("buyer"), theirs.user_id.in_(sa.bindparam("own", expanding=True)),
               theirs.user_id != sa.bindparam("buyer"))
        .limit(1)
    )  # fmt: skip


def _same_address_book(session: Session, order: Order, own: list[int]) -> dict | None:
    shipped = order.address or {}
    phone, key = phone_key(shipped.get("phone")), address_key(shipped)
    book = session.execute(_ADDRESS_BOOK, {"own": own})
    for row in book:
        if phone and phone_key(row.phone) == phone:
            return _self("phone", phone=mask(phone), guide_address_id=row.id, guide_user_id=row.user_id)
        if key and address_key(row._asdict()) == key:
            return _self("address", address=_short(shipped), guide_address_id=row.id, guide_user_id=row.user_id)
    return None


_ADDRESS_BOOK = sa.select(Address.id, Address.user_id, Address.province, Address.city, Address.district,
                          Address.detail, Address.phone).where(
    Address.user_id.in_(sa.bindparam("own", expanding=True)))  # fmt: skip

# clusters -----------------------------------------------------------------------------------------------------


def _freshness(session: Session, order: Order, limits: Thresholds, now: datetime,
               created: datetime | None) -> dict | None:  # fmt: skip
    """The buyer's account age and other paid orders, if the account counts as fresh (else None)."""
    if not limits.fresh_account_days:
        return None
    if created is None:
        created = session.scalar(sa.select(User.created_at).where(User.id == order.user_id))
    age = now - created
    if age >= timedelta(days=limits.fresh_account_days):
        return None
    count = session.scalar(
        _OTHER_PAID, {"buyer": order.user_id, "order": order.id, "limit": limits.fresh_max_orders + 1}
    )
    if count > limits.fresh_max_orders:
        return None
    return {"account_age_hours": int(age.total_seconds() // 3600), "other_paid_orders": count}


_OTHER_PAID = sa.select(sa.func.count()).select_from(  # ix_orders_user; stops past the limit
    sa.select(Order.id).where(Order.user_id == sa.bindparam("buyer"), Order.id != sa.bindparam("order"),
                              Order.paid_at.is_not(None)).limit(sa.bindparam("limit")).subquery())  # fmt: skip


def _others(kind: str, *where):
    """How many other shoppers (up to :{kind}_limit) the guide's signals matching `where` name: a scalar subquery
    of :guide and :buyer."""
    shoppers = (
        sa.select(OrderSignal.shopper_id)
        .distinct()
        .where(OrderSignal.guide_id == sa.bindparam("guide"), OrderSignal.shopper_id != sa.bindparam("buyer"), *where)
        .limit(sa.bindparam(f"{kind}_limit"))
    )
    return sa.select(sa.func.count()).select_from(shoppers.subquery()).scalar_subquery()


@functools.cache
def _cluster_counts(kinds: tuple[str, ...]) -> sa.Select:
    """One statement counting the clusters named (fresh, address), built once per combination."""
    where = {"fresh": (OrderSignal.fresh, OrderSignal.paid_at >= sa.bindparam("fresh_since")),
             "address": (OrderSignal.address_key == sa.bindparam("key"),
                         OrderSignal.paid_at >= sa.bindparam("address_since"))}  # fmt: skip
    return sa.select(*(_others(kind, *where[kind]) for kind in kinds))


def _cluster(session, guide, order, fresh, key: str, limits: Thresholds, now: datetime) -> dict | None:
    """The fresh-account cluster, else the one-address cluster: both counts in one statement (each stops at its
    threshold), asked only for the rules that can apply."""
    fresh_size, fresh_since = limits.fresh_cluster_size, now - timedelta(days=limits.fresh_cluster_days)
    address_size, address_since = limits.address_cluster_size, now - timedelta(days=limits.address_cluster_days)
    kinds = (("fresh",) if fresh is not None and fresh_size else ()) + (("address",) if key and address_size else ())
    if not kinds:
        return None
    params = {"guide": guide.id, "buyer": order.user_id, "fresh_since": fresh_since, "fresh_limit": fresh_size - 1,
              "key": key, "address_since": address_since, "address_limit": address_size - 1}  # fmt: skip
    counts = session.execute(_cluster_counts(kinds), params).one()  # parameters it does not name are ignored
    others = dict(zip(kinds, counts, strict=True))
    if "fresh" in others and others["fresh"] + 1 >= fresh_size:
        return {"rule": "fresh_cluster", "evidence": {"fresh_shoppers": others["fresh"] + 1,
                "window_days": limits.fresh_cluster_days, "since": fresh_since.isoformat(), "buyer": fresh,
                "threshold": fresh_size, "fresh_account_days": limits.fresh_account_days,
                "fresh_max_orders": limits.fresh_max_orders}}  # fmt: skip
    if "address" in others and others["address"] + 1 >= address_size:
        return {"rule": "address_cluster", "evidence": {"shoppers": others["address"] + 1,
                "window_days": limits.address_cluster_days, "since": address_since.isoformat(),
                "address": _short(order.address), "threshold": address_size}}  # fmt: skip
    return None


# guide coupons ------------------------------------------------------------------------------------------------


def coupon_ids(order: Order) -> list[int]:
    """The coupons an order used, from its discounts (no query)."""
    sources = (d.get("source", "") for d in order.discounts or ())
    return sorted({int(s.split(":", 1)[1]) for s in sources if s.startswith("coupon:")})


def _guide_templates(session: Session, ids: list[int]):
    query = (
        sa.select(Coupon.template_id, GuideCoupon.guide_id)
        .join(GuideCoupon, GuideCoupon.template_id == Coupon.template_id)
        .where(Coupon.id.in_(ids))
    )
    return session.execute(query).all()


def _coupon_spread(session: Session, guide: Guide, order: Order, limits: Thresholds) -> dict | None:
    ids, size = coupon_ids(order), limits.coupon_spread_size
    if not ids or not size:
        return None
    for template_id, owner in _guide_templates(session, ids):
        if owner != guide.id:
            continue
        outside = (
            sa.select(CouponUse.shopper_id).distinct()
            .where(CouponUse.template_id == template_id, CouponUse.outside).limit(size)
        )  # fmt: skip
        spread = session.scalar(sa.select(sa.func.count()).select_from(outside.subquery()))
        if spread >= size:
            return {"rule": "coupon_spread", "evidence": {"coupon_template_id": template_id,
                    "shoppers_not_bound": spread, "threshold": size}}  # fmt: skip
    return None


def note_coupon_uses(session: Session, event: DomainEvent) -> None:
    """Reaction to `order.paid`: a paid order that used a guide-owned coupon is noted, `outside` when its lines
    were not attributed to the owning guide. An order without coupons costs nothing (its discounts say so); one
    with coupons costs one indexed read."""
    order = session.get(Order, event.aggregate_id)
    ids = coupon_ids(order) if order is not None else []
    if not ids:
        return
    for template_id, owner in _guide_templates(session, ids):
        inside = any(line.guide_id == owner for line in order.lines)
        insert_on_conflict(session, CouponUse.__table__, index_elements=["template_id", "order_id"], values={
            "template_id": template_id, "guide_id": owner, "order_id": order.id, "shopper_id": order.user_id,
            "outside": not inside, "paid_at": order.paid_at or clock.now()})  # fmt: skip


# normalising --------------------------------------------------------------------------------------------------

_ADDRESS_FIELDS = ("province", "city", "district", "detail")
_NOT_WORD = re.compile(r"[\W_]+")


def phone_key(phone: str | None) -> str | None:
    """Digits only, a mainland country prefix (+86, 0086, 86 before 11 digits) dropped."""
    digits = re.sub(r"\D", "", phone or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
    return digits or None


def address_key(address: dict | None) -> str:
    """A short hash of province, city, district and detail, each NFKC-normalised (full-width forms to ASCII),
    case-folded and stripped of spaces and punctuation; recipient, phone and postal code left out. '' if empty."""
    parts = [_NOT_WORD.sub("", unicodedata.normalize("NFKC", str((address or {}).get(f) or "")).casefold())
             for f in _ADDRESS_FIELDS]  # fmt: skip
    if not parts[-1]:
        return ""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _short(address: dict | None) -> str:
    """What a brand admin reads of a matched address: its city, district and street line."""
    a = address or {}
    return " ".join(str(a.get(f) or "") for f in ("city", "district", "detail") if a.get(f))


def mask(value: str | None) -> str:
    value = value or ""
    return value if len(value) <= 7 else f"{value[:3]}****{value[-4:]}"
