"""Guide payouts (ADR 0023): request, approve, reject or cancel, process, record, mark paid, reconcile.

A request locks the guide's balance row (`ledger.lock_balance`), checks the brand's terms and `available`, writes
the payout and its debit (a negative 'payout' entry, key `payout:{id}`) in one transaction: two requests, or a
request and a refund reversal, never overdraw. Every later move is one conditional UPDATE on the payout's state,
checked by its row count, so a retried approval, batch, sweep or webhook moves it once. A payout that fails or is
cancelled gives the money back ('payout_return', key `payout-return:{id}`), once.

Stripe transfers are claim -> commit -> call -> record (ADR 0014): `claim` moves approved payouts to `processing`
with a lease (`retry_at`) and commits; the caller makes the transfer with no transaction open, under the payout's
own idempotency key (`transfer_key`); `record` writes the answer while the payout is still `processing`. A caller
that died leaves it `processing`: once the lease has run out, `take` lets the sweep call again with the same key,
and Stripe answers with the transfer it already made."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import audit, clock, events
from mall.catalog.taxonomy import get_brand
from mall.errors import Conflict, DomainError, Invalid, NotFound
from mall.guides import ledger
from mall.guides.ledger_models import CommissionEntry
from mall.guides.models import Guide
from mall.guides.payout_gateways import PayoutGateway, Record, TransferCall
from mall.guides.payout_models import DONE_STATES, Payout, PayoutReconciliation, PayoutSetting
from mall.guides.services import managed_guide, own_guide
from mall.identity.roles import Actor
from mall.payments.gateway import Transfer, transfer_of

DEFAULTS = {"gateway": "manual", "minimum_amount": 1000, "weekdays": "1234567", "min_days_between": 1}
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
RECONCILE_DAYS = 45  # payouts requested this long ago or later are compared with the gateways every night
_NOT_FOUND = "payouts.not_found"


# terms and accounts ----------------------------------------------------------------------------------------------


def terms(session: Session, brand_id: int) -> dict:
    row = session.get(PayoutSetting, brand_id)
    return {name: getattr(row, name) for name in DEFAULTS} if row else dict(DEFAULTS)


def set_terms(session: Session, *, actor: Actor, brand_id: int, **values) -> dict:
    _brand(actor, brand_id)
    get_brand(session, brand_id)  # a platform admin may name any id: an unknown brand is a 404, not a 500
    row = session.get(PayoutSetting, brand_id, with_for_update=True)
    if row is None:
        row = PayoutSetting(brand_id=brand_id, **DEFAULTS)
        session.add(row)
    for name, value in values.items():
        if value is not None:
            setattr(row, name, value)
    row.weekdays = "".join(sorted(set(row.weekdays)))
    row.updated_by, row.updated_at = actor.user_id, clock.now()
    session.flush()
    return {"brand_id": brand_id, **terms(session, brand_id)}


def set_account(session: Session, *, actor: Actor, guide_id: int, stripe_account_id=None, bank_account=None) -> Guide:
    """Where the guide's payouts go: a Stripe Connect account id (acct_...) and/or a bank account for the CSV."""
    guide = managed_guide(session, actor=actor, guide_id=guide_id)
    if stripe_account_id is not None:
        guide.stripe_account_id = stripe_account_id or None
    if bank_account is not None:
        guide.bank_account = bank_account or None
    return guide


def _brand(actor: Actor, brand_id: int) -> None:
    if not actor.can_manage_brand(brand_id):
        raise NotFound("payouts.brand_not_found", f"Brand {brand_id} not found.")


# the guide's side ------------------------------------------------------------------------------------------------


def request(session: Session, *, actor: Actor, amount: int, currency: str = "CNY") -> Payout:
    """A payout of `amount` of the guide's available balance, under the brand's terms. 409 with a reason code:
    payouts.negative_balance, payouts.insufficient_balance, payouts.below_minimum, payouts.not_today,
    payouts.too_soon, payouts.no_destination."""
    guide = own_guide(session, actor)
    now, rules = clock.now(), terms(session, guide.brand_id)
    if amount < rules["minimum_amount"]:
        raise Conflict("payouts.below_minimum", f"The brand pays out at least {rules['minimum_amount']}.",
                       minimum_amount=rules["minimum_amount"])  # fmt: skip
    if str(now.isoweekday()) not in rules["weekdays"]:
        raise Conflict("payouts.not_today", "The brand takes payout requests on other weekdays.",
                       weekdays=rules["weekdays"])  # fmt: skip
    destination = guide.stripe_account_id if rules["gateway"] == "stripe" else guide.bank_account
    if not destination:
        raise Conflict("payouts.no_destination", f"No {'connected Stripe' if rules['gateway'] == 'stripe' else 'bank'}"
                       " account to pay to: the brand admin sets it.", gateway=rules["gateway"])  # fmt: skip
    held = ledger.lock_balance(session, guide.id, currency)  # every payout and refund of the guide waits here
    if rules["min_days_between"]:
        last = session.scalar(sa.select(sa.func.max(Payout.requested_at)).where(
            Payout.guide_id == guide.id, Payout.state.not_in(("failed", "cancelled"))))  # fmt: skip
        if last is not None and last > now - timedelta(days=rules["min_days_between"]):
            raise Conflict("payouts.too_soon", f"One payout every {rules['min_days_between']} day(s).",
                           next_at=(last + timedelta(days=rules["min_days_between"])).isoformat())  # fmt: skip
    if held.available < 0:
        raise Conflict("payouts.negative_balance", "Refunds after an earlier payout left the available balance "
                       "negative: later earnings offset it first.", available=held.available)  # fmt: skip
    if amount > held.available:
        raise Conflict("payouts.insufficient_balance", f"Only {held.available} is available.",
                       available=held.available)  # fmt: skip
    payout = Payout(guide_id=guide.id, brand_id=guide.brand_id, currency=currency, amount=amount, state="requested",
                    gateway=rules["gateway"], destination=destination, requested_at=now)  # fmt: skip
    session.add(payout)
    session.flush()
    if payout.gateway == "stripe":
        from mall.payments.services import installation_id

        payout.transfer_key = f"guide-payout-{installation_id(session)}-{payout.id}"
    ledger.post(session, guide_id=guide.id, brand_id=guide.brand_id, currency=currency, amount=-amount,
                kind="payout", state="available", key=f"payout:{payout.id}", reason={"rule": "payout_requested"},
                payout_id=payout.id, now=now)  # fmt: skip
    _event(session, payout, "payout.requested", actor)
    return payout


def mine(session: Session, *, actor: Actor, before_id: int | None = None, limit: int = 50) -> list[Payout]:
    guide = own_guide(session, actor)
    return _page(session, sa.select(Payout).where(Payout.guide_id == guide.id), before_id, limit)


def cancel_mine(session: Session, *, actor: Actor, payout_id: int) -> Payout:
    """The guide withdraws a request not yet approved (409 payouts.state otherwise)."""
    guide = own_guide(session, actor)
    payout = session.get(Payout, payout_id)
    if payout is None or payout.guide_id != guide.id:
        raise NotFound(_NOT_FOUND, f"Payout {payout_id} not found.")
    return _end(session, payout, ("requested",), "cancelled", actor, note="cancelled by the guide")


# the brand admin's side ------------------------------------------------------------------------------------------


def listed(session: Session, *, actor: Actor, brand_id: int, state: str | None = None, guide_id: int | None = None,
           gateway: str | None = None, before_id: int | None = None, limit: int = 50) -> list[Payout]:  # fmt: skip
    _brand(actor, brand_id)
    query = sa.select(Payout).where(Payout.brand_id == brand_id)
    for column, value in ((Payout.state, state), (Payout.guide_id, guide_id), (Payout.gateway, gateway)):
        if value is not None:
            query = query.where(column == value)
    return _page(session, query, before_id, limit)


def managed(session: Session, *, actor: Actor, payout_id: int) -> Payout:
    payout = session.get(Payout, payout_id)
    if payout is None or not actor.can_manage_brand(payout.brand_id):
        raise NotFound(_NOT_FOUND, f"Payout {payout_id} not found.")
    return payout


def approve(session: Session, *, actor: Actor, payout_id: int) -> Payout:
    """requested -> approved (again: the approved payout, unchanged; from any other state 409 payouts.state)."""
    payout = managed(session, actor=actor, payout_id=payout_id)
    if payout.state == "approved":
        return payout
    _move(session, payout, ("requested",), "approved", approved_at=clock.now(), approved_by=actor.user_id)
    _event(session, payout, "payout.approved", actor)
    return payout


def reject(session: Session, *, actor: Actor, payout_id: int, note: str | None = None) -> Payout:
    """A requested or approved payout is refused: cancelled (`rejected`), its money available again."""
    payout = managed(session, actor=actor, payout_id=payout_id)
    return _end(session, payout, ("requested", "approved"), "cancelled", actor, note=note or "rejected", rejected=True)


def cancel(session: Session, *, actor: Actor, payout_id: int, note: str | None = None) -> Payout:
    payout = managed(session, actor=actor, payout_id=payout_id)
    return _end(session, payout, ("requested", "approved"), "cancelled", actor, note=note or "cancelled")


def mark_paid(session: Session, *, actor: Actor, payout_id: int, reference: str) -> Payout:
    """A manual payout the bank paid (approved or processing -> paid, with the bank's reference). Again with the
    same reference: unchanged; with another, 409 payouts.state."""
    payout = managed(session, actor=actor, payout_id=payout_id)
    if payout.gateway != "manual":
        raise Conflict("payouts.not_manual", "Stripe payouts are paid by their transfer, not by hand.")
    if payout.state == "paid" and payout.reference == reference:
        return payout
    _move(session, payout, ("approved", "processing"), "paid", paid_at=clock.now(), paid_by=actor.user_id,
          reference=reference)  # fmt: skip
    _event(session, payout, "payout.paid", actor, reference=reference)
    return payout


def mark_failed(session: Session, *, actor: Actor, payout_id: int, note: str) -> Payout:
    """A manual payout the bank could not pay (approved or processing -> failed): the money is available again."""
    payout = managed(session, actor=actor, payout_id=payout_id)
    if payout.gateway != "manual":
        raise Conflict("payouts.not_manual", "A Stripe payout fails by its transfer, not by hand.")
    return _end(session, payout, ("approved", "processing"), "failed", actor, note=note)


def export(session: Session, *, actor: Actor, brand_id: int) -> list[tuple[Payout, Guide]]:
    """The brand's approved and processing manual payouts, for the bank-transfer CSV (oldest first)."""
    _brand(actor, brand_id)
    query = (
        sa.select(Payout, Guide).join(Guide, Guide.id == Payout.guide_id)
        .where(Payout.brand_id == brand_id, Payout.gateway == "manual", Payout.state.in_(("approved", "processing")))
        .order_by(Payout.id)
    )  # fmt: skip
    return [(payout, guide) for payout, guide in session.execute(query)]


# processing (claim -> commit -> call -> record) ------------------------------------------------------------------


def claim(session: Session, *, actor: Actor, brand_id: int, payout_ids: list[int] | None = None
          ) -> tuple[list[TransferCall], list[int]]:  # fmt: skip
    """Process the brand's approved payouts (all, or those named): manual ones move to `processing` (handed to the
    bank, in the CSV); Stripe ones too, with the caller's lease, and are returned to be called after the commit. A
    Stripe payout already `processing` whose lease ran out (its caller died) is taken again: same key, same transfer.
    Running the same batch twice calls for nothing new. Returns (the calls to make, the manual payouts handed)."""
    _brand(actor, brand_id)
    query = sa.select(Payout.id).where(Payout.brand_id == brand_id, Payout.state.in_(("approved", "processing")))
    if payout_ids is not None:
        query = query.where(Payout.id.in_(payout_ids))
    calls, handed = [], []
    for payout_id in session.scalars(query.order_by(Payout.id).limit(500)):
        found = take(session, payout_id=payout_id)
        if isinstance(found, TransferCall):
            calls.append(found)
        elif found == "handed_to_bank":
            handed.append(payout_id)
    return calls, handed


def take(session: Session, *, payout_id: int) -> TransferCall | str:
    """The lease on one payout, by one conditional UPDATE: an approved one starts processing, a processing Stripe
    one whose lease is free (caller died, or the call is due again) is taken. Two takers never both call."""
    now = clock.now()
    table = Payout.__table__
    started = session.execute(
        table.update()
        .where(table.c.id == payout_id, sa.or_(
            table.c.state == "approved",
            sa.and_(table.c.state == "processing", table.c.gateway == "stripe", table.c.retry_at <= now)))
        .values(state="processing", processing_at=sa.func.coalesce(table.c.processing_at, now),
                retry_at=sa.case((table.c.gateway == "stripe", now + LEASE), else_=None),
                attempts=table.c.attempts + sa.case((table.c.gateway == "stripe", 1), else_=0))
    )  # fmt: skip
    if started.rowcount != 1:
        return "not_due"
    payout = session.get(Payout, payout_id, populate_existing=True)
    if payout.processing_at == now:  # started now, not taken again
        _event(session, payout, "payout.processing", None)
    if payout.gateway != "stripe":
        return "handed_to_bank" if payout.processing_at == now else "not_due"
    from mall.payments.services import installation_id

    return TransferCall(payout_id=payout.id, amount=payout.amount, currency=payout.currency,
                        destination=payout.destination, key=payout.transfer_key,
                        metadata={"payout_id": payout.id, "guide_id": payout.guide_id,
                                  "installation": installation_id(session)})  # fmt: skip


def record(session: Session, *, call: TransferCall, answer: Transfer | DomainError) -> str:
    """Step 3: the transfer's answer, written while the payout is still `processing`: paid (with the transfer id),
    failed (the provider refused the request, or MAX_ATTEMPTS calls failed: the money is available again), or
    retried later with a growing delay."""
    payout = session.get(Payout, call.payout_id, populate_existing=True)
    if payout is None or payout.state != "processing":
        return "already_recorded"
    if isinstance(answer, DomainError):
        payout.last_error = f"{answer.code}: {answer.detail}"[:300]
        if isinstance(answer, Invalid) or payout.attempts >= MAX_ATTEMPTS:
            _end(session, payout, ("processing",), "failed", None, note=payout.last_error)
            return "failed"
        payout.retry_at = clock.now() + min(timedelta(minutes=2**payout.attempts), timedelta(hours=2))
        return "retry_later"
    return _paid_by_transfer(session, payout, answer)


def due_ids(session: Session, *, limit: int = 200) -> list[int]:
    """Stripe payouts left `processing` whose lease has run out: for the sweep."""
    query = (
        sa.select(Payout.id).where(Payout.state == "processing", Payout.gateway == "stripe", Payout.retry_at <= clock.now())
        .order_by(Payout.retry_at, Payout.id).limit(limit)
    )  # fmt: skip
    return list(session.scalars(query))


def _paid_by_transfer(session: Session, payout: Payout, transfer: Transfer) -> str:
    if transfer.amount_reversed >= transfer.amount:
        return _reversed(session, payout, transfer)
    if payout.state == "paid":
        return "already_paid"
    _move(session, payout, ("processing",), "paid", paid_at=clock.now(), reference=transfer.transfer_id,
          retry_at=None, last_error=None)  # fmt: skip
    _event(session, payout, "payout.paid", None, reference=transfer.transfer_id)
    return "paid"


def _reversed(session: Session, payout: Payout, transfer: Transfer) -> str:
    if payout.state in ("failed", "cancelled"):
        return "already_returned"
    payout.reference = payout.reference or transfer.transfer_id
    _end(session, payout, ("processing", "paid"), "failed", None, note="transfer reversed")
    return "reversed"


# transfer.* webhooks (stored and verified by the payment webhook endpoint, processed by its job) ------------------


def on_transfer(session: Session, gateway, obj: dict) -> str:
    """transfer.created (and the legacy transfer.paid / transfer.updated): the transfer exists at Stripe, so its
    payout is paid (a record our caller lost); fully reversed: failed, the money available again."""
    transfer = transfer_of(obj)
    payout = _payout_of(session, transfer)
    if payout is None:
        return "unknown_transfer"
    if payout.state in ("failed", "cancelled") and transfer.amount_reversed < transfer.amount:
        _difference_event(session, payout, "transfer_after_return", transfer)
        return "transfer_after_return"
    if payout.state not in ("processing", "paid"):
        return f"ignored_{payout.state}"
    return _paid_by_transfer(session, payout, transfer)


def on_transfer_reversed(session: Session, gateway, obj: dict) -> str:
    """transfer.reversed (and the legacy transfer.failed): a full reversal fails the payout and returns the money
    once; a partial one is reported for the operator (the ledger books no guess)."""
    transfer = transfer_of(obj)
    payout = _payout_of(session, transfer)
    if payout is None:
        return "unknown_transfer"
    if obj.get("status") == "failed" or transfer.amount_reversed >= transfer.amount:
        return _reversed(session, payout, transfer)
    _difference_event(session, payout, "partial_reversal", transfer)
    return "partial_reversal"


WEBHOOKS = {"transfer.created": on_transfer, "transfer.paid": on_transfer, "transfer.updated": on_transfer,
            "transfer.reversed": on_transfer_reversed, "transfer.failed": on_transfer_reversed}  # fmt: skip


def _payout_of(session: Session, transfer: Transfer) -> Payout | None:
    payout = session.scalar(
        sa.select(Payout).where(Payout.reference == transfer.transfer_id, Payout.gateway == "stripe")
    )
    meta = transfer.metadata
    if payout is None and str(meta.get("payout_id", "")).isdigit():
        from mall.payments.services import installation_id

        if meta.get("installation") == installation_id(session):
            payout = session.get(Payout, int(meta["payout_id"]))
    return payout if payout is not None and payout.gateway == "stripe" else None


def _difference_event(session: Session, payout: Payout, kind: str, transfer: Transfer) -> None:
    events.record(session, "payout.gateway_difference", aggregate="guide_payout", aggregate_id=payout.id, kind=kind,
                  brand_id=payout.brand_id, transfer_id=transfer.transfer_id, amount=transfer.amount,
                  amount_reversed=transfer.amount_reversed)  # fmt: skip


# reconciliation --------------------------------------------------------------------------------------------------


def reconcile(session: Session, *, gateways: dict[str, PayoutGateway | None], now: datetime | None = None
              ) -> PayoutReconciliation:  # fmt: skip
    """Compare every payout requested in the last RECONCILE_DAYS with its ledger entries and with what its gateway
    holds; store the differences (a row, and a `payout.reconciled` event). Kinds: ledger_mismatch (the entries'
    sum is not what the state says), missing_payment (paid, no gateway record), amount_mismatch, returned_at_gateway
    (reversed there, still paid here), paid_but_not_booked (a gateway payment for a payout failed/cancelled/open
    here), unrecorded_transfer (processing here: the sweep will record it), unknown_payout (a gateway payment
    naming no payout of ours), gateway_unavailable."""
    from mall.payments.services import installation_id

    now = now or clock.now()
    since = now - timedelta(days=RECONCILE_DAYS)
    payouts = list(session.execute(sa.select(Payout.id, Payout.brand_id, Payout.gateway, Payout.state, Payout.amount,
                                             Payout.currency, Payout.reference).where(Payout.requested_at >= since)))  # fmt: skip
    recent = sa.select(Payout.id).where(Payout.requested_at >= since).scalar_subquery()
    sums = dict(session.execute(
        sa.select(CommissionEntry.payout_id, sa.func.sum(CommissionEntry.amount))
        .where(CommissionEntry.payout_id.in_(recent), CommissionEntry.kind.in_(("payout", "payout_return")))
        .group_by(CommissionEntry.payout_id)).all())  # fmt: skip
    differences: list[dict] = []
    held: dict[str, dict[int, list[Record]]] = {}
    for name in sorted({p.gateway for p in payouts} | {n for n, g in gateways.items() if g is not None}):
        gateway = gateways.get(name)
        try:
            held[name] = (
                gateway.records(session, since=since, installation=installation_id(session)) if gateway else None
            )
        except DomainError as exc:
            held[name] = None
            differences.append({"kind": "gateway_unavailable", "gateway": name, "detail": exc.code})
        if held[name] is None and not any(d.get("gateway") == name for d in differences):
            differences.append({"kind": "gateway_unavailable", "gateway": name, "detail": "not configured"})
    known = {p.id for p in payouts}
    for p in payouts:
        base = {"payout_id": p.id, "brand_id": p.brand_id, "gateway": p.gateway, "state": p.state, "amount": p.amount}
        expected = 0 if p.state in ("failed", "cancelled") else -p.amount
        if int(sums.get(p.id) or 0) != expected:
            differences.append({**base, "kind": "ledger_mismatch", "ledger": int(sums.get(p.id) or 0),
                                "expected": expected})  # fmt: skip
        records = held.get(p.gateway)
        if records is None:
            continue
        kept = [r for r in records.get(p.id, []) if r.returned < r.amount]
        if p.state == "paid" and not kept:
            kind = "returned_at_gateway" if records.get(p.id) else "missing_payment"
            differences.append({**base, "kind": kind, "reference": p.reference})
        elif p.state == "paid" and (sum(r.amount - r.returned for r in kept) != p.amount
                                    or any(r.currency != p.currency for r in kept)):  # fmt: skip
            differences.append({**base, "kind": "amount_mismatch", "gateway_amount": sum(r.amount for r in kept),
                                "references": [r.reference for r in kept]})  # fmt: skip
        elif p.state != "paid" and kept:
            kind = "unrecorded_transfer" if p.state == "processing" else "paid_but_not_booked"
            differences.append({**base, "kind": kind, "references": [r.reference for r in kept]})
    for name, records in held.items():
        for payout_id, found in sorted((records or {}).items()):
            if payout_id not in known:
                differences.append({"kind": "unknown_payout", "gateway": name, "payout_id": payout_id,
                                    "references": [r.reference for r in found]})  # fmt: skip
    report = PayoutReconciliation(ran_at=now, checked=len(payouts), differences=differences)
    session.add(report)
    session.flush()
    events.record(session, "payout.reconciled", aggregate="payout_reconciliation", aggregate_id=report.id,
                  checked=len(payouts), differences=len(differences))  # fmt: skip
    return report


def latest_report(session: Session, *, actor: Actor, brand_id: int | None) -> dict:
    """The latest reconciliation; a brand admin sees only their brand's differences (a platform admin everything,
    or one brand's with `brand_id`)."""
    if brand_id is not None:
        _brand(actor, brand_id)
    report = session.scalar(sa.select(PayoutReconciliation).order_by(PayoutReconciliation.id.desc()).limit(1))
    if report is None:
        raise NotFound("payouts.no_reconciliation", "No reconciliation has run yet.")
    differences = report.differences
    if brand_id is not None:
        differences = [d for d in differences if d.get("brand_id") == brand_id]
    return {"id": report.id, "ran_at": report.ran_at, "checked": report.checked, "differences": differences}


# helpers ---------------------------------------------------------------------------------------------------------


def _page(session: Session, query, before_id: int | None, limit: int) -> list[Payout]:
    if before_id is not None:
        query = query.where(Payout.id < before_id)
    return list(session.scalars(query.order_by(Payout.id.desc()).limit(limit)))


def _move(session: Session, payout: Payout, from_states: tuple[str, ...], to_state: str, **values) -> None:
    """One conditional UPDATE; 409 payouts.state when the payout is no longer in `from_states`."""
    table = Payout.__table__
    before = audit.snapshot(payout)
    moved = session.execute(table.update().where(table.c.id == payout.id, table.c.state.in_(from_states))
                            .values(state=to_state, **values))  # fmt: skip
    session.refresh(payout)
    if moved.rowcount != 1:
        raise Conflict("payouts.state", f"Payout {payout.id} is {payout.state}.", state=payout.state)
    audit.changed(session, payout, before, action=f"payout.{to_state}", brand_id=payout.brand_id)


def _end(session: Session, payout: Payout, from_states: tuple[str, ...], to_state: str, actor: Actor | None, *,
         note: str | None, rejected: bool = False) -> Payout:  # fmt: skip
    """Failed or cancelled: the conditional move, then the money back (once: the move and the entry's key)."""
    if payout.state == to_state and payout.state in DONE_STATES:
        return payout  # a repeated cancel/reject/failure: unchanged
    now = clock.now()
    stamp = {
        "failed": {"failed_at": now},
        "cancelled": {"cancelled_at": now, "cancelled_by": actor.user_id if actor else None},
    }[to_state]
    _move(session, payout, from_states, to_state, note=note, rejected=rejected, retry_at=None, **stamp)
    ledger.post(session, guide_id=payout.guide_id, brand_id=payout.brand_id, currency=payout.currency,
                amount=payout.amount, kind="payout_return", state="available", key=f"payout-return:{payout.id}",
                reason={"rule": f"payout_{to_state}", "note": note}, payout_id=payout.id, now=now)  # fmt: skip
    _event(session, payout, f"payout.{to_state}", actor, note=note)
    return payout


def _event(session: Session, payout: Payout, kind: str, actor: Actor | None, **extra) -> None:
    events.record(session, kind, aggregate="guide_payout", aggregate_id=payout.id, actor=actor,
                  guide_id=payout.guide_id, brand_id=payout.brand_id, amount=payout.amount, currency=payout.currency,
                  **extra)  # fmt: skip
