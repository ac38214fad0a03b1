"""Group-buy (拼团): open by paying the leader order, join by the share link, succeed at N paid members,
or fail when time runs out and refund every paid member exactly once. No fake members, ever."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock, events
from mall.attribution import Source
from mall.checkout.pricing import Quote
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.identity.roles import Actor
from mall.notifications.services import notify
from mall.orders import refunds
from mall.orders import services as orders
from mall.orders.models import Order, SubOrder
from mall.promotions.group_buy.models import Group, GroupCampaign, GroupMember

HOLD = "group_forming"


def create_campaign(session: Session, *, actor: Actor, brand_id: int, **fields) -> GroupCampaign:
    from mall.catalog.models import Sku

    if not actor.can_manage_brand(brand_id):
        raise Forbidden("group_buy.other_brand", "You can only run your own brand's group-buys.")
    sku = session.get(Sku, fields["sku_id"])
    if sku is None or sku.product.brand_id != brand_id:
        raise Invalid("group_buy.sku_unknown", "That SKU is not this brand's.", field="sku_id")
    if fields["group_price"] > sku.price:
        raise Invalid("group_buy.price_above_normal", "A group price is below the normal price.", field="group_price")
    campaign = GroupCampaign(brand_id=brand_id, **fields)
    session.add(campaign)
    session.flush()
    return campaign


def get_group(session: Session, group_id: int) -> Group:
    group = session.get(Group, group_id)
    if group is None:
        raise NotFound("group_buy.group_not_found", f"Group {group_id} not found.")
    return group


def _campaign_open(session: Session, campaign_id: int) -> GroupCampaign:
    campaign = session.get(GroupCampaign, campaign_id)
    now = clock.now()
    if campaign is None or campaign.status != "active":
        raise NotFound("group_buy.campaign_not_found", f"Group-buy {campaign_id} not found.")
    if not campaign.starts_at <= now < campaign.ends_at:
        raise Conflict("group_buy.not_running", "This group-buy is not running now.")
    return campaign


def _check_shopper(session: Session, campaign: GroupCampaign, user_id: int, *, joining: bool) -> None:
    taken = session.scalar(
        sa.select(sa.func.count()).select_from(GroupMember).join(Group)
        .where(Group.campaign_id == campaign.id, GroupMember.user_id == user_id,
               GroupMember.status.in_(("holding", "paid")))
    )  # fmt: skip
    if taken >= campaign.per_shopper_limit:
        raise Conflict("group_buy.limit_reached", "You already take part in this group-buy as often as allowed.")
    if joining and campaign.new_shoppers_only:
        paid = sa.select(Order.id).where(Order.user_id == user_id, Order.paid_at.is_not(None)).limit(1)
        if session.scalar(paid) is not None:
            raise Forbidden("group_buy.new_shoppers_only", "Only new shoppers may join this group.")


def _order(session: Session, campaign: GroupCampaign, user_id: int, address_id: int, price: int, group_id=None,
           coupon_ids: list[int] | None = None, origin: Source | None = None) -> Order:  # fmt: skip
    return orders.place_direct(
        session, shopper_id=user_id, sku_id=campaign.sku_id, quantity=1, unit_price=price, price_source="group_buy",
        source=_source(campaign, group_id), address_id=address_id,
        payment_window=timedelta(minutes=campaign.payment_minutes), coupon_ids=coupon_ids, origin=origin,
    )  # fmt: skip


def _source(campaign: GroupCampaign, group_id: int | None) -> dict:
    return {"type": "group_buy", "campaign_id": campaign.id, "group_id": group_id}


def _leader_price(campaign: GroupCampaign) -> int:
    return campaign.group_price - campaign.leader_discount


def quote_open(session: Session, *, campaign_id: int, user_id: int, coupon_ids: list[int] | None) -> Quote:
    """What opening a group would cost the leader (the leader's price), with the shopper's coupons listed as
    usable or not by the checkout's rules (a template must name `group_buy` in `combinable_with`). Nothing
    changes; the seat and the limits are checked when the group is opened."""
    campaign = _campaign_open(session, campaign_id)
    return _quote(session, campaign, user_id, _leader_price(campaign), None, coupon_ids)


def quote_join(session: Session, *, group_id: int, user_id: int, coupon_ids: list[int] | None) -> Quote:
    """What joining this group would cost, as `quote_open` for a member."""
    group = get_group(session, group_id)
    campaign = _campaign_open(session, group.campaign_id)
    return _quote(session, campaign, user_id, campaign.group_price, group.id, coupon_ids)


def _quote(session: Session, campaign: GroupCampaign, user_id: int, price: int, group_id, coupon_ids) -> Quote:
    return orders.quote_direct(session, shopper_id=user_id, sku_id=campaign.sku_id, quantity=1, unit_price=price,
                               price_source="group_buy", source=_source(campaign, group_id),
                               coupon_ids=coupon_ids or [])  # fmt: skip


def open_group(session: Session, *, campaign_id: int, user_id: int, address_id: int,
               coupon_ids: list[int] | None = None, origin: Source | None = None) -> tuple[Group, Order]:  # fmt: skip
    """The leader's order (with the leader discount, and the coupons named, if they combine with group-buy);
    the group forms once it is paid. `origin`: the live or guide link the shopper came with (else their cart
    line's), kept on the order line beside the group-buy's own source; so for `join`."""
    campaign = _campaign_open(session, campaign_id)
    _check_shopper(session, campaign, user_id, joining=False)
    group = Group(campaign_id=campaign.id, leader_id=user_id, group_size=campaign.group_size)
    session.add(group)
    session.flush()
    order = _order(session, campaign, user_id, address_id, _leader_price(campaign), group.id, coupon_ids,
                   origin)  # fmt: skip
    session.add(GroupMember(group_id=group.id, user_id=user_id, order_id=order.id, is_leader=True))
    session.flush()
    orders.pay_if_free(session, order=order)  # coupons covered it all: paid, so the group forms
    return group, order


def join(
    session: Session, *, group_id: int, user_id: int, address_id: int, coupon_ids: list[int] | None = None,
    origin: Source | None = None,
) -> Order:  # fmt: skip
    """Take a seat atomically (never more than N holders), then the member's order. An unpaid seat is
    held only for the payment window."""
    group = get_group(session, group_id)
    campaign = _campaign_open(session, group.campaign_id)
    if session.scalar(sa.select(GroupMember.id).filter_by(group_id=group_id, user_id=user_id)
                      .where(GroupMember.status.in_(("holding", "paid")))) is not None:  # fmt: skip
        raise Conflict("group_buy.already_member", "You are already in this group.")
    _check_shopper(session, campaign, user_id, joining=True)
    seated = session.execute(
        sa.update(Group)
        .where(Group.id == group_id, Group.status == "forming", Group.seats_taken < Group.group_size,
               Group.expires_at > clock.now())
        .values(seats_taken=Group.seats_taken + 1),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    if seated.rowcount != 1:
        raise Conflict("group_buy.full", "This group is full, closed or not open yet.")
    order = _order(session, campaign, user_id, address_id, campaign.group_price, group.id, coupon_ids, origin)
    session.add(GroupMember(group_id=group.id, user_id=user_id, order_id=order.id))
    session.flush()
    _tell_members(session, group, "group_buy.joined", {"group_id": group.id})
    orders.pay_if_free(session, order=order)
    return order


def on_paid(session: Session, event) -> None:
    """Reaction to order.paid: count the member; the leader's payment opens the group; N paid: success."""
    order = session.get(Order, event.aggregate_id)  # in the session already: the payment just moved it
    if not any(line.source.get("type") == "group_buy" for line in order.lines):
        return  # not a group-buy order (paying loads the lines anyway, to count sales)
    member = session.scalar(sa.select(GroupMember).filter_by(order_id=event.aggregate_id))
    if member is None or member.status != "holding":
        return
    member.status = "paid"
    group = session.get(Group, member.group_id)
    _hold_fulfilment(session, member.order_id)
    if member.is_leader:
        campaign = session.get(GroupCampaign, group.campaign_id)
        session.execute(
            sa.update(Group)
            .where(Group.id == group.id, Group.status == "opening")
            .values(status="forming", paid_count=1, expires_at=clock.now() + timedelta(hours=campaign.form_hours))
        )
        session.refresh(group)
        _schedule_closing_reminder(session, group)
        events.record(session, "group.formed", aggregate="group", aggregate_id=group.id,
                      expires_at=group.expires_at.isoformat())  # fmt: skip
        return
    counted = session.execute(
        sa.update(Group).where(Group.id == group.id, Group.status == "forming", Group.paid_count < Group.group_size)
        .values(paid_count=Group.paid_count + 1),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    session.refresh(group)
    if counted.rowcount == 1 and group.paid_count == group.group_size:
        _succeed(session, group, on_expiry=False)


def _hold_fulfilment(session: Session, order_id: int) -> None:
    session.execute(sa.update(SubOrder).where(SubOrder.order_id == order_id).values(fulfilment_hold=HOLD))


def _succeed(session: Session, group: Group, *, on_expiry: bool) -> bool:
    moved = session.execute(
        sa.update(Group).where(Group.id == group.id, Group.status == "forming")
        .values(status="succeeded", closed_at=clock.now(), completed_on_expiry=on_expiry),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    if moved.rowcount != 1:
        return False
    paid_orders = sa.select(GroupMember.order_id).where(GroupMember.group_id == group.id, GroupMember.status == "paid")
    session.execute(sa.update(SubOrder).where(SubOrder.order_id.in_(paid_orders), SubOrder.fulfilment_hold == HOLD)
                    .values(fulfilment_hold=None))  # fmt: skip
    session.refresh(group)
    events.record(session, "group.succeeded", aggregate="group", aggregate_id=group.id, on_expiry=on_expiry)
    _tell_members(session, group, "group_buy.succeeded", {"group_id": group.id})
    return True


def on_cancelled(session: Session, event) -> None:
    """An unpaid member's order was cancelled or timed out: the seat is free again."""
    member = session.scalar(sa.select(GroupMember).filter_by(order_id=event.aggregate_id))
    if member is None or member.status != "holding":
        return
    member.status = "left"
    session.execute(sa.update(Group).where(Group.id == member.group_id, Group.seats_taken > 0)
                    .values(seats_taken=Group.seats_taken - 1))  # fmt: skip


def expire(session: Session, *, group_id: int) -> str:
    """The job at the end of the forming time: success on expiry only where the campaign says so, otherwise
    failure. Either is one conditional status UPDATE checked by its row count, so two runs (two workers, or a
    job and the sweep; on SQLite a row lock is no guard) record `group.failed` or `group.succeeded` once. The
    members are settled afterwards, each in its own unit of work (`unsettled_members`, `settle_member`)."""
    group = session.get(Group, group_id)
    if group is None or group.status != "forming" or group.expires_at > clock.now():
        return "noop"
    campaign = session.get(GroupCampaign, group.campaign_id)
    if campaign.complete_on_expiry:
        return "succeeded_on_expiry" if _succeed(session, group, on_expiry=True) else "noop"
    now = clock.now()
    failed = session.execute(
        sa.update(Group).where(Group.id == group.id, Group.status == "forming", Group.expires_at <= now)
        .values(status="failed", closed_at=now),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    if failed.rowcount != 1:
        return "noop"
    session.expire(group)
    events.record(session, "group.failed", aggregate="group", aggregate_id=group.id)
    return "failed"


def unsettled_members(session: Session, *, group_id: int) -> list[int]:
    """Members of a failed group still holding a seat or paid: each is cancelled or refunded on its own."""
    query = (
        sa.select(GroupMember.id).join(Group)
        .where(Group.id == group_id, Group.status == "failed", GroupMember.status.in_(("holding", "paid")))
        .order_by(GroupMember.id)
    )  # fmt: skip
    return list(session.scalars(query))


def groups_with_unsettled_members(session: Session, *, limit: int = 100) -> list[int]:
    """Failed groups a member of which is still to be settled (a settlement that failed, or a member whose
    payment landed after the group failed): for the sweep."""
    query = (
        sa.select(Group.id).join(GroupMember)
        .where(Group.status == "failed", GroupMember.status.in_(("holding", "paid")))
        .group_by(Group.id).order_by(Group.id).limit(limit)
    )  # fmt: skip
    return list(session.scalars(query))


def settle_member(session: Session, *, member_id: int, gateway) -> str:
    """One member of a failed group, in its own unit of work: an unpaid seat's order is cancelled, a paid
    member is refunded (claimed here, sent after the commit) exactly once."""
    member = session.get(GroupMember, member_id)
    group = session.get(Group, member.group_id) if member is not None else None
    if group is None or group.status != "failed":
        return "noop"
    return _refund_member(session, member, gateway=gateway, reason="group_failed")


def _refund_member(session: Session, member: GroupMember, *, gateway, reason: str) -> str:
    from mall.payments import services as payments
    from mall.payments.models import Payment

    order = session.get(Order, member.order_id)
    if member.status == "holding":  # never paid: just cancel (frees the stock)
        orders.cancel_order(session, order_id=order.id, actor=None, reason=reason)
        return "cancelled"
    refunded = session.execute(
        sa.update(GroupMember).where(GroupMember.id == member.id, GroupMember.status == "paid")
        .values(status="refunded"),
        execution_options={"synchronize_session": False},
    )  # fmt: skip
    session.expire(member, ["status"])
    if refunded.rowcount != 1:  # not paid, or another run refunded it first
        return "noop"
    key = f"group-{member.group_id}-member-{member.id}"
    done = refunds.refund_rest(session, order=order, reason=reason, reference=key)  # per line, what is left
    payment = session.scalar(sa.select(Payment).filter_by(order_id=order.id, status="succeeded").limit(1))
    if payment is not None and done.amount:
        payments.refund(session, gateway=gateway, payment=payment, amount=done.amount, reason=reason, key=key)
    _close_refunded_order(session, order)
    notify(session, user_id=member.user_id, template_key="group_buy.failed", dedupe_key=f"group-refund-{member.id}",
           payload={"group_id": member.group_id, "order_id": order.id})  # fmt: skip
    return "refunded"


def _close_refunded_order(session: Session, order: Order) -> None:
    from mall.inventory import services as inventory
    from mall.orders import states
    from mall.orders.transitions import move

    for sub in order.sub_orders:
        move(session, sub, states.CLOSED, fulfilment_hold=None)
    move(session, order, states.CLOSED)
    inventory.release(session, {line.sku_id: line.quantity for line in order.lines})


def leave(session: Session, *, group_id: int, user_id: int, gateway) -> GroupMember:
    """A member (not the leader) takes their money back before the group succeeds: the seat is freed."""
    group = get_group(session, group_id)
    member = session.scalar(sa.select(GroupMember).filter_by(group_id=group_id, user_id=user_id)
                            .where(GroupMember.status.in_(("holding", "paid"))))  # fmt: skip
    if member is None:
        raise NotFound("group_buy.not_member", "You are not in this group.")
    if group.status != "forming":
        raise Conflict("group_buy.closed", "This group is no longer forming.")
    if _refund_member(session, member, gateway=gateway, reason="left_group") == "refunded":
        session.execute(sa.update(Group).where(Group.id == group.id)
                        .values(seats_taken=Group.seats_taken - 1, paid_count=Group.paid_count - 1))  # fmt: skip
    return member  # a leader who leaves keeps the record; the others may still complete the group


def due_groups(session: Session, *, limit: int = 500) -> list[int]:
    query = (
        sa.select(Group.id).where(sa.text("groups.status = 'forming'"), Group.expires_at <= clock.now())
        .order_by(Group.expires_at).limit(limit)
    )  # fmt: skip
    return list(session.scalars(query))


def _schedule_closing_reminder(session: Session, group: Group) -> None:
    when: datetime = group.expires_at - timedelta(hours=1)
    for member in group.members:
        notify(session, user_id=member.user_id, template_key="group_buy.closing",
               dedupe_key=f"group-closing-{group.id}-{member.user_id}", payload={"group_id": group.id},
               send_after=max(when, clock.now()), guard={"type": "group_forming", "group_id": group.id})  # fmt: skip


def _tell_members(session: Session, group: Group, template_key: str, payload: dict) -> None:
    for member in group.members:
        if member.status in ("holding", "paid"):
            notify(session, user_id=member.user_id, template_key=template_key, payload=payload,
                   dedupe_key=f"{template_key}-{group.id}-{member.id}-{group.paid_count}")  # fmt: skip
