"""The commission ledger over HTTP: a brand admin's rate cards, a guide's entries and balance, and "why was this
line (not) credited" for the guide and the brand admin. Another brand's guide or admin sees nothing (404)."""

from __future__ import annotations

from api.auth import MallBlueprint, acting_brand, current_actor
from api.extensions import db
from api.guides.commission_schemas import (
    AdminCommissionArgs,
    CommissionArgs,
    CommissionBalancesSchema,
    CommissionPageSchema,
    NewRateCardSchema,
    RateCardListArgs,
    RateCardSchema,
    WhyLineArgs,
    WhyLineSchema,
)
from api.tx import commit, read_only
from mall.guides import commission, holds, rates
from mall.guides.ledger_models import CommissionEntry
from mall.identity.roles import MERCHANT, Role

blp = MallBlueprint("guide_commission", __name__, description="Guide commission: rate cards and the ledger")

_CODE = "guides.brand_required"
_COLUMNS = tuple(c.key for c in CommissionEntry.__table__.columns)


def _for_guide(entries) -> list[dict]:
    """Entries as their guide reads them: a hold's rule and evidence replaced by a neutral word (ADR 0024)."""
    return [{**{c: getattr(e, c) for c in _COLUMNS}, "reason": holds.for_guide(e.state, e.reason)} for e in entries]


@blp.post("/admin/guides/rate-cards")
@blp.auth(*MERCHANT)
@blp.arguments(NewRateCardSchema)
@blp.response(201, RateCardSchema)
def create_card(body):
    """A rate card in force from now (with `replaces`: that card closed now, the change of terms). Earned
    commission never changes with a card."""
    brand_id = acting_brand(body.pop("brand_id"), code=_CODE)
    card = rates.create(db.session, actor=current_actor(), brand_id=brand_id, **body)
    commit()
    return card


@blp.get("/admin/guides/rate-cards")
@blp.auth(*MERCHANT)
@blp.arguments(RateCardListArgs, location="query")
@blp.response(200, RateCardSchema(many=True))
def list_cards(args):
    """The brand's cards in force (newest first); `include_closed` for the history."""
    read_only()
    brand_id = acting_brand(args["brand_id"], code=_CODE)
    return rates.listed(db.session, actor=current_actor(), brand_id=brand_id, include_closed=args["include_closed"])


@blp.post("/admin/guides/rate-cards/<int:card_id>/close")
@blp.auth(*MERCHANT)
@blp.response(200, RateCardSchema)
def close_card(card_id):
    """The card no longer applies to lines paid from now. 409 guides.rate_card_closed if closed already."""
    card = rates.close(db.session, actor=current_actor(), card_id=card_id)
    commit()
    return card


@blp.get("/guide/commission")
@blp.auth(Role.GUIDE)
@blp.arguments(CommissionArgs, location="query")
@blp.response(200, CommissionPageSchema)
def my_entries(args):
    """My ledger entries, newest first, with state, amount, reason and order/line refs; `state` filters."""
    read_only()
    items, next_id = commission.entries(db.session, actor=current_actor(), **args)
    return {"items": _for_guide(items), "next_before_id": next_id}


@blp.get("/guide/commission/balance")
@blp.auth(Role.GUIDE)
@blp.response(200, CommissionBalancesSchema)
def my_balance():
    """My balance by state, per currency (sums of my entries)."""
    read_only()
    guide, balances = commission.balances(db.session, actor=current_actor())
    return {"guide_id": guide.id, "balances": balances}


@blp.get("/guide/commission/why")
@blp.auth(Role.GUIDE)
@blp.arguments(WhyLineArgs, location="query")
@blp.response(200, WhyLineSchema)
def my_why(args):
    """Why an order line was (not) credited to me: the binding snapshot and my entries for it, and a verdict."""
    read_only()
    why = commission.why(db.session, actor=current_actor(), order_line_id=args["order_line_id"])
    return {**why, "entries": _for_guide(why["entries"])}


@blp.get("/admin/guides/commission")
@blp.auth(*MERCHANT)
@blp.arguments(AdminCommissionArgs, location="query")
@blp.response(200, CommissionPageSchema)
def guide_entries(args):
    """A guide of the brand's ledger entries, newest first."""
    read_only()
    items, next_id = commission.entries(db.session, actor=current_actor(), **args)
    return {"items": items, "next_before_id": next_id}


@blp.get("/admin/guides/commission/why")
@blp.auth(*MERCHANT)
@blp.arguments(WhyLineArgs, location="query")
@blp.response(200, WhyLineSchema)
def admin_why(args):
    """Why an order line of the brand was (not) credited: the binding snapshot, its events and the entries."""
    read_only()
    return commission.why(db.session, actor=current_actor(), order_line_id=args["order_line_id"])
