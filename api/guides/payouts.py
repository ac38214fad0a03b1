"""Guide payouts over HTTP (ADR 0023): a guide requests and reads their payouts; the brand admin sets the terms and
the guides' accounts, approves, rejects or cancels, processes (Stripe transfers claimed, committed, then made),
exports the manual ones as a bank-transfer CSV and marks them paid or failed, and reads the latest reconciliation.
Another brand's payouts are 404. Refusals are 409 with a reason code (payouts.*), see each operation."""

from __future__ import annotations

import csv
import io

from flask import Response

from api.auth import MallBlueprint, acting_brand, current_actor
from api.extensions import db
from api.guides.payout_schemas import (
    AccountOutSchema,
    AccountSchema,
    AdminPayoutArgs,
    BrandArgs,
    FailedSchema,
    NewPayoutSchema,
    NoteSchema,
    PageArgs,
    PaidSchema,
    PayoutSchema,
    ProcessedSchema,
    ProcessSchema,
    ReportSchema,
    TermsOutSchema,
    TermsSchema,
)
from api.tx import commit, read_only
from mall.guides import payouts
from mall.identity.roles import MERCHANT, Role
from workers.jobs.payouts import transfer

blp = MallBlueprint("guide_payouts", __name__, description="Guide payouts: requests, approval, gateways")

_CODE = "guides.brand_required"
ADMIN = "/admin/guides/payouts"


@blp.post("/guide/payouts")
@blp.auth(Role.GUIDE)
@blp.arguments(NewPayoutSchema)
@blp.response(201, PayoutSchema)
@blp.problems(409)
def request_payout(body):
    """Withdraw `amount` of my available balance: it leaves `available` now (a 'payout' ledger entry) and comes
    back if the payout fails or is cancelled. 409: payouts.negative_balance (refunds after an earlier payout left
    it below zero), payouts.insufficient_balance, payouts.below_minimum, payouts.not_today (the brand's weekdays),
    payouts.too_soon (the brand's days between payouts), payouts.no_destination (no account to pay to)."""
    payout = payouts.request(db.session, actor=current_actor(), **body)
    commit()
    return payout


@blp.get("/guide/payouts")
@blp.auth(Role.GUIDE)
@blp.arguments(PageArgs, location="query")
@blp.response(200, PayoutSchema(many=True))
def my_payouts(args):
    """My payout history, newest first."""
    read_only()
    return payouts.mine(db.session, actor=current_actor(), **args)


@blp.post("/guide/payouts/<int:payout_id>/cancel")
@blp.auth(Role.GUIDE)
@blp.response(200, PayoutSchema)
@blp.problems(409)
def cancel_my_payout(payout_id):
    """Withdraw my request while it is not yet approved (409 payouts.state otherwise); the money is available."""
    payout = payouts.cancel_mine(db.session, actor=current_actor(), payout_id=payout_id)
    commit()
    return payout


@blp.get("/admin/guides/payout-terms")
@blp.auth(*MERCHANT)
@blp.arguments(BrandArgs, location="query")
@blp.response(200, TermsOutSchema)
def get_terms(args):
    """The brand's payout terms (the defaults until set): gateway, minimum amount, weekdays, days between."""
    read_only()
    brand_id = acting_brand(args["brand_id"], code=_CODE)
    payouts._brand(current_actor(), brand_id)
    return {"brand_id": brand_id, **payouts.terms(db.session, brand_id)}


@blp.put("/admin/guides/payout-terms")
@blp.auth(*MERCHANT)
@blp.arguments(TermsSchema)
@blp.response(200, TermsOutSchema)
def put_terms(body):
    """Change the brand's payout terms (fields left out keep their value); payouts already requested keep theirs."""
    brand_id = acting_brand(body.pop("brand_id"), code=_CODE)
    out = payouts.set_terms(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return out


@blp.put("/admin/guides/<int:guide_id>/payout-account")
@blp.auth(*MERCHANT)
@blp.arguments(AccountSchema)
@blp.response(200, AccountOutSchema)
def put_account(body, guide_id):
    """Where a guide of the brand is paid: their Stripe Connect account and/or bank account."""
    guide = payouts.set_account(db.session, actor=current_actor(), guide_id=guide_id, **body)
    commit()
    return guide


@blp.get(ADMIN)
@blp.auth(*MERCHANT)
@blp.arguments(AdminPayoutArgs, location="query")
@blp.response(200, PayoutSchema(many=True))
def list_payouts(args):
    """The brand's payouts, newest first; filter by state, guide, gateway."""
    read_only()
    brand_id = acting_brand(args.pop("brand_id"), code=_CODE)
    return payouts.listed(db.session, actor=current_actor(), brand_id=brand_id, **args)


@blp.post(f"{ADMIN}/<int:payout_id>/approve")
@blp.auth(*MERCHANT)
@blp.response(200, PayoutSchema)
@blp.problems(409)
def approve(payout_id):
    """requested -> approved (an approved one is answered unchanged; 409 payouts.state from any other state)."""
    payout = payouts.approve(db.session, actor=current_actor(), payout_id=payout_id)
    commit()
    return payout


@blp.post(f"{ADMIN}/<int:payout_id>/reject")
@blp.auth(*MERCHANT)
@blp.arguments(NoteSchema)
@blp.response(200, PayoutSchema)
@blp.problems(409)
def reject(body, payout_id):
    """A requested or approved payout refused: cancelled with `rejected`, the money available again."""
    payout = payouts.reject(db.session, actor=current_actor(), payout_id=payout_id, note=body["note"])
    commit()
    return payout


@blp.post(f"{ADMIN}/<int:payout_id>/cancel")
@blp.auth(*MERCHANT)
@blp.arguments(NoteSchema)
@blp.response(200, PayoutSchema)
@blp.problems(409)
def cancel(body, payout_id):
    """A requested or approved payout cancelled (not yet sent): the money available again."""
    payout = payouts.cancel(db.session, actor=current_actor(), payout_id=payout_id, note=body["note"])
    commit()
    return payout


@blp.post(f"{ADMIN}/process")
@blp.auth(*MERCHANT)
@blp.arguments(ProcessSchema)
@blp.response(200, ProcessedSchema)
def process(body):
    """Send the brand's approved payouts (or those named). Stripe: each is claimed and committed, then transferred
    with its own idempotency key and recorded: paid, failed (money available again) or retry_later (the sweep
    retries it). Manual: handed to the bank (processing; in the CSV, marked paid by hand). Running the same batch
    again pays nothing twice."""
    brand_id = acting_brand(body["brand_id"], code=_CODE)
    actor = current_actor()
    calls, handed = payouts.claim(db.session, actor=actor, brand_id=brand_id, payout_ids=body["payout_ids"])
    commit()
    outcomes = {str(call.payout_id): transfer(call) for call in calls}  # no transaction open during each call
    return {"outcomes": {**{str(pid): "handed_to_bank" for pid in handed}, **outcomes}}


@blp.get(f"{ADMIN}/export.csv")
@blp.auth(*MERCHANT)
@blp.arguments(BrandArgs, location="query")
@blp.response(200, description="text/csv: payout_id, guide_id, guide_name, bank_account, amount, currency, state")
def export_csv(args):
    """The brand's approved and processing manual payouts as a bank-transfer CSV (amounts in minor units)."""
    read_only()
    brand_id = acting_brand(args["brand_id"], code=_CODE)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["payout_id", "guide_id", "guide_name", "bank_account", "amount", "currency", "state",
                     "requested_at"])  # fmt: skip
    for payout, guide in payouts.export(db.session, actor=current_actor(), brand_id=brand_id):
        writer.writerow([payout.id, guide.id, _cell(guide.name), _cell(payout.destination), payout.amount,
                         payout.currency, payout.state, payout.requested_at.isoformat()])  # fmt: skip
    return Response(out.getvalue(), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="payouts-{brand_id}.csv"'})  # fmt: skip


def _cell(text: str) -> str:
    """No spreadsheet formula from a name or account a user typed."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@blp.post(f"{ADMIN}/<int:payout_id>/mark-paid")
@blp.auth(*MERCHANT)
@blp.arguments(PaidSchema)
@blp.response(200, PayoutSchema)
@blp.problems(409)
def mark_paid(body, payout_id):
    """A manual payout the bank paid, with its reference (again with the same reference: unchanged). 409
    payouts.not_manual for a Stripe payout, payouts.state when not approved or processing."""
    payout = payouts.mark_paid(db.session, actor=current_actor(), payout_id=payout_id, reference=body["reference"])
    commit()
    return payout


@blp.post(f"{ADMIN}/<int:payout_id>/mark-failed")
@blp.auth(*MERCHANT)
@blp.arguments(FailedSchema)
@blp.response(200, PayoutSchema)
@blp.problems(409)
def mark_failed(body, payout_id):
    """A manual payout the bank could not pay: failed, the money available again."""
    payout = payouts.mark_failed(db.session, actor=current_actor(), payout_id=payout_id, note=body["note"])
    commit()
    return payout


@blp.get(f"{ADMIN}/reconciliation")
@blp.auth(*MERCHANT)
@blp.arguments(BrandArgs, location="query")
@blp.response(200, ReportSchema)
def latest_reconciliation(args):
    """The latest nightly reconciliation of ledger payout entries with the gateways (404 before the first run). A
    brand admin sees their brand's differences; a platform admin all, or one brand's with `brand_id`."""
    read_only()
    actor = current_actor()
    brand_id = args["brand_id"] if actor.role == Role.PLATFORM_ADMIN else actor.brand_id
    return payouts.latest_report(db.session, actor=actor, brand_id=brand_id)
