"""The staff audit log: who changed which price, stock, coupon, room, rate card or payout, before and after.

One rule decides what is logged: a session the edge marks as acting for a staff member (`acting`) writes an
`audit_log` row for every change it makes to a watched column (`WATCHED`), in the transaction of the change, so a
rolled-back change leaves no entry and a committed one always has its entry. Changes made through the ORM are
found by a flush listener (the changed fields' history); changes a service makes by a conditional UPDATE or a bulk
statement are told with `record` / `changed` by that service. A session acting for nobody (a shopper's request, a
job, a sweep) logs nothing. Entries are append-only: nothing in the code updates or deletes them. See ADR 0034.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from mall import clock
from mall.db import Base, JSONType
from mall.errors import Forbidden
from mall.identity.roles import Role

ACTING = "audit_actor"  # session.info keys
REQUEST_ID = "audit_request_id"


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index(None, "brand_id", "id"),
        sa.Index(None, "object_type", "object_id", "id"),
        sa.Index(None, "actor_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int]
    actor_role: Mapped[str] = mapped_column(sa.String(32))
    brand_id: Mapped[int | None]  # the brand the object belongs to (None: a platform object)
    action: Mapped[str] = mapped_column(sa.String(64))  # e.g. sku.updated, payout.approved
    object_type: Mapped[str] = mapped_column(sa.String(32))
    object_id: Mapped[int | None]
    before: Mapped[dict | None] = mapped_column(JSONType)  # the changed fields only
    after: Mapped[dict | None] = mapped_column(JSONType)
    request_id: Mapped[str | None] = mapped_column(sa.String(128))  # api/observability.py: at most 128
    at: Mapped[datetime] = mapped_column(default=clock.now)


@dataclass(frozen=True)
class Watch:
    """A table whose ORM changes are logged: its object type, the watched columns, and where its brand is (its own
    column, or (table, foreign key column) for the brand of the row it belongs to; None: a platform object)."""

    object_type: str
    fields: tuple[str, ...]
    brand: str | tuple[str, str] | None = "brand_id"
    redacted: tuple[str, ...] = ()  # logged as changed, never with their values

    def shown(self, values: dict | None) -> dict | None:
        if not values or not self.redacted:
            return values
        return {k: REDACTED if k in self.redacted and v is not None else v for k, v in values.items()}


REDACTED = "[redacted]"


# table name -> what is watched. Never a secret's value: password hashes are not listed, payout accounts redacted.
# fmt: off
WATCHED: dict[str, Watch] = {
    "brands": Watch("brand", ("slug", "name", "status"), brand="id"),
    "categories": Watch("category", ("name", "parent_id", "position"), brand=None),
    "products": Watch("product", ("title", "subtitle", "status", "tier", "min_member_level", "category_id")),
    "skus": Watch("sku", ("specs", "price", "list_price", "stock", "status", "weight_grams", "barcode"),
                  brand=("products", "product_id")),
    "bundles": Watch("bundle", ("title", "price", "status")),
    "coupon_templates": Watch("coupon_template", (
        "name", "value_type", "amount", "threshold", "percent_bp", "cap", "scope_type", "scope_ids", "valid_from",
        "valid_until", "valid_days", "total_quantity", "per_shopper_limit", "audience", "auto_grant", "status")),
    "flash_sales": Watch("flash_sale", ("name", "starts_at", "ends_at", "status")),
    "flash_items": Watch("flash_item", ("sku_id", "flash_price", "quota", "per_shopper_limit"),
                         brand=("flash_sales", "sale_id")),
    "group_campaigns": Watch("group_campaign", (
        "sku_id", "name", "group_price", "leader_discount", "group_size", "per_shopper_limit", "starts_at",
        "ends_at", "status")),
    "live_rooms": Watch("live_room", ("title", "host_user_id", "scheduled_start", "scheduled_end", "status")),
    "live_lineup_items": Watch("live_lineup_item", ("product_id", "sku_id", "position", "live_price", "live_quota"),
                               brand=("live_rooms", "room_id")),
    "live_pin_segments": Watch("live_pin", ("item_id", "product_id", "sku_id"), brand=("live_rooms", "room_id")),
    "guide_rate_cards": Watch("rate_card", (
        "scope", "category_id", "product_id", "guide_grade", "basis_points", "amount_per_unit", "currency",
        "includes_campaign_lines", "valid_from", "valid_to")),
    "guide_payout_settings": Watch("payout_terms", ("gateway", "minimum_amount", "weekdays", "min_days_between")),
    "guide_payouts": Watch("payout", ("guide_id", "amount", "currency", "state", "gateway", "reference", "note")),
    "member_tags": Watch("member_tag", ("scope", "code", "name"), brand="scope"),
    "users": Watch("user", ("role", "brand_id", "status", "display_name", "email")),
    "guides": Watch("guide", ("user_id", "status", "grade", "store_id", "name", "stripe_account_id", "bank_account"),
                    redacted=("stripe_account_id", "bank_account")),
    "guide_hold_reviews": Watch("hold_review", ("entry_id", "guide_id", "action", "from_state", "to_state", "reason")),
    "shipping_policies": Watch("shipping_policy", ("fee", "free_above")),
    "live_lucky_bags": Watch("lucky_bag", ("title", "prize_type", "coupon_template_id", "gift_sku_id",
                                           "winner_count", "opens_at", "closes_at", "status")),
    "live_room_coupons": Watch("live_room_coupon", ("template_id", "room_id"), brand=("live_rooms", "room_id")),
    "member_segments": Watch("member_segment", ("scope", "name", "definition"), brand="scope"),
    "coupon_bulk_grants": Watch("coupon_bulk_grant", ("template_id", "segment"),
                                brand=("coupon_templates", "template_id")),
}
# fmt: on


def acting(session: Session, actor, *, request_id: str | None = None) -> None:
    """From now on this session's changes are `actor`'s (None: nobody's, nothing is logged)."""
    session.info.pop(ACTING, None)
    session.info.pop(REQUEST_ID, None)
    if actor is not None:
        session.info[ACTING], session.info[REQUEST_ID] = actor, (request_id or None)


def actor_of(session: Session):
    return session.info.get(ACTING)


def record(session: Session, *, action: str, object_type: str, object_id: int | None, brand_id: int | None,
           before: dict | None, after: dict | None) -> None:  # fmt: skip
    """Log one change the caller made outside the ORM's unit of work (nothing if the session acts for nobody)."""
    actor = actor_of(session)
    if actor is not None:
        session.connection().execute(_INSERT, [_row(session, actor, action, object_type, object_id, brand_id,
                                                    before, after)])  # fmt: skip


def snapshot(obj, fields: tuple[str, ...] | None = None) -> dict:
    """The values of `fields` (its table's watched ones by default) now, to give `changed` after a statement
    that rewrites the row."""
    return {name: getattr(obj, name) for name in fields or WATCHED[obj.__table__.name].fields}


def changed(session: Session, obj, before: dict, *, action: str, brand_id: int | None) -> None:
    """Log what of `before` differs in `obj` now (refreshed from its row by the caller), the changed fields only."""
    old, new = diff(before, snapshot(obj, tuple(before)))
    watch = WATCHED[obj.__table__.name]
    if new:
        record(session, action=action, object_type=watch.object_type, object_id=_pk(obj), brand_id=brand_id,
               before=watch.shown(old), after=watch.shown(new))  # fmt: skip


def diff(before: dict, after: dict) -> tuple[dict, dict]:
    keys = [k for k in after if plain(before.get(k)) != plain(after[k])]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def plain(value):
    """A JSON-storable value: times as ISO text, enums as their value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


_INSERT = sa.insert(AuditEntry.__table__)


def _row(session, actor, action, object_type, object_id, brand_id, before, after) -> dict:
    return {"actor_id": actor.user_id, "actor_role": str(actor.role), "brand_id": brand_id, "action": action,
            "object_type": object_type, "object_id": object_id, "before": plain(before), "after": plain(after),
            "request_id": session.info.get(REQUEST_ID), "at": clock.now()}  # fmt: skip


def _pk(obj) -> int | None:
    (key,) = sa.inspect(obj).mapper.primary_key_from_instance(obj)
    return key


def _brand_of(session: Session, watch: Watch, obj) -> int | None:
    if watch.brand is None:
        return None
    if isinstance(watch.brand, str):
        return _held(obj, watch.brand) or None  # a tag's scope 0: the platform's
    table, column = watch.brand
    parent = Base.metadata.tables[table]
    return session.connection().scalar(sa.select(parent.c.brand_id).where(parent.c.id == _held(obj, column)))


def _held(obj, name: str):
    """The attribute as the object holds it (no load for a deleted row's)."""
    state = sa.inspect(obj)
    return state.dict[name] if name in state.dict else getattr(obj, name)


def _changes(obj, watch: Watch, kind: str) -> tuple[dict | None, dict | None]:
    state = sa.inspect(obj)
    if kind != "updated":  # what the row holds (no load: a deleted row is gone, a new one was just written)
        values = {f: state.dict.get(f) for f in watch.fields}
        return (None, values) if kind == "created" else (values, None)
    before, after = {}, {}
    for name in watch.fields:
        history = state.attrs[name].history
        if history.has_changes() and history.deleted != history.added:
            before[name] = history.deleted[0] if history.deleted else None
            after[name] = history.added[0] if history.added else None
    return diff(before, after)


@event.listens_for(Session, "after_flush")
def _log_flush(session: Session, _context) -> None:
    """The ORM changes of this flush to watched columns, while their history still holds the old values."""
    actor = session.info.get(ACTING)
    if actor is None:
        return
    rows = []
    for kind, objects in (("created", session.new), ("updated", session.dirty), ("deleted", session.deleted)):
        for obj in objects:
            watch = WATCHED.get(getattr(obj, "__tablename__", None))
            if watch is None:
                continue
            before, after = _changes(obj, watch, kind)
            if before or after:
                rows.append(_row(session, actor, f"{watch.object_type}.{kind}", watch.object_type, _pk(obj),
                                 _brand_of(session, watch, obj), watch.shown(before), watch.shown(after)))  # fmt: skip
    if rows:
        session.connection().execute(_INSERT, rows)


def entries(session: Session, *, actor, brand_id: int | None = None, actor_id: int | None = None,
            object_type: str | None = None, object_id: int | None = None, action: str | None = None,
            since: datetime | None = None, until: datetime | None = None, before_id: int | None = None,
            limit: int = 50) -> tuple[list[AuditEntry], int | None]:  # fmt: skip
    """The log, newest first, a page at a time: (entries, the `before_id` of the next page or None). A platform
    admin reads every entry; a brand admin only their brand's (whatever `brand_id` they name); anyone else none."""
    if actor.role == Role.BRAND_ADMIN:
        if brand_id not in (None, actor.brand_id):
            raise Forbidden("audit.other_brand", "You can only read your own brand's audit log.")
        brand_id = actor.brand_id
    elif actor.role != Role.PLATFORM_ADMIN:
        raise Forbidden("audit.forbidden", "Only platform and brand admins read the audit log.")
    t = AuditEntry
    wanted = [(t.brand_id, brand_id), (t.actor_id, actor_id), (t.object_type, object_type),
              (t.object_id, object_id), (t.action, action)]  # fmt: skip
    query = sa.select(t).where(*(column == value for column, value in wanted if value is not None))
    if since is not None:
        query = query.where(t.at >= since)
    if until is not None:
        query = query.where(t.at < until)
    if before_id is not None:
        query = query.where(t.id < before_id)
    rows = list(session.scalars(query.order_by(t.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)
