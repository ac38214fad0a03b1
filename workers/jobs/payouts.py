"""Guide payout jobs (ADR 0023): the Stripe transfer of a claimed payout (lease, call with no transaction open,
record), the sweep that repeats the ones whose caller died or whose call is due again, and the nightly
reconciliation of the ledger's payout entries with the gateways' records."""

from __future__ import annotations

import logging

from mall.errors import Unavailable
from mall.guides import payouts
from mall.guides.payout_gateways import TransferCall, gateways_for
from mall.payments import calls
from workers import runtime
from workers.runtime import unit_of_work

log = logging.getLogger(__name__)


def transfer(call: TransferCall) -> str:
    """Steps 2 and 3 for a payout already taken: the call (no transaction open), then its record."""
    gateway = gateways_for(runtime.settings())["stripe"]
    if gateway is None:
        answer = Unavailable("payouts.stripe_not_configured", "No Stripe key is configured for transfers.")
    else:
        answer = calls.call(gateway.send, {"call": call})
    with unit_of_work() as session:
        return payouts.record(session, call=call, answer=answer)


def send_transfer(payout_id: int) -> str:
    """Take the payout's lease (one transaction), then call and record. Safe to run twice: the same key, the
    same transfer at Stripe; the record is conditional."""
    with unit_of_work() as session:
        call = payouts.take(session, payout_id=payout_id)
    if isinstance(call, str):
        return call
    return transfer(call)


def sweep_payout_transfers() -> int:
    """Stripe payouts left processing whose lease ran out: each apart, one failing stops none of the others."""
    with unit_of_work() as session:
        ids = payouts.due_ids(session)
    done = 0
    for payout_id in ids:
        try:
            done += send_transfer(payout_id) not in ("not_due", "retry_later")
        except Exception:  # rolled back; still processing, so the next sweep tries again
            log.exception("send_transfer(%s) failed", payout_id)
    return done


def reconcile_payouts() -> dict:
    """Nightly: the ledger's payout entries against Stripe's transfers and the manual payouts' paid records."""
    gateways = gateways_for(runtime.settings())
    with unit_of_work() as session:
        report = payouts.reconcile(session, gateways=gateways)
        return {"id": report.id, "checked": report.checked, "differences": len(report.differences)}
