"""Flash sales (秒杀): scheduling, the purchase path, giving units back exactly once, reconciliation."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Session

from mall import clock, events
from mall.attribution import Source
from mall.catalog.models import Sku
from mall.checkout.pricing import Quote
from mall.db import insert_on_conflict
from mall.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from mall.identity.roles import Actor
from mall.inventory import services as inventory
from mall.notifications.services import notify
from mall.orders.models import IdempotencyRecord, Order
from mall.orders.services import pay_if_free, place_direct, quote_direct
from mall.promotions.flash_sale.admission import Gate, Guard, Once, Seen
from mall.promotions.flash_sale.models import FlashBuyer, FlashItem, FlashOrder, FlashReminder, FlashSale

log = logging.getLogger(__name__)
REMIND_BEFORE = timedelta(minutes=5)
REJECTIONS = {"not_started": "flash_sale.not_started", "ended": "flash_sale.ended", "sold_out": "flash_sale.sold_out",
              "limit_reached": "flash_sale.limit_reached"}  # fmt: skip


def schedule(session: Session, *, actor: Actor, brand_id: int, name: str, starts_at: datetime, ends_at: datetime,
             items: list[dict], payment_minutes: int = 10, gate: Gate | None = None) -> FlashSale:  # fmt: skip
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("flash_sale.other_brand", "You can only schedule your own brand's flash sales.")
    return create(session, actor=actor, brand_id=brand_id, name=name, starts_at=starts_at, ends_at=ends_at,
                  items=items, payment_minutes=payment_minutes, gate=gate)  # fmt: skip


def create(session: Session, *, actor: Actor, brand_id: int, name: str, starts_at: datetime, ends_at: datetime,
           items: list[dict], payment_minutes: int = 10, gate: Gate | None = None) -> FlashSale:  # fmt: skip
    """`schedule` once the caller has checked who may (a live room's host schedules a deal in their room,
    mall/live/promotions.py): the sale, its items, and their admission counters loaded after the commit."""
    if ends_at <= starts_at:
        raise Invalid("flash_sale.window", "The sale must end after it starts.", field="ends_at")
    sale = FlashSale(
        brand_id=brand_id, name=name, starts_at=starts_at, ends_at=ends_at, payment_minutes=payment_minutes
    )
    for item in items:
        sku = session.get(Sku, item["sku_id"])
        if sku is None or sku.product.brand_id != brand_id:
            raise Invalid("flash_sale.sku_unknown", f"SKU {item['sku_id']} is not this brand's.", field="items")
        if item["flash_price"] > sku.price:
            raise Invalid("flash_sale.price_above_normal", "A flash price is below the normal price.", field="items")
        sale.items.append(FlashItem(**item))
    session.add(sale)
    session.flush()
    for item in sale.items if gate is not None else ():  # counters ready before the first buyer, after commit
        session.info.setdefault("after_commit", []).append(
            lambda facts=_facts(item), quota=item.quota: (
                gate.describe(**facts), gate.load(item_id=facts["item_id"], remaining=quota, buyers={},
                                                  only_if_missing=True))
        )  # fmt: skip
    events.record(session, "flash_sale.scheduled", aggregate="flash_sale", aggregate_id=sale.id, actor=actor)
    return sale


def get_sale(session: Session, sale_id: int) -> FlashSale:
    sale = session.get(FlashSale, sale_id)
    if sale is None or sale.status == "cancelled":
        raise NotFound("flash_sale.not_found", f"Flash sale {sale_id} not found.")
    return sale


def phase(sale: FlashSale, now: datetime) -> str:
    return "upcoming" if now < sale.starts_at else "live" if now < sale.ends_at else "ended"


def list_sales(session: Session, *, when: str | None, limit: int = 50) -> list[FlashSale]:
    now = clock.now()
    query = sa.select(FlashSale).where(FlashSale.status == "scheduled").order_by(FlashSale.starts_at, FlashSale.id)
    if when == "upcoming":
        query = query.where(FlashSale.starts_at > now)
    elif when == "live":
        query = query.where(FlashSale.starts_at <= now, FlashSale.ends_at > now)
    elif when == "ended":
        query = query.where(FlashSale.ends_at <= now)
    return list(session.scalars(query.limit(limit)))


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _facts(item: FlashItem) -> dict:
    sale = item.sale
    return dict(item_id=item.id, sale_id=sale.id, starts_ms=_ms(sale.starts_at), ends_ms=_ms(sale.ends_at),
                limit=item.per_shopper_limit, open=sale.status != "cancelled")  # fmt: skip


def describe(gate: Gate, item: FlashItem) -> None:
    """Tell the gate the item's facts its script checks: sale, window, per-shopper limit, open or cancelled.
    Nothing changes them once scheduled; a sale cancelled in the database is refused from the next rebuild or
    reconciliation on (the reconcile job runs every five minutes during a sale)."""
    gate.describe(**_facts(item))


def _item(session: Session, sale_id: int, item_id: int) -> FlashItem:
    # One round trip for the item, its sale, SKU and product (the order needs them all).
    item = session.get(FlashItem, item_id, options=[orm.joinedload(FlashItem.sale),
                                                    orm.joinedload(FlashItem.sku).joinedload(Sku.product)])  # fmt: skip
    if item is None or item.sale_id != sale_id or item.sale.status == "cancelled":
        raise NotFound("flash_sale.item_not_found", f"Flash item {item_id} not found.")
    return item


def admit(session: Session, gate: Gate, *, sale_id: int, item_id: int, user_id: int, quantity: int,
          once: Once | None = None, guard: Guard | None = None) -> str:  # fmt: skip
    """The Redis step: no database read unless the gate has lost the item (Redis restarted or flushed), in
    which case the counters and facts are rebuilt from the database (and the key looked up there), then the
    script runs once more. Raises Seen for a key used before. With a `guard` the script first checks its key's
    value; if it differs, `guard.check()` decides the slow way (and raises if the caller may not go on), then
    the script runs without it. Returns the counters' epoch the admission was counted in."""
    args = dict(item_id=item_id, sale_id=sale_id, user_id=user_id, quantity=quantity, now_ms=_ms(clock.now()),
                once=once)  # fmt: skip
    outcome, seen, epoch = gate.admit(**args, guard=guard)
    if outcome == "guard_failed":
        guard.check()
        outcome, seen, epoch = gate.admit(**args)
    elif guard is not None:
        guard.held()
    for attempt in range(3):  # lost again between the rebuild and the script: rebuilt again
        if outcome != "not_loaded":
            break
        rebuild(session, gate, item=_item(session, sale_id, item_id))
        if once is not None and attempt == 0:
            _seen_in_database(session, user_id, once)
        outcome, seen, epoch = gate.admit(**args)
    if outcome == "not_loaded":
        raise Unavailable("flash_sale.counters_lost", "The sale's counters keep being lost; try again shortly.")
    if outcome == "seen":
        raise seen
    if outcome == "not_found":
        raise NotFound("flash_sale.item_not_found", f"Flash item {item_id} not found.")
    if outcome != "admitted":
        raise Conflict(REJECTIONS[outcome], f"Not admitted: {outcome.replace('_', ' ')}.")
    return epoch


def _seen_in_database(session: Session, user_id: int, once: Once) -> None:
    record = session.scalar(sa.select(IdempotencyRecord).filter_by(user_id=user_id, scope=once.scope, key=once.key))
    if record is not None:
        response = None
        if record.response is not None:  # as the edge sends JSON: compact, UTF-8
            response = json.dumps(record.response, ensure_ascii=False, separators=(",", ":")) + "\n"
        raise Seen(record.request_hash, record.status_code, response)


def purchase(session: Session, gate: Gate, *, sale_id: int, item_id: int, user_id: int, quantity: int,
             address_id: int, once: Once | None = None, guard: Guard | None = None,
             on_placed: Callable[[Order], None] | None = None, coupon_ids: list[int] | None = None,
             origin: Source | None = None) -> Order:  # fmt: skip
    """Admit in Redis first (a refusal reads nothing from the database), then in this transaction: the item
    and the address, a pending order at the flash price with the sale's short payment window, whatever
    `on_placed(order)` adds to the transaction (the idempotency record), and last the two hot rows: the
    database's own quota, stock and per-shopper checks. The caller should commit at once. `coupon_ids`: the
    coupons to use, by the checkout's rules (a template must name `flash_sale` in `combinable_with`); None
    (the usual case) does no coupon work at all. `origin`: the live or guide link the shopper came with (else
    their cart line's), kept on the order line beside the sale's own source. If anything here
    fails the units (and the key) go back; if the caller's commit fails, it calls `undo` (with the epoch left
    in `session.info["flash_epoch"]`). After the commit, `settle` runs (an after-commit callback: the caller
    calls events.release): it puts the units in counters rebuilt while this purchase was in flight."""
    epoch = admit(session, gate, sale_id=sale_id, item_id=item_id, user_id=user_id, quantity=quantity, once=once,
                  guard=guard)  # fmt: skip
    session.info["flash_epoch"] = epoch
    try:
        item = _item(session, sale_id, item_id)
        order = place_direct(
            session, shopper_id=user_id, sku_id=item.sku_id, quantity=quantity, unit_price=item.flash_price,
            price_source="flash_sale", source=_source(item), address_id=address_id,
            payment_window=timedelta(minutes=item.sale.payment_minutes), reserve=False, coupon_ids=coupon_ids,
            origin=origin, flash_item_id=item.id,
        )  # fmt: skip
        pay_if_free(session, order=order)  # coupons covered it all (before the response is kept)
        if on_placed is not None:
            on_placed(order)
        session.flush()  # every other row is written before the hot ones are taken
        marker = _take_units(session, item, user_id, order.id, quantity)
    except BaseException:
        undo(gate, item_id=item_id, user_id=user_id, quantity=quantity, once=once, epoch=epoch)
        raise
    admitted = Admitted(item_id, user_id, quantity, epoch, marker)
    session.info.setdefault("after_commit", []).append(lambda: _settle_after_commit(session, gate, admitted))
    return order


def _source(item: FlashItem) -> dict:
    return {"type": "flash_sale", "sale_id": item.sale_id, "item_id": item.id}


def quote(session: Session, *, sale_id: int, item_id: int, user_id: int, quantity: int,
          coupon_ids: list[int] | None) -> Quote:  # fmt: skip
    """What a purchase would cost, priced as the purchase prices it: the flash price, shipping, and the shopper's
    coupons listed as usable or not with the checkout's reason codes (`coupon_ids` omitted: none applied, the
    best marked). Admission is not checked (the sale may not have started); nothing changes."""
    item = _item(session, sale_id, item_id)
    return quote_direct(session, shopper_id=user_id, sku_id=item.sku_id, quantity=quantity,
                        unit_price=item.flash_price, price_source="flash_sale", source=_source(item),
                        coupon_ids=coupon_ids or [])  # fmt: skip


def undo(gate: Gate, *, item_id: int, user_id: int, quantity: int, once: Once | None = None,
         epoch: str | None = None) -> None:  # fmt: skip
    """An admitted purchase was not recorded: its idempotency key goes, and its units go back to the counters
    it was counted in (`epoch`; counters rebuilt since never counted it)."""
    gate.release(item_id=item_id, user_id=user_id, quantity=quantity, once=once, epoch=epoch or "")


@dataclass(frozen=True)
class Admitted:
    """A recorded purchase: its units, the counters' epoch it was admitted in, and how a database read tells
    whether it saw the purchase's commit (its transaction id on PostgreSQL, its flash order's id on SQLite)."""

    item_id: int
    user_id: int
    quantity: int
    epoch: str
    marker: str


def settle(session: Session, gate: Gate, admitted: Admitted) -> None:
    """After the purchase's commit: if the counters were rebuilt (Redis lost them) or reconciled while it was in
    flight and that read of the database did not see its commit, its units are taken from them now, so the
    counters agree with the database as soon as the purchases admitted before the loss finish. Nothing to do
    (one script call) in the usual case."""
    for _ in range(5):  # each turn another rebuild came in between; in practice one turn
        current = gate.epoch(admitted.item_id)
        if current == admitted.epoch:
            return
        if current is None:  # lost again: rebuilt from the database, which holds this purchase now
            rebuild(session, gate, item=session.get(FlashItem, admitted.item_id))
            continue
        if _saw(session, current, admitted.marker):
            return
        if gate.take(item_id=admitted.item_id, user_id=admitted.user_id, quantity=admitted.quantity, epoch=current):
            return
    log.warning("flash item %s: counters kept moving; the reconcile job will align them", admitted.item_id)


def _settle_after_commit(session: Session, gate: Gate, admitted: Admitted) -> None:
    """The purchase is committed whatever happens here: a failure (Redis or the database unreachable) is logged,
    and the reconcile job aligns the counters."""
    try:
        settle(session, gate, admitted)
    except Exception:
        log.warning("flash item %s: counters not settled after a purchase", admitted.item_id, exc_info=True)


def _saw(session: Session, epoch: str, marker: str) -> bool:
    """Whether the database read the counters of `epoch` were loaded from saw the purchase marked `marker`."""
    kind, _, read = epoch.partition("#")[0].partition(":")
    if kind == "pg":
        return bool(session.scalar(_VISIBLE, {"xid": marker, "snapshot": read}))
    if kind == "seq":  # SQLite: one writer at a time, so flash orders are committed in the order of their ids
        return int(marker) <= int(read)
    return False  # "": loaded when the sale was scheduled, before any purchase


_VISIBLE = sa.text("SELECT pg_visible_in_snapshot(CAST(:xid AS xid8), CAST(:snapshot AS pg_snapshot))")


def _take_units(session: Session, item: FlashItem, user_id: int, order_id: int, quantity: int) -> str:
    """Every admitted purchase takes two hot rows, the item's sold count and the SKU's stock, and holds them
    until its commit. They are taken last, in the order a cancellation takes them (give_back moves the item
    when the order's cancellation is recorded, then the stock is released), so the two never wait on each
    other; on PostgreSQL in one round trip, so that concurrent purchases queue behind each other only for
    that statement and the commit. Returns the purchase's marker (see `Admitted`)."""
    if session.get_bind().dialect.name == "postgresql":
        taken, stocked, recorded, marker = session.execute(TAKE_UNITS_PG, {
            "sku": item.sku_id, "item": item.id, "user": user_id, "order": order_id, "qty": quantity,
            "limit": item.per_shopper_limit, "now": clock.now()}).one()  # fmt: skip
    else:  # SQLite: one writer at a time anyway
        taken = session.execute(
            sa.update(FlashItem).where(FlashItem.id == item.id, FlashItem.sold + quantity <= FlashItem.quota)
            .values(sold=FlashItem.sold + quantity),
            execution_options={"synchronize_session": False},
        ).rowcount  # fmt: skip
        if taken:
            inventory.reserve(session, {item.sku_id: quantity})
        stocked = True
        table = FlashBuyer.__table__
        recorded = taken and insert_on_conflict(
            session, table, index_elements=["item_id", "user_id"],
            values={"item_id": item.id, "user_id": user_id, "quantity": quantity},
            update={"quantity": table.c.quantity + quantity}, where=table.c.quantity + quantity <= item.per_shopper_limit,
        )  # fmt: skip
        marker = None
        if recorded:
            record = FlashOrder(item_id=item.id, user_id=user_id, order_id=order_id, quantity=quantity)
            session.add(record)
            session.flush()
            marker = str(record.id)
    if not taken:
        raise Conflict("flash_sale.sold_out", "Not admitted: sold out.")
    if not stocked:
        raise Conflict("stock.insufficient", f"Not enough stock for SKU {item.sku_id}.", sku_id=item.sku_id)
    if not recorded:
        raise Conflict("flash_sale.limit_reached", "Not admitted: limit reached.")
    return marker


# _take_units on PostgreSQL: the database's quota guard, the stock, its per-shopper guard and the record, in
# one statement. Each step runs only if the one before it succeeded (the item's lock is taken before the
# SKU's); returns how many rows each guard let through (0: refused, the caller raises and rolls back).
TAKE_UNITS_PG = sa.text("""
WITH taken AS (
    UPDATE flash_items SET sold = sold + :qty WHERE id = :item AND sold + :qty <= quota RETURNING id
), stocked AS (
    UPDATE skus SET stock = stock - :qty
    WHERE id = :sku AND stock >= :qty AND status = 'active' AND EXISTS (SELECT FROM taken) RETURNING id
), buyer AS (
    INSERT INTO flash_buyers (item_id, user_id, quantity) SELECT :item, :user, :qty FROM stocked
    ON CONFLICT (item_id, user_id) DO UPDATE SET quantity = flash_buyers.quantity + excluded.quantity
    WHERE flash_buyers.quantity + excluded.quantity <= :limit
    RETURNING item_id
), recorded AS (
    INSERT INTO flash_orders (item_id, user_id, order_id, quantity, status, created_at)
    SELECT item_id, :user, :order, :qty, 'active', :now FROM buyer RETURNING id
)
SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM stocked), (SELECT count(*) FROM recorded),
       pg_current_xact_id()::text
""")


def give_back(session: Session, gate: Gate, *, order_id: int) -> bool:
    """The flash order was cancelled or timed out: its units return to the quota exactly once
    (the conditional status change is the guard; Redis is told only after it)."""
    record = session.scalar(sa.select(FlashOrder).filter_by(order_id=order_id))
    if record is None:
        return False
    released = session.execute(
        sa.update(FlashOrder)
        .where(FlashOrder.id == record.id, FlashOrder.status == "active")
        .values(status="released"),
        execution_options={"synchronize_session": False},
    )
    if released.rowcount != 1:
        return False
    session.execute(sa.update(FlashItem).where(FlashItem.id == record.item_id)
                    .values(sold=FlashItem.sold - record.quantity))  # fmt: skip
    session.execute(sa.update(FlashBuyer).filter_by(item_id=record.item_id, user_id=record.user_id)
                    .values(quantity=FlashBuyer.quantity - record.quantity))  # fmt: skip
    session.info.setdefault("after_commit", []).append(
        lambda: gate.release(item_id=record.item_id, user_id=record.user_id, quantity=record.quantity)
    )
    return True


def truth(session: Session, item_id: int) -> tuple[int, dict[int, int]]:
    """What the database says: units left and units held per shopper (active flash orders)."""
    remaining, buyers, _ = _truth_read(session, item_id)
    return remaining, buyers


def _truth_read(session: Session, item_id: int, *, to_load: bool = False) -> tuple[int, dict[int, int], str]:
    """`truth`, and the epoch of that read (what it saw, for `settle`), in one statement: one snapshot.
    `to_load`: the counters will be loaded from it, so no purchase may commit between this read and that load
    (it would settle against the counters there before, then vanish from the ones loaded): the item's row is
    taken first (a purchase takes it to record its units; on SQLite this takes the write lock) and held until
    the caller's transaction ends. A purchase thus commits before the read (and is in it) or after the load
    (and settles against it)."""
    if to_load:
        session.execute(sa.update(FlashItem).where(FlashItem.id == item_id).values(sold=FlashItem.sold),
                        execution_options={"synchronize_session": False})  # fmt: skip
    item = session.get(FlashItem, item_id)
    postgres = session.get_bind().dialect.name == "postgresql"
    rows = session.execute(_TRUTH_PG if postgres else _TRUTH_SQLITE, {"item": item_id}).all()
    buyers = {user_id: int(qty) for _, user_id, qty in rows if user_id is not None}
    # unique per load: two reads with nothing committed between them look alike, but counters loaded from the
    # second did not count what was admitted into those loaded from the first
    epoch = f"{'pg' if postgres else 'seq'}:{rows[0][0]}#{uuid.uuid4().hex[:12]}"
    return item.quota - sum(buyers.values()), buyers, epoch


_HELD = """LEFT JOIN (SELECT user_id, sum(quantity) AS qty FROM flash_orders WHERE item_id = :item AND status = 'active'
           GROUP BY user_id) AS held ON 1 = 1"""
_TRUTH_PG = sa.text(
    f"SELECT read.at, held.user_id, held.qty FROM (SELECT pg_current_snapshot()::text AS at) AS read {_HELD}"
)
_TRUTH_SQLITE = sa.text(
    f"SELECT read.at, held.user_id, held.qty FROM (SELECT coalesce(max(id), 0) AS at FROM flash_orders) AS read {_HELD}"
)


def rebuild(session: Session, gate: Gate, *, item: FlashItem) -> None:
    """Counters are missing (Redis lost them): load them from the database unless another request
    already did (`only_if_missing`), so concurrent requests do not reset each other's admissions.
    Purchases still in flight are not in this read: each takes its units once committed (`settle`)."""
    remaining, buyers, epoch = _truth_read(session, item.id, to_load=True)
    describe(gate, item)
    gate.load(item_id=item.id, remaining=remaining, buyers=buyers, only_if_missing=True, epoch=epoch)


def compare(session: Session, gate: Gate, *, item_id: int) -> dict:
    """Redis's counters of an item against the database's, changing neither: what `reconcile` would find (the
    audit's check, `mall.audit`). `agree` is False where a purchase is in flight or Redis lost the counters."""
    remaining, buyers, _ = _truth_read(session, item_id, to_load=False)
    redis_remaining, redis_buyers = gate.counters(item_id)
    return {"item_id": item_id, "agree": redis_remaining == remaining and redis_buyers == buyers,
            "database_remaining": remaining, "redis_remaining": redis_remaining,
            "database_buyers": buyers, "redis_buyers": redis_buyers}  # fmt: skip


def reconcile(session: Session, gate: Gate, *, item_id: int) -> dict:
    """Compare Redis with the database; fix Redis if they disagree. Returns what it found. (Purchases in
    flight make them differ for a moment; each takes its units from the reloaded counters once committed.)"""
    remaining, buyers, epoch = _truth_read(session, item_id, to_load=True)
    redis_remaining, redis_buyers = gate.counters(item_id)
    describe(gate, session.get(FlashItem, item_id))  # the facts are the database's: rewritten every time
    agree = redis_remaining == remaining and redis_buyers == buyers
    if not agree:
        gate.load(item_id=item_id, remaining=remaining, buyers=buyers, epoch=epoch)
    return {"item_id": item_id, "agree": agree, "database_remaining": remaining, "redis_remaining": redis_remaining}


def remind_me(session: Session, *, sale_id: int, user_id: int) -> FlashReminder:
    sale = get_sale(session, sale_id)
    if clock.now() >= sale.starts_at:
        raise Conflict("flash_sale.already_started", "This flash sale has already started.")
    reminder = session.scalar(sa.select(FlashReminder).filter_by(sale_id=sale_id, user_id=user_id))
    if reminder is None:
        reminder = FlashReminder(sale_id=sale_id, user_id=user_id)
        session.add(reminder)
        session.flush()
        notify(session, user_id=user_id, template_key="flash_sale.starting", dedupe_key=f"flash-{sale_id}-{user_id}",
               payload={"sale_id": sale_id, "name": sale.name, "starts_at": sale.starts_at.isoformat()},
               send_after=max(clock.now(), sale.starts_at - REMIND_BEFORE))  # fmt: skip
    return reminder
