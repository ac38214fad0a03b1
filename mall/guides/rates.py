"""Rate cards (ADR 0022): what a guide earns on a paid line, and which card decides it.

A brand admin creates cards for the brand, a category (and its subcategories) or a product, for one guide grade
or any. Cards are dated: "changing" one closes it (`valid_to`) and creates its successor, so an earned entry's
card still says what it was earned on. The card for a line is the most specific one in force at payment:
product > category (the deepest category of the product's path) > brand, and at the same scope a card for the
guide's grade beats an any-grade one (then the newest). That card alone decides: a campaign line (flash sale,
group-buy, live price) earns on it only if it `includes_campaign_lines`, otherwise nothing (a less specific card
does not step in: the most specific card is the brand's word on that product).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall import clock
from mall.catalog.models import Category, Product
from mall.errors import Conflict, Forbidden, Invalid, NotFound
from mall.guides.ledger_models import RateCard
from mall.identity.roles import Actor
from mall.orders.models import OrderLine

CAMPAIGN_SOURCES = ("flash_sale", "group_buy")
LIVE_PRICE_PREFIX = "live:"  # a line's discounts key when its unit price was the live price (mall.live.pricing)
_RANK = {"product": 3, "category": 2, "brand": 1}


def _brand(actor: Actor, brand_id: int) -> None:
    if not actor.can_manage_brand(brand_id):
        raise Forbidden("guides.not_your_brand", "Only the brand's admin manages its rate cards.")


def create(session: Session, *, actor: Actor, brand_id: int, scope: str, category_id: int | None = None,
           product_id: int | None = None, guide_grade: str | None = None, basis_points: int | None = None,
           amount_per_unit: int | None = None, currency: str | None = None, includes_campaign_lines: bool = False,
           replaces: int | None = None) -> RateCard:  # fmt: skip
    """A card in force from now. `replaces`: a card of the brand closed now (a change of terms)."""
    _brand(actor, brand_id)
    if (basis_points is None) == (amount_per_unit is None):
        raise Invalid("guides.rate_required", "Give basis_points or amount_per_unit (not both).", field="basis_points")
    if amount_per_unit is not None and not currency:
        raise Invalid("guides.currency_required", "A fixed amount per unit needs its currency.", field="currency")
    if scope == "product":
        product = session.get(Product, product_id) if product_id else None
        if product is None or product.brand_id != brand_id:
            raise Invalid("guides.product_unknown", "Name a product of the brand.", field="product_id")
        category_id = None
    elif scope == "category":
        if category_id is None or session.get(Category, category_id) is None:
            raise Invalid("guides.category_unknown", "Name a category.", field="category_id")
        product_id = None
    else:
        category_id = product_id = None
    now = clock.now()
    if replaces is not None:
        close(session, actor=actor, card_id=replaces, now=now)
    card = RateCard(brand_id=brand_id, scope=scope, category_id=category_id, product_id=product_id,
                    guide_grade=guide_grade or None, basis_points=basis_points, amount_per_unit=amount_per_unit,
                    currency=currency if amount_per_unit is not None else None,
                    includes_campaign_lines=includes_campaign_lines, valid_from=now, valid_to=None,
                    created_by=actor.user_id or None, created_at=now)  # fmt: skip
    session.add(card)
    session.flush()
    return card


def close(session: Session, *, actor: Actor, card_id: int, now: datetime | None = None) -> RateCard:
    """The card stops applying to lines paid from now (earned commission is not touched). 409 if closed already."""
    card = session.get(RateCard, card_id, with_for_update=True)
    if card is None or not actor.can_manage_brand(card.brand_id):
        raise NotFound("guides.rate_card_not_found", f"Rate card {card_id} not found.")
    if card.valid_to is not None:
        raise Conflict("guides.rate_card_closed", "This rate card is closed already.")
    card.valid_to = now or clock.now()
    session.flush()
    return card


def listed(session: Session, *, actor: Actor, brand_id: int, include_closed: bool = False) -> list[RateCard]:
    _brand(actor, brand_id)
    query = sa.select(RateCard).where(RateCard.brand_id == brand_id)
    if not include_closed:
        query = query.where(RateCard.valid_to.is_(None))
    return list(session.scalars(query.order_by(RateCard.id.desc())))


def in_force(session: Session, brand_ids: set[int], at: datetime) -> list[RateCard]:
    """Every card of these brands in force at `at`: one statement."""
    if not brand_ids:
        return []
    return list(session.scalars(_IN_FORCE, {"brands": sorted(brand_ids), "at": at}))


_IN_FORCE = sa.select(RateCard).where(  # built once: :brands (a list), :at
    RateCard.brand_id.in_(sa.bindparam("brands", expanding=True)), RateCard.valid_from <= sa.bindparam("at"),
    sa.or_(RateCard.valid_to.is_(None), RateCard.valid_to > sa.bindparam("at")))  # fmt: skip


def is_campaign(line: OrderLine) -> bool:
    """Flash-sale and group-buy lines (their source) and live-priced lines (their live discount)."""
    return (line.source or {}).get("type") in CAMPAIGN_SOURCES or any(
        key.startswith(LIVE_PRICE_PREFIX) for key in (line.discounts or {})
    )


@dataclass(frozen=True)
class Decision:
    """What a line earns and why: `card` (None: no card applies), `amount`, and `reason` (JSON for the entry)."""

    card: RateCard | None
    amount: int
    reason: dict


def decide(cards: list[RateCard], *, line: OrderLine, brand_id: int, currency: str, category_path: str,
           grade: str | None) -> Decision:  # fmt: skip
    """The most specific card for `line` (of a product whose category path is `category_path`) and a guide of
    `grade`, and the commission on what the line paid (`payable`: after every discount and points, no shipping):
    basis points rounded down, or a fixed amount per unit capped at what the line paid."""
    ancestors = [int(part) for part in category_path.strip("/").split("/") if part]
    base = {"base": line.payable, "quantity": line.quantity, "campaign": is_campaign(line)}

    def rank(card: RateCard):
        depth = ancestors.index(card.category_id) if card.scope == "category" else 0
        return (_RANK[card.scope], depth, card.guide_grade is not None, card.valid_from, card.id)

    fitting = [card for card in cards if card.brand_id == brand_id
               and (card.scope == "brand" or (card.scope == "product" and card.product_id == line.product_id)
                    or (card.scope == "category" and card.category_id in ancestors))
               and (card.guide_grade is None or card.guide_grade == grade)
               and (card.amount_per_unit is None or card.currency == currency)]  # fmt: skip
    if not fitting:
        return Decision(None, 0, {"rule": "no_rate_card", **base, "guide_grade": grade})
    card = max(fitting, key=rank)
    terms = {"rate_card_id": card.id, "scope": card.scope, "guide_grade": card.guide_grade,
             "basis_points": card.basis_points, "amount_per_unit": card.amount_per_unit,
             "includes_campaign_lines": card.includes_campaign_lines}  # fmt: skip
    if base["campaign"] and not card.includes_campaign_lines:
        return Decision(card, 0, {"rule": "campaign_line_excluded", **base, **terms})
    if card.basis_points is not None:
        amount = line.payable * card.basis_points // 10000
    else:
        amount = min(card.amount_per_unit * line.quantity, line.payable)
    return Decision(card, amount, {"rule": "rate_card", **base, **terms})
