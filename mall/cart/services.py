"""The shopper's cart: add (same SKU merges; a link's source outlives a re-add without one), change, clear, view."""

from __future__ import annotations

import functools
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mall import clock
from mall.attribution import CARRIED, Source, SourceType
from mall.cart.models import Cart, CartLine
from mall.catalog.models import Brand, Bundle, Product, Sku
from mall.catalog.rules import ensure_can_buy
from mall.db import among, hold_written, insert_on_conflict
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.live import attribution as live

MAX_QUANTITY = 999
MAX_LINES = 100


class CartRef(NamedTuple):
    """A shopper's cart as an add needs it, read by the caller along with what it reads anyway (a live link's
    open reads it with the link: `ref_columns`), so the add reads nothing more."""

    id: int
    line_count: int


def ref_columns(user_id) -> tuple:
    """The columns (cart id, line count) of the cart of `user_id` (a bind parameter or column), for a caller's
    own SELECT; NULLs when the shopper has no cart yet."""
    of_user = Cart.user_id == user_id
    return (sa.select(Cart.id).where(of_user).scalar_subquery(),
            sa.select(Cart.line_count).where(of_user).scalar_subquery())  # fmt: skip


def cart_for(session: Session, user_id: int) -> Cart:
    """The shopper's cart, created on first use without racing a concurrent first use.

    Read first: a shopper nearly always has a cart already, and a read-only request (a quote, the
    cart view) then writes nothing (on SQLite an INSERT, even one that conflicts, takes the write lock)."""
    cart = find_cart(session, user_id)
    if cart is not None:
        return cart
    insert_on_conflict(session, Cart.__table__, values={"user_id": user_id, "version": 1, "line_count": 0,
                       "last_activity_at": clock.now(), "created_at": clock.now(), "updated_at": clock.now()},
                       index_elements=["user_id"])  # fmt: skip
    return find_cart(session, user_id)


def cart_and_level(session: Session, user_id: int) -> tuple[Cart, int]:
    """The shopper's cart (created on first use) and member level, in one query when the cart exists: what
    the cart view shows (a line above the shopper's level is flagged)."""
    from mall.identity.models import User

    row = session.execute(
        sa.select(Cart, User.member_level).join(User, User.id == Cart.user_id).where(Cart.user_id == user_id)
    ).first()
    if row is not None:
        return row.Cart, row.member_level
    return cart_for(session, user_id), session.scalar(sa.select(User.member_level).where(User.id == user_id))


def find_cart(session: Session, user_id: int) -> Cart | None:
    """The shopper's cart if there is one; never writes."""
    return session.scalar(sa.select(Cart).filter_by(user_id=user_id))


_CARTS, _LINES = Cart.__table__, CartLine.__table__


def _touching(line_count, *also) -> sa.Update:
    """Every change moves the version and the activity time (abandoned-cart nudges read both) and sets the
    line count (`line_count`: how to compute it); the cart is :_cart, the time :_now. Returns the new version
    and count, then `also`."""
    return (
        _CARTS.update().where(_CARTS.c.id == sa.bindparam("_cart"))
        .values(version=_CARTS.c.version + 1, last_activity_at=sa.bindparam("_now"), line_count=line_count,
                updated_at=sa.bindparam("_now"))
        .returning(_CARTS.c.version, _CARTS.c.line_count, *also)
    )  # fmt: skip


# Built once (building a statement and hashing its cache key cost more Python than running it).
_TOUCH = _touching(sa.select(sa.func.count()).where(_LINES.c.cart_id == sa.bindparam("_cart")).scalar_subquery())


def _touch(session: Session, cart: Cart | CartRef, statement: sa.Update = _TOUCH, **params) -> tuple:
    """Run a touching statement for `cart`; a loaded `cart` gets the new values from it. Returns what else it
    returned."""
    now = clock.now()
    version, line_count, *also = session.connection().execute(statement, {"_cart": cart.id, "_now": now,
                                                                          **params}).one()  # fmt: skip
    if isinstance(cart, Cart):
        hold_written(cart, {"version": version, "line_count": line_count, "last_activity_at": now, "updated_at": now})
    return tuple(also)


def add_line(session: Session, *, user_id: int, sku_id: int, quantity: int, source: Source,
             cart: Cart | CartRef | None = None, known_on_sale: bool = False) -> int:  # fmt: skip
    """Add or merge a line; returns its id. `cart`: the shopper's cart (or a CartRef of it), if the caller holds it
    already.
    `known_on_sale`: the caller read, in this transaction, that the SKU and its product are active (a live link's
    open reads it with the link), so it is not read again."""
    on_sale = ("active", "active") if known_on_sale else session.execute(_SKU_ON_SALE, {"_sku": sku_id}).first()
    if on_sale != ("active", "active"):  # no such SKU (None), or it or its product is not on sale
        raise Invalid("cart.sku_unavailable", f"SKU {sku_id} is not on sale.", field="sku_id")
    return _add(session, user_id, cart, "sku_id", sku_id, quantity, source)


def add_bundle(
    session: Session, *, user_id: int, bundle_id: int, quantity: int, source: Source, cart: Cart | None = None
) -> int:
    """Add `quantity` bundles (套餐) as one line, or merge them into the cart's line of that bundle, as `add_line`
    does for a SKU; returns the line's id. Whether its parts can be bought is the quote's to say, as for a SKU."""
    on_sale = session.execute(_BUNDLE_ON_SALE, {"_bundle": bundle_id}).first()
    if on_sale != ("active", "active"):  # no such bundle, or it or its brand is not on sale
        raise Invalid("cart.bundle_unavailable", f"Bundle {bundle_id} is not on sale.", field="bundle_id")
    return _add(session, user_id, cart, "bundle_id", bundle_id, quantity, source)


def _add(session: Session, user_id: int, cart: Cart | CartRef | None, key: str, item_id: int, quantity: int,
         source: Source):  # fmt: skip
    """Add or merge the line of `key` (sku_id or bundle_id) `item_id`; returns its id."""
    cart = _the_cart(session, user_id, cart)
    if cart.line_count >= MAX_LINES and _line(session, cart.id, **{key: item_id}) is None:
        raise Invalid("cart.full", f"A cart holds at most {MAX_LINES} lines.")
    now = clock.now()
    params = {"cart_id": cart.id, key: item_id, "quantity": quantity, "source": source.as_dict(),
              "organic": source.type == SourceType.ORGANIC, "created_at": now, "updated_at": now}  # fmt: skip
    connection = session.connection()  # Core statements: the session's ORM layer has nothing to do for them
    line_id = connection.execute(_upsert_line(connection.dialect.name, key), params).scalar_one()
    _touch(session, cart)
    if source.type == SourceType.LIVE:  # the room's cart adds, counted exactly (ADR 0017)
        live.record_cart_add(session, user_id=user_id, source=params["source"], quantity=quantity, **{key: item_id})
    return line_id


# The SKU and its product both on sale; plain columns (the ORM entities carried descriptions and images).
_SKU_ON_SALE = (
    sa.select(Sku.status, Product.status).join(Product, Product.id == Sku.product_id)
    .where(Sku.id == sa.bindparam("_sku"))
)  # fmt: skip
_BUNDLE_ON_SALE = (
    sa.select(Bundle.status, Brand.status).join(Brand, Brand.id == Bundle.brand_id)
    .where(Bundle.id == sa.bindparam("_bundle"))
)  # fmt: skip


@functools.cache
def _upsert_line(dialect: str, key: str) -> sa.Insert:
    """INSERT the line, or merge into the cart's line of that SKU: quantities add up (capped at MAX_QUANTITY).
    The source merges as commission and live reports need it: a live room's or guide's source is kept when the
    shopper re-adds the SKU without a link (`organic`), and replaced only by a newer non-organic one. `key`: the
    line's SKU or bundle (sku_id or bundle_id), merged alike. Built once per dialect and key; the values are the
    parameters."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_LINES)
    stmt = insert.values({name: sa.bindparam(name) for name in (key, *_LINE_VALUES)})
    added = _LINES.c.quantity + stmt.excluded.quantity
    kept = sa.case((sa.bindparam("organic", type_=sa.Boolean), _LINES.c.source), else_=stmt.excluded.source)
    merge = {"quantity": sa.case((added > MAX_QUANTITY, MAX_QUANTITY), else_=added),
             "source": kept, "updated_at": stmt.excluded.updated_at}  # fmt: skip
    return stmt.on_conflict_do_update(index_elements=["cart_id", key], set_=merge).returning(_LINES.c.id)


_LINE_VALUES = ("cart_id", "quantity", "source", "created_at", "updated_at")


def _line(session: Session, cart_id: int, **key: int) -> CartLine | None:
    return session.execute(
        sa.select(CartLine).filter_by(cart_id=cart_id, **key).execution_options(populate_existing=True)
    ).scalar()


def _the_cart(session: Session, user_id: int, cart: Cart | CartRef | None) -> Cart | CartRef:
    if cart is None:
        return cart_for(session, user_id)
    if isinstance(cart, Cart) and cart.user_id != user_id:  # a CartRef was read by the shopper's id
        raise ValueError("a cart passed in must be the shopper's own")  # a caller's bug, not the shopper's
    return cart


def _own_line(session: Session, user_id: int, line_id: int, cart: Cart | None) -> tuple[Cart, CartLine]:
    cart = _the_cart(session, user_id, cart)
    line = session.get(CartLine, line_id)
    if line is None or line.cart_id != cart.id:
        raise NotFound("cart.line_not_found", f"Cart line {line_id} not found.")
    return cart, line


def set_quantity(session: Session, *, user_id: int, line_id: int, quantity: int, cart: Cart | None = None) -> CartLine:
    cart, line = _own_line(session, user_id, line_id, cart)
    line.quantity = quantity
    session.flush()
    _touch(session, cart)
    return line


def remove_line(session: Session, *, user_id: int, line_id: int, cart: Cart | None = None) -> None:
    cart, line = _own_line(session, user_id, line_id, cart)
    session.delete(line)
    session.flush()
    _touch(session, cart)


def remove_lines(session: Session, *, cart_id: int, line_ids: list[int]) -> None:
    """Ordered lines leave the cart (in the order's transaction). If some are gone already, a concurrent
    order took them (a double tap with two keys, read before that order committed): this one must not
    go through as well, so it is refused and its transaction rolls back. Only the cart's id is needed: a
    Cart of the session is not brought up to date (the placement holds none)."""
    now = clock.now()
    if session.get_bind().dialect.name == "postgresql":
        check_removed(line_ids, session.scalar(_REMOVE_PG, removal_params(cart_id, line_ids, now)))
        return
    removed = session.execute(_LINES.delete().where(_LINES.c.cart_id == cart_id, _LINES.c.id.in_(line_ids))).rowcount
    session.execute(_TOUCH, {"_cart": cart_id, "_now": now})
    check_removed(line_ids, removed)


def removal_params(cart_id: int, line_ids: list[int], now) -> dict:
    """The parameters of REMOVE_LINES: the cart, the lines, the time (named apart from those of a statement it is
    part of)."""
    return {"cart_cart": cart_id, "cart_lines": sorted(set(line_ids)), "cart_now": now}


def check_removed(line_ids: list[int], removed: int) -> None:
    if removed != len(set(line_ids)):
        raise Conflict("checkout.lines_changed", "Some of these lines were just ordered or removed; reload your cart.")


# PostgreSQL, as CTEs another statement can start with (the placement writes its order in the same one): the
# lines leave the cart, whose count moves by what was removed and whose version and activity time move as
# on every change; `emptied` returns how many lines were removed. Parameters: `removal_params`.
REMOVE_LINES = """
gone AS (
    DELETE FROM cart_lines WHERE cart_id = :cart_cart AND id = ANY(CAST(:cart_lines AS integer[])) RETURNING id
), emptied AS (
    UPDATE carts SET version = version + 1, line_count = line_count - (SELECT count(*) FROM gone),
                     last_activity_at = :cart_now, updated_at = :cart_now
    WHERE id = :cart_cart
    RETURNING (SELECT count(*) FROM gone) AS removed
)"""
_REMOVE_PG = sa.text(f"WITH {REMOVE_LINES}\nSELECT removed FROM emptied")


def clear(session: Session, *, user_id: int) -> None:
    cart = cart_for(session, user_id)
    session.execute(sa.delete(CartLine).where(CartLine.cart_id == cart.id))
    _touch(session, cart)


def lines_with_skus(session: Session, cart: Cart) -> list[tuple[PricingLine, PricingSku, ViewProduct]]:
    """(line, sku, product) of every line, oldest first, as plain values: what the cart view shows and
    `line_problem` reads."""
    return [pricing_row(row, 0, ViewProduct)[:3] for row in session.execute(_VIEW_LINES, {"_cart": cart.id})]


def bundle_lines(session: Session, cart: Cart) -> list[PricingLine]:
    """The cart's bundle lines, oldest first, as plain values (the cart view shows them beside `lines_with_skus`)."""
    return [PricingLine(*row) for row in session.execute(_BUNDLE_LINES, {"_cart": cart.id})]


class PricingLine(NamedTuple):
    id: int
    quantity: int
    source: dict
    bundle_id: int | None  # a bundle's line (its SKU columns are NULL)


class PricingSku(NamedTuple):
    id: int
    specs: dict
    price: int
    list_price: int
    stock: int
    status: str


class PricingProduct(NamedTuple):
    id: int
    brand_id: int
    category_id: int | None
    title: str
    tier: str
    min_member_level: int | None
    currency: str
    status: str


# What the cart view shows of a line's product: pricing's fields and its images.
ViewProduct = NamedTuple("ViewProduct", [*PricingProduct.__annotations__.items(), ("images", list)])


def _columns(product_row) -> list:
    """The columns of (line, SKU, product) in the order of PricingLine, PricingSku and `product_row`."""
    rows = ((CartLine, PricingLine), (Sku, PricingSku), (Product, product_row))
    return [getattr(model, name) for model, row in rows for name in row._fields]


_PRICING_COLUMNS = _columns(PricingProduct)
_BUNDLE_LINES = (  # built once
    sa.select(*(getattr(CartLine, name) for name in PricingLine._fields))
    .where(CartLine.cart_id == sa.bindparam("_cart"), CartLine.bundle_id.is_not(None)).order_by(CartLine.id)
)  # fmt: skip
_VIEW_LINES = (  # built once
    sa.select(*_columns(ViewProduct))
    .join(Sku, Sku.id == CartLine.sku_id).join(Product, Product.id == Sku.product_id)
    .where(CartLine.cart_id == sa.bindparam("_cart")).order_by(CartLine.id)
)  # fmt: skip


def with_pricing_lines(query: sa.Select, dialect: str) -> sa.Select:
    """`query`, which selects from the shopper's Cart, extended by the chosen lines of that cart (:_lines) with
    what pricing and `line_problem` read: one row per line, oldest first; LEFT JOINs, so a cart without such
    lines (or no cart) still gives its one row, the line columns NULL. Read them with `pricing_row`.

    Plain columns, not ORM objects: a 20-line quote spent more building and tracking 60 entities (descriptions
    and images included) than the database spent finding them."""
    chosen = (CartLine.cart_id == Cart.id) & among(CartLine.id, "_lines", dialect)
    return (
        query.outerjoin(CartLine, chosen).outerjoin(Sku, Sku.id == CartLine.sku_id)
        .outerjoin(Product, Product.id == Sku.product_id).add_columns(*_PRICING_COLUMNS).order_by(CartLine.id)
    )  # fmt: skip


def pricing_row(row, start: int, product_row=PricingProduct) -> tuple | None:
    """(line, sku, product, extra) from a row of `with_pricing_lines` (or of the cart view, with `product_row`
    ViewProduct) whose line columns begin at `start` (`extra`: the columns added after them); None for the
    row of a cart without the chosen lines."""
    a = start + len(PricingLine._fields)
    if row[start] is None:
        return None
    b = a + len(PricingSku._fields)
    c = b + len(product_row._fields)
    return PricingLine(*row[start:a]), PricingSku(*row[a:b]), product_row(*row[b:c]), tuple(row[c:])


def line_problem(line: CartLine, sku: Sku, product: Product, member_level: int) -> str | None:
    """Why a line cannot be bought right now, or None. Flagged, never silently dropped."""
    if sku.status != "active" or product.status != "active":
        return "archived"
    if sku.stock <= 0:
        return "out_of_stock"
    if sku.stock < line.quantity:
        return "insufficient_stock"
    try:
        ensure_can_buy(member_level=member_level, product=product)
    except Forbidden:
        return "member_level"
    return None


def carried_source(session: Session, *, user_id: int, sku_id: int) -> dict | None:
    """The live or guide source on the shopper's cart line of this SKU, if any: what a flash or group-buy
    purchase of the SKU outside the cart carries beside the promotion's own (the cart line stays)."""
    source = session.scalar(
        sa.select(CartLine.source).join(Cart, Cart.id == CartLine.cart_id)
        .where(Cart.user_id == user_id, CartLine.sku_id == sku_id)
    )  # fmt: skip
    return source if source and source.get("type") in CARRIED else None
