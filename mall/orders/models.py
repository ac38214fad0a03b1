from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mall.db import Base, JSONType, Timestamped

Amount = sa.BigInteger
UNSETTLED = sa.text("settled_at IS NULL AND after_sale_deadline IS NOT NULL")
LIVE = sa.text("live_room_id IS NOT NULL")
GUIDED = sa.text("guide_id IS NOT NULL")


class Order(Timestamped, Base):
    """What the shopper pays once for; holds one sub-order per brand."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.Index("ix_orders_user", "user_id", "id"),
        sa.Index("ix_orders_unpaid_expiry", "expires_at", postgresql_where=sa.text("status = 'pending_payment'"),
                 sqlite_where=sa.text("status = 'pending_payment'")),
        sa.CheckConstraint("payable_total >= 0 AND paid_total >= 0 AND refunded_total <= paid_total", name="money"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending_payment")
    currency: Mapped[str] = mapped_column(sa.String(3))
    items_total: Mapped[int] = mapped_column(Amount)
    discount_total: Mapped[int] = mapped_column(Amount)
    shipping_total: Mapped[int] = mapped_column(Amount)
    payable_total: Mapped[int] = mapped_column(Amount)
    paid_total: Mapped[int] = mapped_column(Amount, default=0)
    refunded_total: Mapped[int] = mapped_column(Amount, default=0)
    address: Mapped[dict] = mapped_column(JSONType)  # snapshot: later edits of the address do not move it
    discounts: Mapped[list] = mapped_column(JSONType, default=list)  # the quote's discounts with allocations
    expires_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(40))

    sub_orders: Mapped[list[SubOrder]] = relationship(back_populates="order", order_by="SubOrder.id")
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.id")


class SubOrder(Timestamped, Base):
    """One brand's part of an order: shipped, confirmed, refunded and settled on its own."""

    __tablename__ = "sub_orders"
    __table_args__ = (
        sa.Index("ix_sub_orders_brand", "brand_id", "id"),
        sa.Index("ix_sub_orders_auto_confirm", "auto_confirm_at", postgresql_where=sa.text("status = 'shipped'"),
                 sqlite_where=sa.text("status = 'shipped'")),
        # The settlement sweep's candidates: windows still to settle, by deadline (settled ones leave the index).
        sa.Index("ix_sub_orders_settle_due", "after_sale_deadline", postgresql_where=UNSETTLED,
                 sqlite_where=UNSETTLED),
        sa.CheckConstraint("open_after_sales >= 0", name="open_after_sales"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    brand_id: Mapped[int] = mapped_column(sa.ForeignKey("brands.id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending_payment")
    # Paid but not shippable yet (e.g. "group_forming" until the group-buy succeeds).
    fulfilment_hold: Mapped[str | None] = mapped_column(sa.String(30))
    items_total: Mapped[int] = mapped_column(Amount)
    discount_total: Mapped[int] = mapped_column(Amount)
    shipping_fee: Mapped[int] = mapped_column(Amount)
    payable_total: Mapped[int] = mapped_column(Amount)
    refunded_total: Mapped[int] = mapped_column(Amount, default=0)
    carrier: Mapped[str | None] = mapped_column(sa.String(40))
    tracking_number: Mapped[str | None] = mapped_column(sa.String(64))
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    auto_confirm_at: Mapped[datetime | None]
    # Commission and points settle when this closes (stored per sub-order, set on completion).
    after_sale_deadline: Mapped[datetime | None]
    # After-sale cases still open (requested, not decided): a request adds one by a conditional UPDATE that
    # also requires `settled_at IS NULL`, a decision takes it away. The settlement sweep settles only at 0, and
    # since both are on this row, a request racing the sweep either opens its case or is refused (ADR 0011).
    open_after_sales: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    # Set once by the settlement sweep (mall/orders/settlement.py): no refund can happen after it.
    settled_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="sub_orders")
    lines: Mapped[list[OrderLine]] = relationship(back_populates="sub_order", order_by="OrderLine.id")


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        sa.CheckConstraint("refunded_quantity <= quantity AND refunded_amount <= payable", name="refund_within_paid"),
        sa.CheckConstraint("live_touch IN ('direct', 'indirect')", name="live_touch"),
        # A live room's numbers (mall.live.numbers): its lines, by pin segment. Partial: most lines are not live.
        sa.Index("ix_order_lines_live_room", "live_room_id", "live_segment_id",
                 postgresql_where=LIVE, sqlite_where=LIVE),
        sa.Index("ix_order_lines_live_host", "live_host_id", postgresql_where=LIVE, sqlite_where=LIVE),
        # The guide binding in force at placement (mall.guides.binding): partial, most lines have no guide. With the
        # order id, a guide's orders are an index-only walk newest first (mall.guides.workbench, ADR 0025).
        sa.Index("ix_order_lines_guide", "guide_id", "order_id", postgresql_where=GUIDED, sqlite_where=GUIDED),
        sa.Index("ix_order_lines_guide_binding", "guide_binding_id", postgresql_where=GUIDED, sqlite_where=GUIDED),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    sub_order_id: Mapped[int] = mapped_column(sa.ForeignKey("sub_orders.id"), index=True)
    sku_id: Mapped[int] = mapped_column(sa.ForeignKey("skus.id"), index=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"))
    title: Mapped[str] = mapped_column(sa.String(200))
    specs: Mapped[dict] = mapped_column(JSONType, default=dict)
    unit_price: Mapped[int] = mapped_column(Amount)
    quantity: Mapped[int]
    subtotal: Mapped[int] = mapped_column(Amount)
    discount_total: Mapped[int] = mapped_column(Amount)
    payable: Mapped[int] = mapped_column(Amount)
    discounts: Mapped[dict] = mapped_column(JSONType, default=dict)  # discount source -> amount on this line
    source: Mapped[dict] = mapped_column(JSONType, default=dict)  # attribution, copied from the cart line
    refunded_quantity: Mapped[int] = mapped_column(default=0)
    # Units in open after-sale requests: a request takes them by a conditional UPDATE (refunded + requested never
    # exceeds quantity), a rejection gives them back, an approval moves them to refunded_quantity.
    requested_quantity: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))
    refunded_amount: Mapped[int] = mapped_column(Amount, default=0)
    # A part of an ordered bundle (ADR 0010): the bundle, and how many bundles were bought (`quantity` counts this
    # part's units: the bundle's quantity of it times bundle_quantity). NULL for a line of a SKU bought alone.
    bundle_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bundles.id"))
    bundle_quantity: Mapped[int | None]
    # Live attribution (ADR 0017), from the line's live source (its own, or the one a flash or group-buy line
    # carries under `origin`) at placement: the room, host, pin segment and link, and whether the order was placed
    # within the viewing session ('direct'), within the brand's longer window ('indirect'), or later (NULL: the
    # room is kept, but the line is not the room's sale). Plain ids from a signed source, not foreign keys.
    live_room_id: Mapped[int | None]
    live_host_id: Mapped[int | None]
    live_segment_id: Mapped[int | None]
    live_link_id: Mapped[int | None]
    live_touch: Mapped[str | None] = mapped_column(sa.String(8))
    guide_id: Mapped[int | None]  # the guide the shopper was bound to in this brand at placement
    guide_binding_id: Mapped[int | None]  # that binding (its reason says why)

    order: Mapped[Order] = relationship(back_populates="lines")
    sub_order: Mapped[SubOrder] = relationship(back_populates="lines")


class IdempotencyRecord(Base):
    """The first response to (caller, scope, key), replayed for retries of the same request."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "scope", "key"),
        sa.Index("ix_idempotency_records_created", "created_at"),  # retention (mall/retention.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int]
    scope: Mapped[str] = mapped_column(sa.String(60))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None]
    response: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime]


class RefundLine(Base):
    """One part of a refund on one order line (or, `order_line_id` empty, on a sub-order's shipping fee): the
    ledger behind `order_lines.refunded_*` and `sub_orders.refunded_total`, written by every path that returns
    money (mall.orders.refunds). A line's rows sum to its refunded quantity and amount; a line refunded in
    several parts is priced by the cumulative split, so they sum to exactly what it paid."""

    __tablename__ = "refund_lines"
    __table_args__ = (sa.CheckConstraint("amount >= 0 AND quantity >= 0", name="non_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    sub_order_id: Mapped[int] = mapped_column(sa.ForeignKey("sub_orders.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(sa.ForeignKey("order_lines.id"), index=True)
    quantity: Mapped[int]
    amount: Mapped[int] = mapped_column(Amount)
    reason: Mapped[str] = mapped_column(sa.String(40))  # after_sale | group_failed | left_group | external | ...
    reference: Mapped[str] = mapped_column(sa.String(255))  # after-sale-{id}, group-…-member-…, external-re_…
    created_at: Mapped[datetime]
